"""The data registry: `data=<name>` selects `conf/data/<name>.yaml`; its `name:` picks a builder.

Every builder takes plain keyword arguments (its signature is its schema) and returns a
`DataBundle`. TensorFlow is imported inside the builders, not at import time.
"""

from kerasrun.data import arrays, folders, keras_text, raw_text, text_file, timeseries
from kerasrun.data.bundle import DataBundle
from kerasrun.errors import is_int, require
from kerasrun.registry import call_builder, lookup
from kerasrun.rundir.layout import CACHE

DATASETS = {
    "digits": arrays.digits,
    "mnist": arrays.mnist,
    "fashion_mnist": arrays.fashion_mnist,
    "cifar10": arrays.cifar10,
    "image_folder": folders.image_folder,
    "cats_dogs": folders.cats_dogs,
    "imdb": keras_text.imdb,
    "imdb_raw": raw_text.imdb_raw,
    "reuters": keras_text.reuters,
    "boston_housing": keras_text.boston_housing,
    "jena_climate": timeseries.jena_climate,
    "csv_timeseries": timeseries.csv_timeseries,
    "text_file": text_file.text_file,
}


def build_data(name, **kwargs):
    """Builds the `DataBundle` of dataset `name` from its plain config (without `name`).

    Raises:
        ConfigError: a bad key or value.
    """
    return call_builder(lookup(DATASETS, name, group="data"), kwargs, group="data", name=name)


CACHE_OPTIONS = (True, False, "disk")


def resolve_cache(data_cfg, run_dir=None):
    """`data_cfg` with `cache` as a builder takes it: `true` (memory) and `false` unchanged,
    `disk` = a folder under the run, `run_dir / "cache"` (or memory without a `run_dir`:
    `evaluate` and `predict` read the data once).

    Image folders larger than memory: `data.cache=disk` keeps the decoded, resized uint8
    images in files instead, written during the first epoch and read by the later ones (and
    by a resumed run). `train` deletes them when the run ends.

    Raises:
        ConfigError: another value.
    """
    if "cache" not in data_cfg:
        return data_cfg
    cache = data_cfg["cache"]
    require(
        any(cache is option or cache == option for option in CACHE_OPTIONS),
        "data.cache must be true (decoded images kept in memory), false (decoded every "
        f"epoch) or disk (kept in files under the run directory). Received: "
        f"data.cache={cache!r}. Use one of them.",
    )
    if cache == "disk":
        cache = str(run_dir / CACHE) if run_dir is not None else True
    return {**data_cfg, "cache": cache}


def check_batch_fits(bundle, batch_size, *, name, replicas=1):
    """Refuses a batch larger than the training set: not one full batch per epoch.

    Only the built data knows its size (a folder's files, `train_samples`, the splits), so
    `train` calls this after the builder (not `evaluate`: it only reads the data); datasets
    without a `batch_size` are not checked. `batch_size` is the global batch, `replicas` ×
    `data.batch_size` (one replica's batch), as the dataset is batched.
    """
    train = bundle.sizes.get("train")
    if not all(is_int(n) for n in (batch_size, train)):
        return  # no batch_size (or an unknown size): nothing to compare
    per_replica = batch_size // max(replicas, 1)
    global_batch = f" × {replicas} replicas = {batch_size}" if replicas > 1 else ""
    require(
        batch_size <= train,
        f"data.batch_size{' × replicas' if replicas > 1 else ''} must be at most the number of "
        f"training examples ({train} with data={name}). Received: data.batch_size="
        f"{per_replica}{global_batch}. Lower it (e.g. data.batch_size="
        f"{_smaller_batch(train // max(replicas, 1))}) or train on more data.",
    )


def _smaller_batch(train):
    """The largest power of two ≤ `train`, capped at 32: a batch size to suggest."""
    return min(32, 1 << (max(train, 1).bit_length() - 1))


__all__ = ["DATASETS", "DataBundle", "build_data", "check_batch_fits", "resolve_cache"]
