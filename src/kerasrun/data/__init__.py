"""The data registry: `data=<name>` selects `conf/data/<name>.yaml`; its `name:` picks a builder.

Every builder takes plain keyword arguments (its signature is its schema) and returns a
`DataBundle`. TensorFlow is imported inside the builders, not at import time.
"""

from kerasrun.config import call_builder, lookup
from kerasrun.data import arrays, folders, keras_text, raw_text, timeseries
from kerasrun.data.bundle import DataBundle

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
}


def build_data(name, **kwargs):
    """Builds the `DataBundle` of dataset `name` from its plain config (without `name`)."""
    return call_builder(lookup(DATASETS, name, group="data"), kwargs, group="data", name=name)


__all__ = ["DATASETS", "DataBundle", "build_data"]
