"""The `${kerasrun_*:...}` resolvers that conf/ uses for run directories and sweep directions.

Registered by every command before Hydra composes its config (`register_resolvers`).
"""

import os

from kerasrun.rundir.layout import HYDRA_DIR, TRAIN_LOG
from kerasrun.rundir.results import lower_is_better
from kerasrun.rundir.resume import check_run_dir
from kerasrun.training.runtime import cluster_task, is_chief

_unique = {}


def unique_dir(path):
    """`path`, or `path_2`, `path_3`, ... if it exists: a new run never reuses a directory.

    The answer is remembered per process, because Hydra resolves the run directory more
    than once (and after it has created it).
    """
    if path not in _unique:
        candidate, n = path, 1
        while os.path.exists(candidate):
            n += 1
            candidate = f"{path}_{n}"
        _unique[path] = candidate
    return _unique[path]


def unique_dirs():
    """The directories `unique_dir` handed out in this process (new: none existed before)."""
    return list(_unique.values())


def forget_unique_dirs():
    """Forgets the answers of `unique_dir`, as a new process would start (for tests)."""
    _unique.clear()


def register_resolvers():
    """Registers `${kerasrun_unique:...}`, `${kerasrun_run_dir:...}`,
    `${kerasrun_output_subdir:...}` and `${kerasrun_log_file:...}` (conf/hydra/), and
    `${kerasrun_direction:...}`."""
    from omegaconf import OmegaConf

    # Cached: the value travels with the config, so a sweep job run in another process
    # (hydra/launcher=processes) gets the sweep folder its launcher made, not a new one.
    OmegaConf.register_new_resolver("kerasrun_unique", unique_dir, replace=True, use_cache=True)
    OmegaConf.register_new_resolver("kerasrun_direction", direction, replace=True)
    OmegaConf.register_new_resolver("kerasrun_run_dir", _run_dir, replace=True, use_cache=True)
    OmegaConf.register_new_resolver("kerasrun_output_subdir", output_subdir, replace=True)
    OmegaConf.register_new_resolver("kerasrun_log_file", log_file, replace=True)


def log_file(strategy):
    """The job log's name: `train.log`, or `train.<task>-<index>.log` for a `multi_worker`
    process that is not the chief (every worker sees the same run directory on a shared
    file system, and lines of several processes in one file would interleave)."""
    if is_chief(strategy):
        return TRAIN_LOG
    task_type, task_id, _ = cluster_task(strategy)
    stem, suffix = TRAIN_LOG.rsplit(".", 1)
    return f"{stem}.{task_type}-{task_id}.{suffix}"


def _run_dir(resume, new_dir):
    """Hydra's `run.dir`: `train resume=<run dir>` runs in that directory (checked first, so
    a wrong path is reported before Hydra creates anything); else a new one (`unique_dir`)."""
    if resume:
        check_run_dir(resume)
        return str(resume)
    return unique_dir(new_dir)


def output_subdir(resume):
    """Hydra's `output_subdir`: `.hydra`, or none when resuming (keep the original files)."""
    return None if resume else HYDRA_DIR


def direction(metric):
    """`minimize` for a loss or an error (`best_val_loss`, `kfold_val_mae`), else `maximize`."""
    return "minimize" if lower_is_better(str(metric)) else "maximize"
