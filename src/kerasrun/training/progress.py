"""`EpochProgress`: Keras's progress output, made readable in a log file.

On a terminal, a transient progress bar over the steps of each epoch; everywhere, one
line per epoch through the `kerasrun` logger (so it lands in `<run>/train.log` too).
"""

import logging
import os
import time

import keras
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from kerasrun.console import console, format_logs

log = logging.getLogger("kerasrun")
# The start-up a user waits through is logged once per process, at the first training step
# (of the first fold, the first phase, the first job of a sweep): later fits start warm.
_first_step = {"logged": False}


class EpochProgress(keras.callbacks.Callback):
    """Logs `Epoch 3/10 · 4.2 s · loss ... · val_loss ...` after every epoch.

    Args:
        epochs: the last epoch of this fit (for "3/10").
        steps: steps per epoch, when known (for the bar).
        bar: draw a live progress bar (only sensible on a terminal).
        phase: a prefix such as "fine-tune" for the second phase of transfer learning.
    """

    def __init__(self, epochs, *, steps=None, bar=False, phase=""):
        super().__init__()
        self.epochs, self.steps, self.bar, self.phase = epochs, steps, bar, phase
        self._progress = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        if self.bar:
            self._progress = Progress(
                TextColumn(f"Epoch {epoch + 1}/{self.epochs}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[logs]}"),
                console=console,
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("train", total=self.steps, logs="")

    def on_train_batch_end(self, batch, logs=None):
        if not _first_step["logged"]:
            _first_step["logged"] = True
            seconds = seconds_since_start()
            if seconds is not None:
                log.info(f"First step after {seconds:.1f} s")
        if self._progress is not None:
            shown = {
                k: v
                for k, v in (logs or {}).items()
                if k in ("loss", "accuracy", "mae", "d_loss", "g_loss")
            }
            self._progress.update(self._task, completed=batch + 1, logs=format_logs(shown))

    def on_epoch_end(self, epoch, logs=None):
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        seconds = time.perf_counter() - self._start
        prefix = f"{self.phase} " if self.phase else ""
        log.info(
            f"{prefix}Epoch {epoch + 1}/{self.epochs} · {seconds:.1f} s · {format_logs(logs or {})}"
        )

    def on_train_end(self, logs=None):
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def seconds_since_start():
    """Seconds since this process started (Linux `/proc`), or `None` where that is unknown.

    From the process's start, not from an import: the start-up the user waits through
    (Python, Hydra, TensorFlow, building the data and the model) is what it measures.
    """
    try:
        with open("/proc/self/stat") as f:  # field 22, after the ")" of the command name
            started = int(f.read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
        with open("/proc/uptime") as f:
            return float(f.read().split()[0]) - started
    except (OSError, ValueError, IndexError):
        return None
