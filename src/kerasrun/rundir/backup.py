"""The backup of an unfinished run, read without TensorFlow: what `resume=` continues from.

`BackupAndRestore` (`training/checkpoints.py`) writes a new weights file, then commits it by
renaming `state.json` over the old one: `state.json` names the weights and the epoch they end.
A run without a backup starts from epoch 1, and its logs are pruned to match (`prune_logs(0)`).
So a backup that is there but cannot be used must never read as "no backup": that would
erase every epoch the run logged and train them again, silently. It is refused instead, with
what is damaged and what the user can do, before anything is written.
"""

import json
import re
from pathlib import Path

from kerasrun.errors import ConfigError
from kerasrun.rundir.layout import BACKUP_STATE

# The weights files `BackupAndRestore.save` writes: `<phase>-epoch<NNNN>-batch<N>.weights.h5`.
WEIGHTS = re.compile(r"(train|fine-tune)-epoch(\d+)-batch(\d+)\.weights\.h5")
STATE_KEYS = ("epoch", "weights")


def read_state(backup_dir):
    """The last complete backup in `backup_dir`: `{"epoch", "batch", "phase", "weights", ...}`.

    `epoch` is the first epoch still to train (Keras's `initial_epoch`).

    Returns:
        The state, or `None` when there is no backup: no folder, or no `state.json` and at
        most the weights of the run's first backup (a kill before that `state.json` was
        written: nothing was committed, and epoch 1 runs again).

    Raises:
        ConfigError: the backup is damaged: `state.json` cannot be read, or names weights
            that are not there, or later weights are there without any `state.json`.
    """
    backup_dir = Path(backup_dir)
    path = backup_dir / BACKUP_STATE
    if not path.exists():
        later = sorted(p.name for p in _weights_files(backup_dir) if not _first_backup(p.name))
        if later:
            _refuse(backup_dir, f"{BACKUP_STATE} is missing", f"{later[-1]} without {BACKUP_STATE}")
        return None
    try:
        text = path.read_text()
    except OSError as e:
        _refuse(backup_dir, f"{BACKUP_STATE} cannot be read ({e.strerror})", str(path))
    try:
        state = json.loads(text)
    except ValueError:
        state = None
    if not (
        isinstance(state, dict)
        and all(key in state for key in STATE_KEYS)
        and isinstance(state["epoch"], int)
        and isinstance(state["weights"], str)
        and Path(state["weights"]).name == state["weights"]  # a file of the backup, no path
    ):
        _refuse(
            backup_dir, f"{BACKUP_STATE} is not a backup's state", f"{BACKUP_STATE}={text[:60]!r}"
        )
    if not (backup_dir / state["weights"]).is_file():
        _refuse(
            backup_dir,
            f"the weights file its {BACKUP_STATE} names is missing",
            f"weights={state['weights']!r}",
        )
    return state


def _weights_files(backup_dir):
    if not backup_dir.is_dir():
        return []
    return [p for p in backup_dir.iterdir() if WEIGHTS.fullmatch(p.name)]  # not a .tmp one


def _first_backup(name):
    # The first `save` of a run: the end of epoch 1, a signal in epoch 1 (epoch 0, batch N),
    # or the fine-tuning boundary of a run with `trainer.epochs=0`. At most one epoch logged.
    return int(WEIGHTS.fullmatch(name).group(2)) <= 1


def _refuse(backup_dir, what, received):
    raise ConfigError(
        f"The backup in {backup_dir} is damaged: {what}. Continuing without it would train "
        "again from epoch 1 and erase the epochs this run logged, so nothing was changed. "
        f"Received: {received}. Restore the "
        "backup from a copy, or start a new run; to train this run again from epoch 1, "
        f"delete {backup_dir}."
    )
