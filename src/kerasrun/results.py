"""Turning a Keras history into `metrics.json`, and the objective a sweep optimises."""

import json
import logging
import math
import os
from pathlib import Path

log = logging.getLogger(__name__)

# A sweep's objective must be a finite float: a diverged run scores this badly.
WORST = 1e12


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
    # TerminateOnNaN stops at the first NaN loss: the run is over, but it did not finish.
    status = "stopped_nan" if not all(map(math.isfinite, history.get("loss", []))) else "finished"
    metrics.update(epochs=epochs, wall_time_s=round(wall_time_s, 2), status=status)
    return metrics


def write_json(path, data):
    """Writes JSON atomically: a kill never leaves a half-written file behind."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, allow_nan=True) + "\n")
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
    from kerasrun.console import one_line

    if not Path(path).parent.is_dir():
        return
    status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
    write_json(
        path, {"status": status, "error": one_line(error), "wall_time_s": round(wall_time_s, 2)}
    )


def objective(metrics, optimized_metric):
    """The number `train` returns to a sweeper: `metrics[optimized_metric]`, finite."""
    value = metrics.get(optimized_metric)
    worst = WORST if lower_is_better(optimized_metric) else -WORST
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        log.warning(f"{optimized_metric} is {value!r}: reporting {worst:g} to the sweeper.")
        return worst
    return float(value)
