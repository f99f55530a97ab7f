"""Kill anywhere, resume where it stopped: atomic checkpoints and backups, preemption
signals, logs without repeated epochs.

Keras's `ModelCheckpoint` writes `best.keras` in place: a kill during the write leaves a
truncated model that `evaluate` or `predict` would then load. Here it is written under a
temporary name, then renamed. Keras's `BackupAndRestore` overwrites `latest.weights.h5` in
place, then its epoch number: a kill during the write leaves a truncated file, and a kill
between the two writes pairs epoch N's weights with epoch N-1's number. Here each backup
gets a new file name, and `state.json` (written under a temporary name, then renamed)
points at it: whatever the moment of a kill, the state names complete weights and the
epoch they end. Keras's `TerminateOnNaN` watches `loss` only: here every training loss
(a GAN logs `d_loss` and `g_loss`, and no `loss`).

Imported by `train` after TensorFlow (its classes subclass Keras's).
"""

import logging
import math
import os
import re
import signal
from pathlib import Path

import keras

from kerasrun.errors import ConfigError, Preempted
from kerasrun.rundir.backup import read_state  # a damaged backup is refused, not skipped
from kerasrun.rundir.layout import BACKUP_STATE
from kerasrun.rundir.results import is_training_loss, write_json

log = logging.getLogger(__name__)


class TerminateOnNaN(keras.callbacks.TerminateOnNaN):
    """Keras's `TerminateOnNaN`, watching every training `*loss` of the batch's logs, not
    only `loss`: a DCGAN whose `g_loss` becomes NaN stops too. Same arguments as Keras's."""

    def on_batch_end(self, batch, logs=None):
        for key, value in (logs or {}).items():
            if is_training_loss(key) and not math.isfinite(float(value)):
                super().on_batch_end(batch, {"loss": value})
                return


class ModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """`keras.callbacks.ModelCheckpoint`, writing to a temporary name, then renaming.

    Same arguments as Keras's. A `filepath` with `{epoch}`-style fields gets a new file each
    time anyway, and is written as Keras does. A NaN or infinite `monitor` is never "best"
    (Keras saves the first epoch whatever its value): a diverged run keeps the model it had
    before diverging. A monitor named `*loss` (a GAN's `g_loss`, a VAE's `val_kl_loss`) is
    minimised: Keras only knows `loss`, `val_loss` and compiled metrics, and refuses others.
    """

    def __init__(self, filepath, monitor="val_loss", mode="auto", **kwargs):
        if mode == "auto" and monitor.endswith("loss"):
            mode = "min"
        super().__init__(filepath, monitor=monitor, mode=mode, **kwargs)

    def _should_save_model(self, epoch, batch, logs, filepath):
        current = (logs or {}).get(self.monitor)
        if self.save_best_only and current is not None and not math.isfinite(float(current)):
            return False
        return super()._should_save_model(epoch, batch, logs, filepath)

    def _save_model(self, epoch, batch, logs):
        final = self.filepath
        if "{" in final:
            return super()._save_model(epoch, batch, logs)
        path = Path(final)
        suffix = ".weights.h5" if final.endswith(".weights.h5") else path.suffix
        tmp = path.with_name(f".{path.name[: -len(suffix)]}.tmp{suffix}")
        tmp.unlink(missing_ok=True)
        self.filepath = str(tmp)
        try:
            super()._save_model(epoch, batch, logs)
        finally:
            self.filepath = final
        if tmp.exists():  # saved this time (save_best_only: only when it improved)
            os.replace(tmp, path)


class BackupAndRestore(keras.callbacks.Callback):
    """Backs up the training state every epoch, and restores it when `fit()` starts again.

    Like `keras.callbacks.BackupAndRestore`, but atomic (see the module docstring), aware of
    the fine-tuning phase (a phase-2 backup is not loaded into phase 1's model), and kept
    until the whole run has finished: `train` deletes it then, so a run killed between the
    two phases does not start again from scratch.

    In a `multi_worker` job every worker must start from the same state: the chief backs up
    into `backup_dir`, each other worker into a temporary folder of its own (two writers of
    one `state.json` would race), and all restore from the chief's (`restore_dir`, set by
    `train`; the run directory must be on a filesystem every machine sees).

    Args:
        backup_dir: folder of the backup; nothing else should write there.
        phase: `"train"`, or `"fine-tune"` for the book's second phase (set by `train`).
    """

    def __init__(self, backup_dir, phase="train"):
        super().__init__()
        self.backup_dir = Path(backup_dir)
        self.restore_dir = self.backup_dir  # a multi_worker worker's: the chief's backup_dir
        self.phase = phase
        self.phase_start = 0  # the fine-tuning phase's first epoch (set by train)
        self.restored = None
        # Set after a backup of the model as it is (a fresh fine-tuning phase): the next
        # fit() has nothing to load, and saying "Resumed" would mislead.
        self.skip_next_restore = False

    def on_train_begin(self, logs=None):
        if self.skip_next_restore:
            self.skip_next_restore = False
            return
        state = read_state(self.restore_dir)
        if state is None or state.get("phase", "train") != self.phase:
            return
        self.load(state)
        self.model._initial_epoch = state["epoch"]  # what Keras's own callback sets
        self.restored = state
        log.info(
            f"Resumed from the backup of epoch {state['epoch']}"
            + (f", batch {state['batch']}" if state.get("batch") else "")
            + f" ({self.restore_dir})."
        )

    def on_epoch_end(self, epoch, logs=None):
        self.save(epoch + 1)

    def load(self, state):
        """Loads the weights (and optimizer state) a `state` names into the model."""
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(self.restore_dir / state["weights"])

    def save(self, epoch, batch=0, phase=None):
        """Backs up the model as "`epoch` is next to train".

        `batch` > 0: a mid-epoch backup with that many batches of `epoch` done (on resume,
        `epoch` runs again from these weights).
        """
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        name = f"{phase or self.phase}-epoch{epoch:04d}-batch{batch}.weights.h5"
        tmp = self.backup_dir / f".{name}.tmp.weights.h5"  # Keras needs the suffix
        self.model.save_weights(tmp, overwrite=True)
        os.replace(tmp, self.backup_dir / name)
        state = {
            "epoch": epoch,
            "batch": batch,
            "phase": phase or self.phase,
            "phase_start": self.phase_start,
            "weights": name,
        }
        write_json(self.backup_dir / BACKUP_STATE, state)  # the commit: now this backup counts
        for old in self.backup_dir.glob("*.weights.h5"):
            if old.name != name:
                old.unlink(missing_ok=True)


class StopOnSignal(keras.callbacks.Callback):
    """On SIGTERM (a cluster's preemption) or SIGINT (Ctrl-C): save a backup, then stop.

    The signal only sets a flag; at the end of the current batch the backup is saved and
    `Preempted` is raised, so no half-written epoch reaches the logs. A second signal stops
    at once (Ctrl-C twice). The handlers are in place inside `with stopper:` (around `fit`).

    Args:
        backup: the run's `BackupAndRestore`, or `None` (then nothing can be saved).
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, backup):
        super().__init__()
        self.backup = backup
        self.signum = None
        self.epoch = 0
        self._previous = {}

    def __enter__(self):
        """Installs the handlers (main thread only); leaving puts the old ones back."""
        for signum in self.SIGNALS:
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread: keep Python's default behaviour
                pass
        return self

    def __exit__(self, *exc_info):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _handle(self, signum, frame):
        if self.signum is not None:  # the second one: stop now
            raise KeyboardInterrupt
        self.signum = signum
        log.warning(
            f"{signal.Signals(signum).name} received: saving a backup at the end of this "
            "batch, then stopping (send it again to stop at once)."
        )

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        if self.signum is not None:  # came during the last epoch's end: its backup is saved
            self._raise(f"before epoch {epoch + 1}")

    def on_train_batch_end(self, batch, logs=None):
        if self.signum is None:
            return
        # Mid-epoch: save these weights; on resume the epoch runs again from its first batch
        # (Keras's own rule for mid-epoch backups), so no work done before the signal is lost.
        if self.backup is not None:
            self.backup.save(self.epoch, batch=batch + 1)
        self._raise(f"in epoch {self.epoch + 1}, batch {batch + 1}")

    def _raise(self, where):
        name = signal.Signals(self.signum).name
        saved = "backup saved" if self.backup else "no backup (no backup_and_restore callback)"
        raise Preempted(self.signum, f"Stopped by {name} {where}; {saved}.")

    def check(self):
        """Between two `fit()` calls (the fine-tuning boundary): stop if a signal came."""
        if self.signum is not None:
            self._raise("after training")


def prune_logs(from_epoch, *, tensorboard_dir=None, history_csv=None):
    """Removes what a killed run logged for epochs it will train again (`from_epoch` on).

    An epoch logged just before the kill but not backed up runs again after the resume: its
    first values would stay in `history.csv` and in TensorBoard beside the new ones. Event
    files and the CSV are rewritten without them (atomically), so every epoch shows once.
    HParams session summaries go too: `train` writes them again. A record or row cut short at
    the end of its file (a kill mid-write) goes too.

    Raises:
        ConfigError: damage anywhere else, which a rewrite would turn into a loss: a record
            of an event file that fails its checksum (every event after it would be dropped),
            or a `history.csv` row that is not a row of numbers. One line names the file.
    """
    if history_csv and Path(history_csv).is_file():
        _prune_csv(Path(history_csv), from_epoch)
    if tensorboard_dir and Path(tensorboard_dir).is_dir():
        for path in sorted(Path(tensorboard_dir).rglob("events.out.tfevents.*")):
            _prune_events(path, from_epoch)


def _prune_csv(path, from_epoch):
    lines = path.read_text().splitlines(keepends=True)
    if not lines:
        return
    header = lines[0].rstrip("\r\n").split(",")
    column = header.index("epoch") if "epoch" in header else 0
    kept = [lines[0]]
    for number, line in enumerate(lines[1:], start=2):
        if not line.endswith("\n"):  # the last row, cut by a kill: it runs again
            continue
        cells = line.rstrip("\r\n").split(",")
        try:
            epoch = int(cells[column])
        except (ValueError, IndexError):
            raise ConfigError(
                f"{path} has a row that is not an epoch's numbers (line {number}: "
                f"{line.strip()[:60]!r}); pruning the epochs to train again would drop it. "
                f"Received: resume from epoch {from_epoch}. Fix or delete that line (or the "
                "file), then resume again."
            ) from None
        if epoch < from_epoch:
            kept.append(line)
    if len(kept) < len(lines):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text("".join(kept))
        os.replace(tmp, path)


def _prune_events(path, from_epoch):
    import tensorflow as tf
    from tensorboard.compat.proto import event_pb2

    kept, dropped = [], 0
    for record in _event_records(path, from_epoch):
        event = event_pb2.Event.FromString(record)
        plugins = {v.metadata.plugin_data.plugin_name for v in event.summary.value}
        if event.HasField("summary") and (event.step >= from_epoch or "hparams" in plugins):
            dropped += 1
        else:
            kept.append(record)
    if not dropped and path.stat().st_size == sum(len(r) + 16 for r in kept):
        return  # nothing to drop, nothing cut short: leave the file alone
    tmp = path.with_name(".pruning.tmp")  # no "tfevents" in it: TensorBoard skips it
    with tf.io.TFRecordWriter(str(tmp)) as writer:
        for record in kept:
            writer.write(record)
    os.replace(tmp, path)


def _event_records(path, from_epoch):
    """The records of the event file `path`, up to a record cut short at its end (a kill
    mid-write); a record that fails its checksum is a `ConfigError`.

    TensorBoard's own reader stops quietly at either: rewriting what it read would drop
    every event after a damaged record, and only a cut one is safe to drop.
    """
    import tensorflow as tf

    records = []
    try:
        for record in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
            records.append(record)
    except tf.errors.DataLossError as e:
        if "truncated record" not in str(e):  # "corrupted record at <byte>": damage
            found = re.search(r"corrupted record at \d+", str(e))
            raise ConfigError(
                f"The TensorBoard event file {path} is damaged after {len(records)} events "
                f"({found.group() if found else 'DataLossError'}); pruning the epochs to "
                "train again would drop every event after it. Received: resume from epoch "
                f"{from_epoch}. Move the file out of the run directory (TensorBoard reads the "
                "others), then resume again."
            ) from None
    return records
