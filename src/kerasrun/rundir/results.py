"""Turning a Keras history into `metrics.json`, and the objective a sweep optimises."""

import csv
import json
import logging
import math
import os
from pathlib import Path

from kerasrun.console import one_line
from kerasrun.errors import ConfigError
from kerasrun.rundir.layout import BEST_MODEL, CHECKPOINTS, METRICS

log = logging.getLogger(__name__)


def lower_is_better(metric):
    return any(word in metric for word in ("loss", "mae", "mse", "error"))


def final_metrics(history, *, monitor, test=None, wall_time_s=0.0):
    """Flat metrics in Keras names: the last epoch's, the best validation ones, the test ones.

    Args:
        history: `{"loss": [...], "val_accuracy": [...], ...}` over every epoch of every phase.
        monitor: the metric that picks `best_epoch` (e.g. `"val_loss"`).
        test: `model.evaluate(..., return_dict=True)`, or `None`.
    """
    metrics = {k: float(v[-1]) for k, v in history.items() if v and k != "learning_rate"}
    for key, values in history.items():
        finite = [v for v in values if math.isfinite(v)]
        if key.startswith("val_") and finite:
            metrics[f"best_{key}"] = float(min(finite) if lower_is_better(key) else max(finite))
    finite = [v for v in history.get(monitor, []) if math.isfinite(v)]
    if finite:
        best = min(finite) if lower_is_better(monitor) else max(finite)
        metrics["best_epoch"] = history[monitor].index(best) + 1
    metrics.update({f"test_{k}": float(v) for k, v in (test or {}).items()})
    epochs = len(next(iter(history.values()), []))
    metrics.update(epochs=epochs, wall_time_s=round(wall_time_s, 2), status="finished")
    # TerminateOnNaN stops at the first NaN loss: the run is over, and it failed.
    if first_non_finite(history):
        metrics.update(status="failed", diverged=True)
    return metrics


def is_training_loss(key):
    """Whether a history or logs key is a training loss: `loss`, a GAN's `d_loss`, `g_loss`."""
    return key.endswith("loss") and not key.startswith("val_")


def first_non_finite(history):
    """`(epoch, key, value)` of the first NaN/inf training loss, or `None`: the one divergence
    check. Every `*loss` key counts: a GAN has no `loss`, but a `d_loss` and a `g_loss`."""
    found = [
        (epoch, key, value)
        for key, values in history.items()
        if is_training_loss(key)
        for epoch, value in enumerate(values, 1)
        if not math.isfinite(value)
    ]
    return min(found, default=None)


GAN_RATES = {
    "d_loss": "model.discriminator_learning_rate",
    "g_loss": "model.generator_learning_rate",
}


def diverged_message(history, run_dir):
    """One line for a run whose loss became NaN/inf: where, and what was kept."""
    epoch, key, value = first_non_finite(history)
    best = Path(run_dir) / CHECKPOINTS / BEST_MODEL
    kept = f"the best model before it is {best}" if best.is_file() else "no model was saved"
    loss = "the loss" if key == "loss" else key
    # A GAN's two optimizers take their rates from the model's config, not `optimizer`.
    rate = GAN_RATES.get(key, "optimizer.learning_rate")
    return (
        f"Training diverged: {loss} became {value} in epoch {epoch}; "
        f"{kept}. Lower {rate} (it is often too high) and train again."
    )


def read_history(path, history):
    """The run's whole history: `history.csv` when it holds more epochs than `history`.

    A job resumed from its backup (a re-run sweep) only has the epochs since the restart
    in memory; the CSV logger (append mode) has every epoch. A repeated epoch (killed after
    its CSV row, before its backup) counts once, with its last values. A row that is not an
    epoch's numbers is a one-line `ConfigError` naming the file, never passed over.
    """
    path = Path(path) if path else None
    if path is None or not path.is_file():
        return history
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = {_epoch(row, path, reader.line_num): row for row in reader}
    if len(rows) <= len(next(iter(history.values()), [])):  # any key: a GAN has no "loss"
        return history
    ordered = [rows[epoch] for epoch in sorted(rows)]
    # Keras's CSVLogger adds val_ columns of "NA" to a run without validation: not metrics.
    keys = [
        k
        for k in ordered[0]
        if k != "epoch" and any(row.get(k) not in ("", "NA", None) for row in ordered)
    ]
    return {k: [_number(row.get(k)) for row in ordered] for k in keys}


def _epoch(row, path, line):
    """The row's epoch, checking that every cell is a number ("NA" and empty are NaN)."""
    try:
        for key, cell in row.items():
            if key is not None:  # cells past the header's columns are not read
                _number(cell)
        return int(row["epoch"])
    except (ValueError, TypeError, KeyError):
        cells = ",".join(str(v) for v in row.values())
        raise ConfigError(
            f"{path} has a row that is not an epoch's numbers (line {line}: {cells[:60]!r}). "
            "Received: a damaged history.csv. Fix or delete that line, then run again."
        ) from None


def _number(cell):
    """The CSV cell as a float; NaN when empty or "NA"."""
    return float(cell) if cell and cell != "NA" else math.nan


def write_json(path, data):
    """Writes JSON atomically: a kill never leaves a half-written file behind."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, allow_nan=True) + "\n")
    os.replace(tmp, path)


def write_lines(path, lines):
    """Writes one line per item atomically (see `write_json`)."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(f"{line}\n" for line in lines))
    os.replace(tmp, path)


def write_yaml(path, data):
    """Writes `data` as YAML atomically (see `write_json`)."""
    from omegaconf import OmegaConf

    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(OmegaConf.to_yaml(data))
    os.replace(tmp, path)


def write_failure(path, error, wall_time_s):
    """Records in metrics.json how a run ended early: `failed` or `interrupted` (Ctrl-C)."""
    if not Path(path).parent.is_dir():
        return
    status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
    write_json(
        path, {"status": status, "error": one_line(error), "wall_time_s": round(wall_time_s, 2)}
    )


def finished(run_dir):
    """The metrics of a run that is over: finished, or diverged (it would again); else `None`."""
    try:
        metrics = json.loads((Path(run_dir) / METRICS).read_text())
    except (OSError, ValueError):
        return None
    return metrics if metrics.get("status") == "finished" or metrics.get("diverged") else None


def objective(metrics, optimized_metric):
    """What `train` returns to a sweeper: `metrics[optimized_metric]`, or a `FailedJob`.

    A run that diverged (NaN) or lacks the metric (e.g. `best_val_accuracy` of a regression)
    has no score: Optuna records it as a failed trial rather than a made-up worst value.
    """
    value = metrics.get(optimized_metric)
    if metrics.get("diverged"):
        return FailedJob(metrics.get("error") or "the loss became NaN")
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        known = ", ".join(k for k in metrics if k.startswith(("best_val_", "test_", "kfold_")))
        log.warning(
            f"optimized_metric={optimized_metric} is {value!r} in this run: the sweeper "
            f"records a failed job. This run has: {known or 'no validation metrics'}."
        )
        return FailedJob(f"optimized_metric={optimized_metric} is {value!r}")
    return float(value)


class FailedJob:
    """What a sweep job that failed returns instead of its objective.

    Optuna's sweeper records a trial whose value is not a float as failed, and logs it as
    `Got 'failed: <error>'`; a grid sweep ignores it. (A NaN would stop the search.)
    """

    def __init__(self, error):
        self.error = error

    def __float__(self):
        raise ValueError(self.error)

    def __repr__(self):
        return f"failed: {self.error}"
