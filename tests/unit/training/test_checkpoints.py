"""Resume state and log pruning: what a killed run leaves, read back for `train resume=`."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from kerasrun.errors import ConfigError
from kerasrun.rundir.results import read_history
from kerasrun.training.checkpoints import BackupAndRestore, prune_logs, read_state


def tiny_model():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_read_state_trusts_only_a_complete_backup_and_refuses_a_damaged_one(tmp_path):
    assert read_state(tmp_path / "backup") is None  # no backup at all
    first = tmp_path / "train-epoch0001-batch0.weights.h5"
    first.write_bytes(b"...")  # the first backup, killed before its state.json: not committed
    assert read_state(tmp_path) is None
    first.unlink()
    # Damaged, each would read as "no backup", and resume would erase the logged epochs.
    for text, what in (
        ('{"epoch": 3, "weig', "state.json is not a backup's state"),  # cut (a lost write)
        ("", "state.json is not a backup's state"),
        ('{"epoch": 3, "weights": "../../x.weights.h5"}', "state.json is not a backup's state"),
        ('{"epoch": 3, "weights": "w.weights.h5"}', "the weights file its state.json names is"),
    ):
        (tmp_path / "state.json").write_text(text)
        with pytest.raises(ConfigError, match=f"The backup in {tmp_path} is damaged: {what}"):
            read_state(tmp_path)
    (tmp_path / "state.json").unlink()
    (tmp_path / "train-epoch0003-batch0.weights.h5").write_bytes(b"...")  # a later backup's
    with pytest.raises(ConfigError, match="state.json is missing"):
        read_state(tmp_path)
    state = {"epoch": 3, "batch": 0, "phase": "train", "weights": "w.weights.h5"}
    (tmp_path / "state.json").write_text(json.dumps(state))
    (tmp_path / "w.weights.h5").write_bytes(b"...")
    assert read_state(tmp_path) == state


def test_a_backup_names_its_weights_and_restores_them(tmp_path):
    model = tiny_model()
    backup = BackupAndRestore(tmp_path / "backup")
    backup.set_model(model)
    backup.save(2)
    backup.save(3)
    state = read_state(tmp_path / "backup")
    assert (state["epoch"], state["phase"]) == (3, "train")
    assert [p.name for p in (tmp_path / "backup").glob("*.weights.h5")] == [state["weights"]]

    saved = [w.numpy() for w in model.weights]
    fresh = tiny_model()
    restore = BackupAndRestore(tmp_path / "backup")
    restore.set_model(fresh)
    restore.on_train_begin()
    assert fresh._initial_epoch == 3
    for a, b in zip(saved, fresh.weights, strict=True):
        np.testing.assert_array_equal(a, b.numpy())


def test_a_fine_tune_backup_is_not_loaded_into_phase_1(tmp_path):
    model = tiny_model()
    backup = BackupAndRestore(tmp_path)
    backup.set_model(model)
    backup.save(5, phase="fine-tune")
    phase_1 = BackupAndRestore(tmp_path)
    phase_1.set_model(tiny_model())
    phase_1.on_train_begin()
    assert phase_1.restored is None


def test_prune_logs_drops_the_epochs_that_run_again(tmp_path):
    csv = tmp_path / "history.csv"
    csv.write_text("epoch,loss\n0,1.0\n1,0.5\n2,0.25\n3,0.1")  # the last row was cut
    log_dir = tmp_path / "tensorboard" / "train"
    with tf.summary.create_file_writer(str(log_dir)).as_default():
        for step in range(4):
            tf.summary.scalar("epoch_loss", 1.0 / (step + 1), step=step)

    prune_logs(2, tensorboard_dir=tmp_path / "tensorboard", history_csv=csv)

    assert csv.read_text() == "epoch,loss\n0,1.0\n1,0.5\n"
    events = EventAccumulator(str(log_dir))
    events.Reload()
    assert [e.step for e in events.Tensors("epoch_loss")] == [0, 1]


def test_prune_logs_from_0_keeps_nothing_of_a_run_without_backup(tmp_path):
    csv = tmp_path / "history.csv"
    csv.write_text("epoch,loss\n0,1.0\n")
    prune_logs(0, history_csv=csv)
    assert csv.read_text() == "epoch,loss\n"


def write_events(log_dir, steps):
    """An event file written by TensorBoard's writer: one `epoch_loss` per step; its path."""
    with tf.summary.create_file_writer(str(log_dir)).as_default():
        for step in range(steps):
            tf.summary.scalar("epoch_loss", 1.0 / (step + 1), step=step)
    (path,) = log_dir.glob("events.out.tfevents.*")
    return path


def record_offsets(path):
    """Where each TFRecord starts: a little-endian uint64 length, its CRC, data, data CRC."""
    data, offsets = path.read_bytes(), [0]
    while offsets[-1] < len(data):
        offsets.append(
            offsets[-1] + 16 + int.from_bytes(data[offsets[-1] : offsets[-1] + 8], "little")
        )
    return offsets[:-1]


def steps_read_back(log_dir):
    events = EventAccumulator(str(log_dir))
    events.Reload()
    return [e.step for e in events.Tensors("epoch_loss")]


def test_a_damaged_event_record_stops_the_prune_instead_of_dropping_what_follows(tmp_path):
    log_dir = tmp_path / "tensorboard" / "train"
    path = write_events(log_dir, 6)
    data = bytearray(path.read_bytes())
    start = record_offsets(path)[3]  # the file-version record, then steps 0, 1, 2, 3, ...
    data[start + 14] ^= 0xFF  # a byte of step 2's data: its CRC no longer matches
    path.write_bytes(bytes(data))
    assert steps_read_back(log_dir) == [0, 1]  # TensorBoard's reader stops at the damage

    with pytest.raises(ConfigError) as error:
        prune_logs(5, tensorboard_dir=tmp_path / "tensorboard")
    message = str(error.value)
    assert "\n" not in message and str(path) in message and "damaged" in message, message
    assert "corrupted record at" in message and "function_node" not in message
    assert path.read_bytes() == bytes(data)  # left as it was: steps 3 to 5 are still there


def test_a_record_cut_at_the_end_of_an_event_file_is_dropped_and_the_rest_kept(tmp_path):
    log_dir = tmp_path / "tensorboard" / "train"
    path = write_events(log_dir, 6)
    path.write_bytes(path.read_bytes()[:-5])  # a kill while writing step 5
    prune_logs(4, tensorboard_dir=tmp_path / "tensorboard")
    assert steps_read_back(log_dir) == [0, 1, 2, 3]


def test_an_unparsable_history_row_is_one_line_never_dropped(tmp_path):
    csv = tmp_path / "history.csv"
    damaged = "epoch,loss\n0,1.0\n\x00\x00garbage,??\n2,0.25\n3,0.1"
    csv.write_text(damaged)
    with pytest.raises(ConfigError, match="line 3") as error:
        prune_logs(3, history_csv=csv)
    assert "\n" not in str(error.value) and str(csv) in str(error.value)
    assert csv.read_text() == damaged

    csv.write_text("epoch,loss\n0,1.0\n1,nonsense\n")
    with pytest.raises(ConfigError, match="line 3") as error:
        read_history(csv, {})
    assert "\n" not in str(error.value) and str(csv) in str(error.value)
