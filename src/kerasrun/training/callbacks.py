"""Builds Keras objects from `_target_` config nodes, refusing anything outside an allowlist.

A run directory can be shared, and its config re-used: a `_target_` must never be a way
to import and call arbitrary code. Only stable public Keras classes are allowed, each where
it belongs (an optimizer under `optimizer`, a callback under `callbacks` or `logger`).

Public names are not module paths: the YAML names Keras's class, and the code picks
kerasrun's replacement where it has one (`ModelCheckpoint` and `BackupAndRestore` made atomic,
`TerminateOnNaN` watching every loss, see `training/checkpoints.py`). So kerasrun's modules can
move without breaking a saved run. Runs saved with the old `kerasrun.checkpoints.<Class>`
targets still resume, evaluate and predict: those names mean `keras.callbacks.<Class>`.
"""

import inspect
import math
from dataclasses import dataclass
from pathlib import Path

from kerasrun.errors import ConfigError
from kerasrun.registry import check_class_kwargs
from kerasrun.rundir.results import lower_is_better, read_history

ALLOWED_PREFIXES = {  # the config key's first part -> the modules its targets may come from
    "optimizer": ("keras.optimizers.",),
    "callbacks": ("keras.callbacks.",),
    "logger": ("keras.callbacks.",),
}
# Keras callbacks that kerasrun replaces by its own, same arguments (training/checkpoints.py).
REPLACED = ("ModelCheckpoint", "BackupAndRestore", "TerminateOnNaN")
# The targets of runs saved before the replacements were chosen by the code.
LEGACY = {f"kerasrun.checkpoints.{name}": f"keras.callbacks.{name}" for name in REPLACED}


def public_target(target):
    """`target`, with a legacy `kerasrun.checkpoints.<Class>` read as `keras.callbacks.<Class>`."""
    return LEGACY.get(target, target) if isinstance(target, str) else target


def check_target(target, *, key):
    """Raises a `ConfigError` unless `target` names a class allowed at config `key`."""
    target = public_target(target)
    allowed = ALLOWED_PREFIXES.get(key.split(".")[0], ())
    if not isinstance(target, str) or not target.startswith(allowed) or target.count(".") != 2:
        raise ConfigError(
            f"{key}._target_ must name a class in "
            f"{' or '.join(p + '*' for p in allowed)}. "
            f"Received: {key}._target_={target!r}."
        )


def instantiate(node, *, key, **overrides):
    """`keras.<module>.<Class>(**kwargs)` from a plain dict with a `_target_`.

    Args:
        node: plain dict, e.g. `{"_target_": "keras.callbacks.EarlyStopping", "patience": 5}`.
        key: where the node lives in the config (`callbacks.early_stopping`), for errors.
        **overrides: keyword arguments that win over the node's.
    """
    node = dict(node)
    target = public_target(node.pop("_target_", None))
    cls = target_class(target, key=key)
    kwargs = {**node, **overrides}
    if isinstance(kwargs.get("learning_rate"), int):  # learning_rate=1 on the command line
        kwargs["learning_rate"] = float(kwargs["learning_rate"])  # Keras wants a float
    check_class_kwargs(cls, kwargs, key=key, target=target)
    try:
        inspect.signature(cls).bind(**kwargs)
    except TypeError as e:
        raise ConfigError(
            f"{key}: {target} does not accept these arguments ({e}). Received: {kwargs}."
        ) from None
    try:
        return cls(**kwargs)
    except ValueError as e:  # the class's own check of a value: SGD's momentum=0 (an int)
        reason = " ".join(str(e).split())
        raise ConfigError(
            f"{key}: {target} refused a value: {reason} Received: {kwargs}. "
            f"Fix it on the command line or in the config (a float is written 0.0, not 0)."
        ) from None


def target_class(target, *, key):
    """The class `target` names at config `key`, after `check_target` (Keras imported)."""
    import keras  # lazy: TensorFlow, not needed to check a config's keys

    check_target(target, key=key)
    package, module, name = target.split(".")
    module_object = getattr(keras, module)
    if module == "callbacks" and name in REPLACED:
        # kerasrun's own, chosen here; imported lazily as it subclasses Keras's (TensorFlow).
        from kerasrun.training import checkpoints as module_object
    cls = getattr(module_object, name, None)
    if not inspect.isclass(cls):
        raise ConfigError(
            f"{key}._target_: {package}.{module} has no class {name}. Received: {target!r}."
        )
    return cls


def check_target_arguments(config):
    """Checks that the class of every `_target_` node (the optimizer, each callback and
    logger) takes the node's keys, before any data or training work. Imports Keras.

    Raises:
        UnknownKey: e.g. `optimizer.lr`, with the class's arguments (`learning_rate`, ...).
    """
    nodes = [("optimizer", config.get("optimizer"))]
    for group in ("callbacks", "logger"):
        nodes += [(f"{group}.{name}", node) for name, node in (config.get(group) or {}).items()]
    for key, node in nodes:
        if node:
            kwargs = {k: v for k, v in node.items() if k != "_target_"}
            target = public_target(node.get("_target_"))
            check_class_kwargs(target_class(target, key=key), kwargs, key=key, target=target)


def build_callbacks(nodes, *, group):
    """Instantiates each node of a multi-select group (`callbacks` or `logger`), in order."""
    return [
        instantiate(node, key=f"{group}.{name}") for name, node in (nodes or {}).items() if node
    ]


def continue_best(callbacks, history):
    """After a resume, keeps `ModelCheckpoint(save_best_only=True)` from overwriting a better
    model saved before the kill: its best so far comes from the run's `history` (the epochs
    already done), instead of starting from scratch.
    """
    import keras  # lazy: TensorFlow

    for callback in callbacks:
        if not isinstance(callback, keras.callbacks.ModelCheckpoint):
            continue
        values = [v for v in history.get(callback.monitor, []) if math.isfinite(v)]
        if values:
            lower = callback.mode == "min" or (
                callback.mode == "auto" and lower_is_better(callback.monitor)
            )
            callback.best = min(values) if lower else max(values)  # Keras's initial "best"


@dataclass
class RunCallbacks:
    """The callbacks and loggers of a run (or of a K-fold fold), ready for `fit`.

    Attributes:
        callbacks: in order, with the backup last: an epoch is logged before it counts as
            done, so a kill in between repeats it (and its first log is pruned) rather than
            losing it.
        backup: kerasrun's `BackupAndRestore`, or `None` (`~callbacks.backup_and_restore`).
        state: the backup's state of a resumed run (`epoch`, `phase`, ...), or `None`.
        history_csv: the CSV logger's file, or `None`.
        tensorboard_dir: the TensorBoard logger's folder, or `None`.
    """

    callbacks: list
    backup: object
    state: dict
    history_csv: str
    tensorboard_dir: str

    @property
    def resumed_in_fine_tune(self):
        """Whether the backup was made in the fine-tuning phase: phase 1 had finished."""
        return bool(self.state) and self.state["phase"] == "fine-tune"


def logger_paths(config):
    """`(history_csv, tensorboard_dir)` of the run's `logger` node (each `None` if off)."""
    logger = config.get("logger") or {}  # logger=[] on the command line: Hydra drops the key
    csv, tensorboard = logger.get("csv") or {}, logger.get("tensorboard") or {}
    return csv.get("filename"), tensorboard.get("log_dir")


def run_callbacks(config, *, extra=(), run_dir=None, chief_run_dir=None):
    """Builds the `callbacks` and `logger` nodes of `config`; continues a resumed run.

    A resumed run (`train resume=...`, a re-run sweep, a killed fold) trains again the
    epochs after its backup: what the killed run logged for them is pruned, and a
    `ModelCheckpoint` keeps the best of the epochs before the kill.

    Args:
        config: the plain run config.
        extra: more callbacks (a generative model's samplers), placed before the backup.
        run_dir, chief_run_dir: this process's run directory and the chief's: a multi-worker
            worker writes its own backup, but restores the chief's, so that all start from
            one state.
    """
    from kerasrun.training.checkpoints import BackupAndRestore, prune_logs, read_state  # lazy: TF

    callbacks = build_callbacks(config.get("callbacks"), group="callbacks")
    callbacks += build_callbacks(config.get("logger"), group="logger")
    backup = next((c for c in callbacks if isinstance(c, BackupAndRestore)), None)
    callbacks = [c for c in callbacks if c is not backup] + list(extra) + [backup] * bool(backup)
    if backup and chief_run_dir and Path(chief_run_dir) != Path(run_dir):
        backup.restore_dir = Path(chief_run_dir) / backup.backup_dir.relative_to(run_dir)
    state = read_state(backup.restore_dir) if backup else None
    history_csv, tensorboard_dir = logger_paths(config)
    prune_logs(
        state["epoch"] if state else 0, tensorboard_dir=tensorboard_dir, history_csv=history_csv
    )
    continue_best(callbacks, read_history(history_csv, {}))  # the earlier epochs' best
    return RunCallbacks(callbacks, backup, state, history_csv, tensorboard_dir)


def backup_dir(config):
    """The `backup_dir` of the run's `BackupAndRestore` callback, or `None` without one."""
    for node in (config.get("callbacks") or {}).values():
        if node and public_target(node.get("_target_")) == "keras.callbacks.BackupAndRestore":
            return node.get("backup_dir")
    return None
