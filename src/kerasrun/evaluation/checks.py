"""What `evaluate` checks before TensorFlow: its options, the run's splits and data paths.

Shared by `evaluate run=` and `evaluate runs=[...]` (an ensemble), so that both refuse the
same mistakes with the same words.
"""

from kerasrun.errors import check_int, require
from kerasrun.rundir.layout import run_config_path

SPLITS = ("test", "validation")


def check_options(split, batch_size, misclassified=0):
    """The command's own keys: `split`, `batch_size`, `misclassified`."""
    require(
        split in SPLITS,
        f"split must be one of {', '.join(SPLITS)}. Received: split={split!r}. "
        "Set split=test or split=validation.",
    )
    check_int(
        "batch_size", batch_size, allow_none=True, example=64, why="null: the run's data.batch_size"
    )
    check_int(
        "misclassified", misclassified, minimum=0, example=16, why="images to draw, 0 for none"
    )


def available_splits(config):
    """The evaluable splits of a run's data, from config.yaml's `data_info` (all if unknown)."""
    sizes = (config.get("data_info") or {}).get("sizes")
    return list(SPLITS) if sizes is None else [s for s in SPLITS if sizes.get(s)]


def check_split(run, split, available):
    """A `ConfigError` unless `split` is one of the `available` splits of `run`'s data."""
    require(
        split in available,
        f"split must be a split of this run's data, which has "
        f"{'only ' + ' and '.join(available) if available else 'neither test nor validation'}. "
        f"Received: split={split!r} (run {run.path}). "
        + (f"Set split={available[0]}." if available else "Nothing to evaluate in this run."),
    )


def check_data_paths(run, overrides):
    """Reports a missing `data.root` / `data.path` before TensorFlow is imported."""
    data = run.config.get("data")
    require(
        isinstance(data, dict) and data.get("name"),
        f"{run_config_path(run.path)} has no data config (data.name): it was not written by "
        "train. Pass a run directory that train wrote.",
    )
    run.check_paths(**overrides)
