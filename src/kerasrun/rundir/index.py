"""The index behind `runs` and the sweep summaries: every run directory under a folder, read.

Only what `train` wrote is read (config.yaml, metrics.json, .hydra/overrides.yaml, train.log),
and nothing here imports TensorFlow, so listing a thousand runs takes a moment:

    records = read_runs(find_run_dirs("outputs"))
    finished = filter_runs(records, data="digits", statuses={"finished"})
    best = best_run(finished, "best_val_accuracy")

A run without metrics.json is "running" while its train.log changed in the last 2 minutes,
"failed" when the log ends with an error, else "killed"; a run whose files cannot be read is
"unreadable".
"""

import json
import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import yaml

from kerasrun.console import one_line
from kerasrun.errors import is_int, is_number
from kerasrun.rundir.layout import (
    HYDRA_DIR,
    MULTIRUN,
    RUN_CONFIG,
    SWEEPS,
    TRAIN_LOG,
    hydra_config_path,
    metrics_path,
    overrides_path,
    run_config_path,
)
from kerasrun.rundir.results import lower_is_better

STATUSES = ("finished", "failed", "interrupted", "stopped_nan", "running", "killed", "unreadable")
# A run without metrics.json whose train.log changed this recently is still running.
RUNNING_WINDOW_S = 120
# Overrides that say where files are, not what makes runs differ (as Hydra's override_dirname).
LOCATION_OVERRIDES = ("data.root", "data.path", "resume", "paths.root")
SHOWN_KEYS = ("data", "model")  # `runs` has columns of their own for them
STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2})")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class RunRecord:
    """What the files of one run directory say about it (not the run itself: no model).

    `rundir.run.Run` is a run opened to be used, with its model; a `RunRecord` is one line of
    the index, read without TensorFlow.
    """

    path: Path
    started: datetime
    kind: str = "run"  # or "sweep #<job>"
    job: int = -1  # a sweep job's number
    data: str = ""
    model: str = ""
    overrides: list = field(default_factory=list)
    status: str = "unknown"
    error: str = ""
    metrics: dict = field(default_factory=dict)
    optimized_metric: str = ""

    @property
    def in_sweep(self):
        """Whether the run is a job of a sweep (`train -m`)."""
        return self.job >= 0

    def value(self, key):
        """`metrics[key]` as a finite float, or `None` (missing, NaN, not a number)."""
        value = self.metrics.get(key)
        return float(value) if is_number(value) else None


# Finding and reading run directories.


def find_run_dirs(root):
    """Directories under `root` (itself included) holding `config.yaml` or `.hydra/`.

    Symlinks are not followed, and nothing below a run directory is searched.
    """
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        if RUN_CONFIG in filenames or HYDRA_DIR in dirnames:
            found.append(Path(dirpath))
            dirnames.clear()
        else:
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
    return found


def read_run(path):
    """Reads one run directory into a `RunRecord`; corrupt files make its status `unreadable`."""
    path = Path(path)
    run = RunRecord(path, _started(path), *_kind(path))
    try:
        config = _read_config(path)
        run.data, run.model = _name(config, "data"), _name(config, "model")
        run.optimized_metric = str(config.get("optimized_metric") or "")
        metrics = _read_metrics(metrics_path(path))
    except (OSError, ValueError, yaml.YAMLError) as e:
        run.status, run.error = "unreadable", one_line(e, with_type=False) or type(e).__name__
        return run
    run.overrides = _read_overrides(overrides_path(path))
    if metrics is None:
        run.status, run.error = _status_without_metrics(path)
    else:
        # Any JSON number, NaN and inf included: a diverged run's loss shows as nan.
        run.metrics = {k: v for k, v in metrics.items() if is_int(v) or isinstance(v, float)}
        run.status = str(metrics.get("status") or "unknown")
        run.error = str(metrics.get("error") or "")
    return run


def read_runs(paths):
    """`read_run` for each path, skipping directories deleted while they are read."""
    runs = []
    for path in paths:
        try:
            runs.append(read_run(path))
        except FileNotFoundError:
            continue
    return runs


def _read_config(path):
    """config.yaml (resolved), else .hydra/config.yaml (a run that stopped before writing it)."""
    for candidate in (run_config_path(path), hydra_config_path(path)):
        if candidate.is_file():
            return _mapping(yaml.load(candidate.read_text(), Loader=_Loader), candidate)
    return {}


def _read_metrics(path):
    if not path.is_file():
        return None
    try:
        return _mapping(json.loads(path.read_text()), path)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path.name}: {e}") from e


def _read_overrides(path):
    try:
        overrides = yaml.load(path.read_text(), Loader=_Loader) if path.is_file() else []
    except (OSError, ValueError, yaml.YAMLError):
        return ["?"]
    return [str(o) for o in overrides] if isinstance(overrides, list) else ["?"]


def _mapping(data, path):
    if not isinstance(data, dict):
        raise ValueError(f"{path.name} is not a mapping")
    return data


def _name(config, group):
    node = config.get(group)
    return str(node.get("name") or "") if isinstance(node, dict) else ""


def _status_without_metrics(path):
    """`(status, error)` of a run that wrote no metrics.json: running, failed or killed."""
    log = path / TRAIN_LOG
    last = _last_line(log)
    if " ERROR " in last:  # a config error: `train` exits 2 before metrics.json exists
        return "failed", last.split(" ERROR ", 1)[1]
    changed = (log if log.is_file() else path).stat().st_mtime
    return ("running" if time.time() - changed < RUNNING_WINDOW_S else "killed"), ""


def _last_line(path, tail=4096):
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - tail))
            lines = f.read().decode("utf-8", "replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else ""


def _started(path):
    """The start time in the directory name (a sweep job's: its sweep's), else its mtime."""
    for name in (path.name, path.parent.name):
        match = STAMP.match(name)
        if match:
            return datetime.strptime(match.group(1), "%Y-%m-%d_%H-%M-%S")
    return datetime.fromtimestamp(path.stat().st_mtime)


def _kind(path):
    """`("run", -1)`, or `("sweep #<n>", n)` for `sweeps/<date>_<time>/<n>_<overrides>/`."""
    match = re.match(r"^(\d+)_", path.name)
    in_sweep = (path.parent / MULTIRUN).is_file() or path.parent.parent.name == SWEEPS
    return (f"sweep #{match.group(1)}", int(match.group(1))) if match and in_sweep else ("run", -1)


def key_overrides(overrides):
    """The overrides that tell runs apart: not data=/model= (shown already), not file paths."""
    keep = []
    for override in overrides:
        key, _, value = override.lstrip("+~").partition("=")
        if key in SHOWN_KEYS or key in LOCATION_OVERRIDES or "/" in value or "\\" in value:
            continue
        keep.append(override)
    return keep


# Selecting and ordering.


def recorded_metrics(runs):
    """Every metric key any of `runs` recorded, sorted."""
    return sorted({key for run in runs for key in run.metrics})


def filter_runs(runs, *, data=None, model=None, statuses=None, since=None, sweep_only=False):
    """The runs of option `data` and `model`, with a status in `statuses`, started at or after
    `since` (a naive local `datetime`), and only sweep jobs if `sweep_only`; `None`: any."""
    return [
        run
        for run in runs
        if (data is None or run.data == data)
        and (model is None or run.model == model)
        and (statuses is None or run.status in statuses)
        and (since is None or run.started >= since)
        and (not sweep_only or run.in_sweep)
    ]


def sort_runs(runs, key, ascending):
    """Sorted by start time (`key="time"`) or by a metric; runs without it go last, newest first."""
    # Ties: a sweep's jobs in order, and a second run in the same second (`_2`) first.
    newest_first = sorted(
        runs, key=lambda run: (run.started, -run.job, str(run.path)), reverse=True
    )
    if key == "time":
        return newest_first[::-1] if ascending else newest_first
    scored = [run for run in newest_first if run.value(key) is not None]
    missing = [run for run in newest_first if run.value(key) is None]
    return sorted(scored, key=lambda run: run.value(key), reverse=not ascending) + missing


def best_run(runs, key):
    """The run with the best finite `key` (lowest for loss-like metrics), or `None`."""
    scored = [run for run in runs if run.value(key) is not None]
    if not scored:
        return None
    pick = min if lower_is_better(key) else max
    return pick(scored, key=lambda run: run.value(key))
