"""`train resume=<run dir>`: continue a killed run in its own directory, with its own config.

Hydra's run directory becomes the old run's (`${kerasrun_run_dir:...}` in conf/hydra/), and
Hydra does not write its `.hydra/` files there again (`${kerasrun_output_subdir:...}`), so
the run keeps the config and overrides it was started with. The training state comes from
the run's `backup/` (see `training/checkpoints.py`); `train.log` and `history.csv` are appended to.
"""

import json
import logging
import os
import sys
from pathlib import Path

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from kerasrun.console import error_line, one_line
from kerasrun.errors import ConfigError
from kerasrun.rundir.backup import read_state
from kerasrun.rundir.confine import check_inside
from kerasrun.rundir.layout import FOLDS, HYDRA_CONFIG, HYDRA_DIR, metrics_path
from kerasrun.training.callbacks import backup_dir

# `paths.output_dir` as Hydra's config writes it: the run directory, resolved only inside a job.
OUTPUT_DIR = "${hydra:runtime.output_dir}"

log = logging.getLogger("kerasrun")


def check_run_dir(resume):
    """Raises a `ConfigError` unless `resume` is a `train` run directory that can continue.

    Called by the resolver that gives Hydra its run directory, so a wrong path is reported
    before Hydra creates (or writes to) anything: not a run directory, a config whose paths
    or links lead outside the run (`rundir/confine.py`), or a damaged backup, which would
    otherwise read as "no backup" and erase the logged epochs (`rundir/backup.py`).
    """
    path = Path(str(resume))
    saved = path / HYDRA_DIR / HYDRA_CONFIG
    if not saved.is_file():
        what = "does not exist" if not path.exists() else "is not a train run directory"
        raise ConfigError(
            f"resume={resume} {what} (no {HYDRA_DIR}/{HYDRA_CONFIG} in it). "
            f"Received: resume={resume}. "
            "Pass a directory under outputs/runs/ (`runs` lists them)."
        )
    config = _saved_config(path)
    check_inside(config, path, source=saved)
    check_backups(config, path)


def _saved_config(path):
    """`.hydra/config.yaml` resolved as the resumed job will resolve it, before Hydra runs."""
    saved = path / HYDRA_DIR / HYDRA_CONFIG
    try:
        config = OmegaConf.load(saved)
        paths = OmegaConf.to_container(config).get("paths") if "paths" in config else None
        if isinstance(paths, dict) and paths.get("output_dir") == OUTPUT_DIR:
            config.paths.output_dir = str(path)  # Hydra's run directory is the run's own
        config = OmegaConf.to_container(config, resolve=True)
    except (OSError, yaml.YAMLError, OmegaConfBaseException) as e:
        config = e
    if not isinstance(config, dict):
        what = one_line(config) if isinstance(config, Exception) else "not a mapping"
        raise ConfigError(
            f"{saved} cannot be read ({what}). Received: resume={path}. It may be damaged: "
            "restore it from a copy, or start a new run."
        )
    return config


def check_backups(config, run_dir):
    """Raises a `ConfigError` if the backup of `run_dir`, or of one of its K-fold folds, is
    damaged (see `rundir.backup.read_state`)."""
    backup = backup_dir(config)
    if not backup:
        return
    read_state(backup)
    inside = os.path.relpath(os.path.abspath(backup), os.path.abspath(run_dir))
    for fold in sorted((Path(run_dir) / FOLDS).glob("fold_*")):
        read_state(fold / inside)


def load_config(resume, overrides, *, multirun):
    """The config `resume` was started with, as a plain dict (paths resolved to `resume`).

    Args:
        resume: the run directory (checked by `check_run_dir`).
        overrides: the command line's overrides; only `resume=` itself is allowed.
        multirun: `True` under `-m`: a sweep continues by running it again instead.
    """
    if multirun:
        raise ConfigError(
            "resume= continues one run, not a sweep. Received: -m with resume. To continue a "
            "sweep, run the same command again with hydra.sweep.dir=<that sweep>."
        )
    others = [o for o in overrides if not o.lstrip("+~").startswith("resume=")]
    if others:
        raise ConfigError(
            "resume= continues a run with the config it was started with; other overrides "
            f"would change it. Received: {' '.join(others)}. Drop them, or start a new run."
        )
    check_run_dir(resume)
    saved = OmegaConf.load(Path(str(resume)) / HYDRA_DIR / HYDRA_CONFIG)
    saved.resume = str(resume)
    # `paths.output_dir` is `${hydra:runtime.output_dir}`: the run directory again.
    config = OmegaConf.to_container(saved, resolve=True)
    check_inside(config, resume, source=Path(str(resume)) / HYDRA_DIR / HYDRA_CONFIG)  # as run
    return config


def status(resume):
    """The run's `metrics.json` status (`finished`, `failed`, ...), or `None`."""
    try:
        return json.loads(metrics_path(str(resume)).read_text()).get("status")
    except (OSError, ValueError):
        return None


def config_or_exit(run_dir, overrides, *, multirun):
    """The config to continue `run_dir` with; `None` if it has finished (nothing to do).

    A mistake (another override, `-m`, not a run directory) is one `Error:` line and exit
    code 2, and nothing in the old run is touched.
    """
    try:
        config = load_config(run_dir, list(overrides), multirun=multirun)
    except (ConfigError, OmegaConfBaseException) as e:
        log.error(error_line(e))
        sys.exit(2)
    if status(run_dir) == "finished":
        log.info(f"{run_dir} has finished already (metrics.json): nothing to resume.")
        return None
    log.info(f"Resuming {run_dir}")
    return config
