"""A run directory cannot reach outside itself: the paths of its config, and its links.

A run directory may come from someone else. Its config names the files and folders that
`train resume=` writes, and deletes when the run ends (the backup); the allowlist of
`training/callbacks.py` checks which classes a config may build, not the paths it hands
them. So before anything is written, every path of a run's config must resolve inside the
run, after `~`, `..` and symbolic links, and no symbolic link in the run may lead out of it
(the commands write into its folders: `train.log`, `eval/`, `export/`, `tensorboard/`...).

Only the data's own locations may be elsewhere: the `data` group's paths (`data.root`,
`data.path`, a GloVe file, Keras's download cache `data.cache_dir`) and `glove_path` name
what the run reads, and `paths.root` is where new runs go, which a run opened again never
uses.
"""

import os
from pathlib import Path

from kerasrun.errors import ConfigError

# A key names a path when it is one of these, or ends with `_dir` or `_path`: the arguments
# of Keras's callbacks (`backup_dir`, `filepath`, `log_dir`, `filename`) and kerasrun's own.
PATH_KEYS = ("dir", "root", "path", "file", "filename", "filepath")
PATH_SUFFIXES = ("_dir", "_path")
# Keys whose paths are the run's data (only read) or its parent folder (unused by a run opened
# again): they may lie outside it. A key under one of these is one of them too.
OUTSIDE_ALLOWED = ("data", "glove_path", "paths.root")


def is_path_key(name):
    """Whether a config key `name` (its last part) names a file or a folder."""
    return name in PATH_KEYS or name.endswith(PATH_SUFFIXES)


def config_paths(config, prefix=""):
    """`[(dotted key, value)]`: every path of the plain `config` that must stay in the run."""
    found = []
    items = config.items() if isinstance(config, dict) else enumerate(config)
    for name, value in items:
        key = f"{prefix}{name}"
        if any(key == k or key.startswith(f"{k}.") for k in OUTSIDE_ALLOWED):
            continue
        if isinstance(value, (dict, list)):
            found += config_paths(value, prefix=f"{key}.")
        elif isinstance(value, str) and is_path_key(str(name)):
            found.append((key, value))
    return found


def check_inside(config, run_dir, *, source, recorded_dir=None):
    """Raises a `ConfigError` unless every path of `config` and every link of `run_dir` stays
    inside `run_dir`.

    Args:
        config: the run's plain config.
        run_dir: the run directory, here.
        source: the file `config` comes from, for the message.
        recorded_dir: where the run was when `config` was resolved (its `paths.output_dir`):
            a run moved or copied here keeps the paths of its first place, which are read
            relative to that place. `None`: `config` was resolved for `run_dir`.
    """
    run_dir = Path(os.path.abspath(run_dir))
    recorded = Path(os.path.abspath(os.path.expanduser(str(recorded_dir or run_dir))))
    for key, value in config_paths(config):
        path = Path(os.path.abspath(os.path.expanduser(value)))  # `..` gone; relative: cwd's
        inside = path == recorded or recorded in path.parents
        here = run_dir / path.relative_to(recorded) if inside else path
        if not (inside and _within(here, run_dir)):
            where = _resolved(value, here, recorded, run_dir)
            raise ConfigError(
                f"{key} names a path outside the run directory {run_dir}: a run's paths must "
                "stay inside it, so that opening or resuming it writes and deletes nothing "
                f"else. Received: {key}='{value}' (from {source}){where}. "
                "Nothing was written. Use a run whose config keeps its paths under "
                "${paths.output_dir}, or start a new run."
            )
    check_links(run_dir)


def check_links(run_dir):
    """Raises a `ConfigError` if a symbolic link in `run_dir` leads outside it."""
    run_dir = Path(run_dir)
    for folder, dirs, files in os.walk(run_dir):  # links are listed, not followed
        for name in dirs + files:
            path = Path(folder) / name
            if path.is_symlink() and not _within(path, run_dir):
                raise ConfigError(
                    f"{path} is a link to {os.path.realpath(path)}, outside the run directory: "
                    "the commands write into a run's folders, and train deletes some, so a "
                    f"run may not lead outside itself. Received: run='{run_dir}'. Nothing was "
                    "written. Replace the link by a copy of what it points to, or remove it."
                )


def _resolved(value, path, recorded, run_dir):
    real = os.path.realpath(path)
    moved = f" (the run was at {recorded})" if recorded != run_dir else ""
    return moved + ("" if real == value else f", which resolves to {real}")


def _within(path, run_dir):
    """Whether `path`, with every link followed, is `run_dir` or inside it."""
    real, root = Path(os.path.realpath(path)), Path(os.path.realpath(run_dir))
    return real == root or root in real.parents
