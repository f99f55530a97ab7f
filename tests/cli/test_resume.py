"""Kill anywhere, resume where it stopped: real `train` subprocesses killed and resumed.

A kill point is found by watching the run's train.log (written line by line), so each test
kills at the moment it names. The resumed run is compared with an uninterrupted one of the
same config and seed: the same epochs, each epoch once in history.csv and in TensorBoard
(read with TensorBoard's reader), and final metrics within `TOLERANCE`. They are not equal:
the resumed epochs start new shuffle orders and dropout masks from the seed.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from helpers import TRAIN, one_error_line, read_metrics, run_train, scalars, tiny_vgg16_finetune

# A run of 6 epochs of 80 batches (~1 s each here) of the embedded digits.
DIGITS = ("trainer.epochs=6", "trainer.steps_per_epoch=80")
TOLERANCE = {"val_accuracy": 0.05, "best_val_accuracy": 0.05, "test_accuracy": 0.05}


def start_train(*overrides, cwd):
    """`train <overrides>` in the background; its console goes to `cwd/console.txt`."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = open(Path(cwd) / "console.txt", "a")
    return subprocess.Popen([TRAIN, *overrides], cwd=cwd, stdout=out, stderr=out, env=env)


def wait_for(process, cwd, text, timeout=300):
    """Waits until a run's train.log contains `text`; returns the run directory."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for log in Path(cwd).glob("outputs/runs/*/train.log"):
            if text in log.read_text():
                return log.parent
        assert process.poll() is None, f"train ended before {text!r}: exit {process.returncode}"
        time.sleep(0.05)
    raise AssertionError(f"{text!r} did not appear in {timeout} s")


def kill_at(cwd, overrides, text, *, delay=0.0, signum=signal.SIGKILL):
    """Starts `train`, sends `signum` `delay` s after `text` is logged; returns the run dir."""
    process = start_train(*overrides, cwd=cwd)
    try:
        run_dir = wait_for(process, cwd, text)
        time.sleep(delay)
        process.send_signal(signum)
        process.wait(timeout=120)
    finally:
        process.kill()
    return run_dir, process.returncode


def epochs_logged(run_dir):
    """`(history.csv epochs, TensorBoard train steps, TensorBoard validation steps)`."""
    rows = (run_dir / "history.csv").read_text().splitlines()[1:]
    tensorboard = run_dir / "tensorboard"
    return (
        [int(row.split(",")[0]) for row in rows],
        [step for step, _ in scalars(tensorboard / "train")["epoch_loss"]],
        [step for step, _ in scalars(tensorboard / "validation")["epoch_loss"]],
    )


def backup_state(run_dir):
    """The run's `backup/state.json`, or `None` before its first backup."""
    path = run_dir / "backup" / "state.json"
    return json.loads(path.read_text()) if path.exists() else None


def assert_continued_from(result, state, total):
    """The resumed session trained the epochs after the backup `state`, not from epoch 1 (a
    mid-epoch backup's epoch runs again, from its saved weights)."""
    first = state["epoch"] + 1 if state else 1
    if state:
        assert f"Resumed from the backup of epoch {state['epoch']}" in result.stdout
    ended = [int(n) for n in re.findall(rf"\bEpoch (\d+)/{total}\b", result.stdout)]
    assert ended == list(range(first, total + 1)), (state, ended)


def assert_same_as_uninterrupted(run_dir, reference):
    metrics = read_metrics(run_dir)
    assert metrics["status"] == "finished", metrics
    assert metrics["epochs"] == reference["epochs"]
    epochs = list(range(reference["epochs"]))
    assert epochs_logged(run_dir) == (epochs, epochs, epochs)  # every epoch once
    for key, tolerance in TOLERANCE.items():
        assert metrics[key] == pytest.approx(reference[key], abs=tolerance), key
    assert not (run_dir / "backup").exists()  # the run is over: nothing left to resume
    import keras

    keras.saving.load_model(run_dir / "checkpoints" / "best.keras")  # whole, loads


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("uninterrupted")
    result = run_train(*DIGITS, cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (cwd / "outputs" / "runs").iterdir()
    return read_metrics(run_dir)


@pytest.mark.slow
def test_sigterm_during_kfold_saves_the_fold_and_resume_finishes_the_folds(tmp_path):
    folds = ("trainer.kfold=2", "trainer.epochs=2", "trainer.steps_per_epoch=400")
    folds += ("trainer.final_epochs=null",)
    run_dir, code = kill_at(tmp_path, folds, "fold 2/2 Epoch 1/2", delay=1.0, signum=signal.SIGTERM)

    assert code == 128 + signal.SIGTERM
    assert read_metrics(run_dir)["status"] == "interrupted"
    assert read_metrics(run_dir / "folds" / "fold_1")["status"] == "finished"
    state = json.loads((run_dir / "folds" / "fold_2" / "backup" / "state.json").read_text())
    assert state["epoch"] == 1 and state["batch"] > 0  # fold 2, part of its epoch 2

    result = run_train(f"resume={run_dir}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "fold 1/2 Epoch" not in result.stdout  # finished before the signal: not redone
    metrics = read_metrics(run_dir)
    assert metrics["status"] == "finished" and len(metrics["kfold"]["folds"]) == 2
    assert not (run_dir / "folds" / "fold_2" / "backup").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    "text, delay",
    [
        ("Model: convnet", 0.5),  # in epoch 1, before any backup: starts again from scratch
        ("Epoch 2/6", 0.5),  # in epoch 3, mid-epoch
        ("Epoch 6/6", 0.0),  # after the last epoch, while the test split is evaluated
    ],
    ids=["first-epoch", "mid-run", "after-last-epoch"],
)
def test_sigkill_then_resume_ends_like_an_uninterrupted_run(tmp_path, uninterrupted, text, delay):
    run_dir, code = kill_at(tmp_path, DIGITS, text, delay=delay)
    assert code == -signal.SIGKILL
    overrides = (run_dir / ".hydra" / "overrides.yaml").read_text()
    state = backup_state(run_dir)

    result = run_train(f"resume={run_dir}", cwd=tmp_path)

    assert result.returncode == 0, result.stderr[-3000:]
    assert_continued_from(result, state, total=6)
    assert [p.name for p in (tmp_path / "outputs" / "runs").iterdir()] == [run_dir.name]
    assert (run_dir / ".hydra" / "overrides.yaml").read_text() == overrides  # not rewritten
    assert_same_as_uninterrupted(run_dir, uninterrupted)
    log = (run_dir / "train.log").read_text()
    assert log.count("Model: convnet") == 2  # one log for both sessions, appended
    assert read_metrics(run_dir)["epochs"] == 6


@pytest.mark.slow
def test_killed_twice_and_logged_an_epoch_the_backup_missed(tmp_path, uninterrupted):
    # Epoch 3 reaches history.csv and TensorBoard, then the kill comes before its backup
    # (the backup is written last): that is left as a kill between the two would leave it.
    run_dir, _ = kill_at(tmp_path, DIGITS, "Epoch 3/6")
    state = json.loads((run_dir / "backup" / "state.json").read_text())
    state["epoch"] -= 1  # the backup of epoch 2, as if the kill had come before epoch 3's
    weights = run_dir / "backup" / state["weights"]
    state["weights"] = "train-epoch0002-batch0.weights.h5"
    weights.rename(run_dir / "backup" / state["weights"])
    (run_dir / "backup" / "state.json").write_text(json.dumps(state))
    assert epochs_logged(run_dir)[0] == [0, 1, 2]
    # Leftovers of writes a kill cut short: never read.
    (run_dir / "backup" / ".train-epoch0003-batch0.weights.h5.tmp.weights.h5").write_bytes(
        b"\x89HDF"
    )
    (run_dir / "backup" / "state.json.tmp").write_text('{"epoch": 5, "weig')
    (run_dir / "checkpoints" / ".best.tmp.keras").write_bytes(b"PK\x03\x04 cut")

    resumed, _ = kill_at(tmp_path, [f"resume={run_dir}"], "Epoch 4/6", delay=0.3)
    assert resumed == run_dir
    state = backup_state(run_dir)
    result = run_train(f"resume={run_dir}", cwd=tmp_path)

    assert result.returncode == 0, result.stderr[-3000:]
    assert_continued_from(result, state, total=6)
    assert_same_as_uninterrupted(run_dir, uninterrupted)


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory):
    """A real run killed in its third epoch: a backup of epoch 2, and epochs 1-2 logged."""
    cwd = tmp_path_factory.mktemp("killed")
    run_dir, _ = kill_at(cwd, DIGITS, "Epoch 2/6", delay=0.5)
    assert backup_state(run_dir)["epoch"] >= 2
    return run_dir


def files(folder):
    """`{relative path: bytes}` of every file under `folder`."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# How a backup gets damaged (a disk, a copy, a hand): read as "no backup", each would make
# resume prune every logged epoch and train from epoch 1 again.
DAMAGE = {
    "state-cut": lambda backup: (backup / "state.json").write_text('{"epoch": 2, "weig'),
    "state-empty": lambda backup: (backup / "state.json").write_bytes(b""),
    "state-missing": lambda backup: (backup / "state.json").unlink(),
    "weights-missing": lambda backup: [p.unlink() for p in backup.glob("*.weights.h5")],
}


@pytest.mark.slow
@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_backup_is_refused_and_the_logged_epochs_kept(tmp_path, killed_run, damage):
    run_dir = Path(shutil.copytree(killed_run, tmp_path / "run"))
    assert epochs_logged(run_dir)[0][:2] == [0, 1]  # what a restart from epoch 1 would erase
    DAMAGE[damage](run_dir / "backup")
    before = files(run_dir)

    result = run_train(f"resume={run_dir}", cwd=tmp_path)

    error = one_error_line(result)
    assert f"The backup in {run_dir / 'backup'} is damaged" in error
    assert f"to train this run again from epoch 1, delete {run_dir / 'backup'}" in error
    assert files(run_dir) == before  # history.csv, TensorBoard, the backup: as they were


@pytest.mark.slow
def test_sigterm_saves_a_backup_mid_epoch_and_says_how_to_continue(tmp_path):
    # Epochs of 400 batches (about 3 s here): a signal 1 s into epoch 2 lands mid-epoch
    # however loaded the machine is (an 80-batch epoch could end first on a quiet one).
    long_epochs = ("trainer.epochs=3", "trainer.steps_per_epoch=400")
    run_dir, code = kill_at(tmp_path, long_epochs, "Epoch 1/3", delay=1.0, signum=signal.SIGTERM)

    assert code == 128 + signal.SIGTERM
    metrics = read_metrics(run_dir)
    assert metrics["status"] == "interrupted" and "SIGTERM" in metrics["error"]
    state = json.loads((run_dir / "backup" / "state.json").read_text())
    assert state["epoch"] == 1 and state["batch"] > 0  # part of epoch 2: saved, not lost
    console = (tmp_path / "console.txt").read_text()
    assert f"Continue with: train resume={run_dir}" in console
    assert "Traceback" not in console
    runs = subprocess.run(
        [str(Path(TRAIN).with_name("runs"))], cwd=tmp_path, capture_output=True, text=True
    )
    relative = run_dir.relative_to(tmp_path)
    assert f"Continue the interrupted run: train resume={relative}" in runs.stdout

    result = run_train(f"resume={run_dir}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Resumed from the backup of epoch 1, batch {state['batch']}" in result.stdout
    assert_continued_from(result, state, total=3)  # epoch 2 again, from its saved weights
    metrics = read_metrics(run_dir)
    assert metrics["status"] == "finished" and metrics["epochs"] == 3
    assert epochs_logged(run_dir) == ([0, 1, 2],) * 3  # epoch 2 once, from the resumed run
    assert metrics["val_accuracy"] > 0.9 and not (run_dir / "backup").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    "text, delay",
    [
        ("Fine-tuning from block5_conv1", 0.0),  # between the phases
        ("fine-tune Epoch 4/5", 0.0),  # in the second fine-tuning epoch
    ],
    ids=["between-phases", "in-fine-tuning"],
)
def test_a_fine_tuning_run_resumes_in_the_right_phase(tmp_path, cats_dogs_filtered, text, delay):
    overrides = (
        *tiny_vgg16_finetune(cats_dogs_filtered),
        "trainer.epochs=3",
        "model.fine_tune_epochs=2",
    )
    run_dir, _ = kill_at(tmp_path, overrides, text, delay=delay)

    result = run_train(f"resume={run_dir}", cwd=tmp_path)

    assert result.returncode == 0, result.stderr[-3000:]
    assert read_metrics(run_dir)["epochs"] == 5
    epochs = list(range(5))
    assert epochs_logged(run_dir) == (epochs, epochs, epochs)
    # Phase 1 at the book's 2e-5, then fine-tuning at 1e-5: the phase was not redone.
    lrs = [lr for _, lr in scalars(run_dir / "tensorboard" / "train")["epoch_learning_rate"]]
    assert lrs == [pytest.approx(2e-5)] * 3 + [pytest.approx(1e-5)] * 2
    assert "Fine-tuning from block5_conv1" in result.stdout
    from kerasrun.models import load_model

    assert len(load_model(run_dir / "model.keras").trainable_weights) == 4 + 6


def test_resume_refuses_what_it_cannot_continue(tmp_path):
    missing = tmp_path / "outputs" / "runs" / "nope"
    result = run_train(f"resume={missing}", cwd=tmp_path)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and f"resume={missing} does not exist" in errors[0], result.stderr
    assert "Traceback" not in result.stderr and not missing.exists()  # nothing created

    result = run_train("debug=default", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "outputs" / "runs").iterdir()
    before = (run_dir / "metrics.json").read_text()
    for extra, message in (
        (["trainer.epochs=20"], "other overrides would change it. Received: trainer.epochs=20"),
        (["-m"], "resume= continues one run, not a sweep"),
    ):
        result = run_train(f"resume={run_dir}", *extra, cwd=tmp_path)
        assert result.returncode == 2 and message in result.stdout + result.stderr
    result = run_train(f"resume={run_dir}", cwd=tmp_path)
    assert result.returncode == 0 and "has finished already" in result.stdout
    assert (run_dir / "metrics.json").read_text() == before  # the run is untouched
    assert yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text()) == ["debug=default"]


@pytest.mark.slow
def test_a_diverging_run_fails_with_one_line_and_keeps_its_best_checkpoint(tmp_path):
    t = range(400)
    (tmp_path / "series.csv").write_text("x\n" + "".join(f"{(i % 37) / 37}\n" for i in t))
    result = run_train(
        "data=csv_timeseries",
        f"data.path={tmp_path / 'series.csv'}",
        "data.target=x",
        "data.lookback=12",
        "data.step=1",
        "data.delay=1",
        "data.batch_size=16",
        "model=dense_timeseries",
        "optimizer=sgd",
        "optimizer.learning_rate=0.1",  # epoch 1 is finite here, epoch 2 is not
        "trainer.epochs=5",
        cwd=tmp_path,
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Training diverged: the loss became" in errors[0], result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    (run_dir,) = (tmp_path / "outputs" / "runs").iterdir()
    metrics = read_metrics(run_dir)
    assert metrics["status"] == "failed" and metrics["diverged"] is True
    assert "Lower optimizer.learning_rate" in metrics["error"]
    assert metrics["epochs"] == 2 and metrics["best_epoch"] == 1
    assert not (run_dir / "model.keras").exists()  # a NaN model is not saved as the result
    assert not (run_dir / "backup").exists()
    import keras

    best = keras.saving.load_model(run_dir / "checkpoints" / "best.keras")  # epoch 1's
    assert str(run_dir / "checkpoints" / "best.keras") in metrics["error"]
    import numpy as np

    assert all(np.isfinite(w).all() for w in best.get_weights())
