"""The data registry: `data=<name>` selects `conf/data/<name>.yaml`; its `name:` picks a builder.

Every builder takes plain keyword arguments (its signature is its schema) and returns a
`DataBundle`. TensorFlow is imported inside the builders, not at import time.
"""

from numbers import Integral

from kerasrun.config import call_builder, lookup
from kerasrun.data import arrays, folders, keras_text, raw_text, text_file, timeseries
from kerasrun.data.bundle import DataBundle
from kerasrun.errors import require

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


def check_batch_fits(bundle, batch_size, *, name):
    """Refuses a `batch_size` larger than the training set: not one full batch per epoch.

    Only the built data knows its size (a folder's files, `train_samples`, the splits), so
    `train` calls this after the builder (not `evaluate`: it only reads the data); datasets
    without a `batch_size` are not checked.
    """
    train = bundle.sizes.get("train")
    if not all(isinstance(n, Integral) for n in (batch_size, train)):
        return  # no batch_size (or an unknown size): nothing to compare
    require(
        batch_size <= train,
        f"data.batch_size must be at most the number of training examples ({train} with "
        f"data={name}). Received: data.batch_size={batch_size}. Lower it "
        f"(e.g. data.batch_size={_smaller_batch(train)}) or train on more data.",
    )


def _smaller_batch(train):
    """The largest power of two ≤ `train`, capped at 32: a batch size to suggest."""
    return min(32, 1 << (max(train, 1).bit_length() - 1))


__all__ = ["DATASETS", "DataBundle", "build_data", "check_batch_fits"]
