"""Datasets that fit in memory as numpy arrays: digits, MNIST, Fashion-MNIST, CIFAR-10.

Each builder loads uint8 images of shape `(n, h, w, c)` and int labels, then hands them to
`pipeline.bundle_from_arrays` (cache → shuffle → batch → float32 → augment → prefetch).
`digits` ships inside the package; the others call `keras.datasets.*.load_data()`
(a download on first use) unless `path` names a local copy.
"""

import gzip
import os
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from kerasrun.data.checks import check_classes, check_common, check_splits, split_indices
from kerasrun.data.download import KERAS_DATASETS_URL, keras_load
from kerasrun.data.keras_text import npz_problem
from kerasrun.data.pipeline import bundle_from_arrays
from kerasrun.errors import ConfigError, require

DIGITS_FILE = Path(__file__).resolve().parent / "digits.npz"
DIGIT_NAMES = [str(i) for i in range(10)]
FASHION_NAMES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
CIFAR10_NAMES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
FASHION_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


def digits(
    *,
    validation_split=0.15,
    test_split=0.15,
    batch_size=64,
    image_size=None,
    augment=None,
    cache=True,
    classes=None,
    seed=0,
):
    """scikit-learn's 1,797 8x8 handwritten digits (embedded: no download), 10 classes.

    The default `train` dataset: tiny and fast. No official splits exist, so the
    validation and test splits are a seeded random draw.

    Args:
        validation_split: fraction of the images for validation.
        test_split: fraction of the images for the test.
        batch_size: examples per batch.
        image_size: `[height, width]` to resize to, or `None` for the native 8x8.
        augment: augmentation keys (see `kerasrun.data.augment`), or `None`.
        cache: keep resized images in memory (only matters with `image_size`).
        classes: the class names to keep (e.g. `["3"]`; labels follow this order), or
            `None` for all: one class is for a generative model (`model=vae`).
        seed: split, shuffle and augmentation seed.
    """
    classes = check_classes(classes, DIGIT_NAMES, data="digits")
    check_common(
        batch_size=batch_size, image_size=image_size, augment=augment, allow_native_size=True
    )
    validation_split, test_split = check_splits(validation_split, test_split)
    with np.load(DIGITS_FILE, allow_pickle=False) as f:
        x, y = f["images"][..., None], f["labels"]
    train, val, test = split_indices(
        len(x), validation_split=validation_split, test_split=test_split, seed=seed
    )
    splits = {
        "train": (x[train], y[train]),
        "validation": (x[val], y[val]),
        "test": (x[test], y[test]),
    }
    return bundle_from_arrays(
        splits,
        class_names=DIGIT_NAMES,
        batch_size=batch_size,
        image_size=image_size,
        augment=augment,
        cache=cache,
        seed=seed,
        source="digits: scikit-learn 8x8 digits embedded in kerasrun",
        classes=classes,
    )


def mnist(
    *,
    path=None,
    validation_split=0.1,
    batch_size=128,
    image_size=None,
    augment=None,
    cache=True,
    classes=None,
    seed=0,
):
    """MNIST: 60,000 + 10,000 28x28 grey handwritten digits, 10 classes.

    Args:
        path: a local `mnist.npz` (keys `x_train`, `y_train`, `x_test`, `y_test`, as
            Keras's file), or `None` for `keras.datasets.mnist.load_data()`.
        validation_split: fraction of the official training set for validation (seeded);
            the test set is the official one.
        batch_size, image_size, augment, cache, classes, seed: as for `digits`.
    """
    return _official(
        "mnist",
        DIGIT_NAMES,
        read=_load_npz,
        hint=f"download {KERAS_DATASETS_URL}mnist.npz and set data.path=/path/to/mnist.npz",
        path=path,
        validation_split=validation_split,
        batch_size=batch_size,
        image_size=image_size,
        augment=augment,
        cache=cache,
        classes=classes,
        seed=seed,
    )


def fashion_mnist(
    *,
    path=None,
    validation_split=0.1,
    batch_size=128,
    image_size=None,
    augment=None,
    cache=True,
    classes=None,
    seed=0,
):
    """Fashion-MNIST: 60,000 + 10,000 28x28 grey clothing images, 10 classes.

    Args:
        path: an `.npz` in Keras's mnist.npz format, or a folder holding the four
            Fashion-MNIST `.gz` files (`train-images-idx3-ubyte.gz`, ...), or `None` for
            `keras.datasets.fashion_mnist.load_data()`.
        validation_split, batch_size, image_size, augment, cache, seed: as for `mnist`.
        classes: the class names to keep, e.g. `["Sneaker"]`, or `None`.
    """
    return _official(
        "fashion_mnist",
        FASHION_NAMES,
        read=_load_fashion,
        hint=(
            f"download the four files {', '.join(FASHION_FILES)} from {KERAS_DATASETS_URL} "
            "into one folder and set data.path=/path/to/that/folder"
        ),
        path=path,
        validation_split=validation_split,
        batch_size=batch_size,
        image_size=image_size,
        augment=augment,
        cache=cache,
        classes=classes,
        seed=seed,
    )


def cifar10(
    *,
    path=None,
    validation_split=0.1,
    batch_size=64,
    image_size=None,
    augment=None,
    cache=True,
    classes=None,
    seed=0,
):
    """CIFAR-10: 50,000 + 10,000 32x32 colour images, 10 classes.

    Args:
        path: the extracted `cifar-10-batches-py` folder (or a folder holding it), or the
            `cifar-10-python.tar.gz` archive, or `None` for
            `keras.datasets.cifar10.load_data()`.
        validation_split, batch_size, image_size, augment, cache, seed: as for `mnist`.
        classes: the class names to keep, e.g. `["frog"]` (the book's §8.5), or `None`.
    """
    return _official(
        "cifar10",
        CIFAR10_NAMES,
        read=_load_cifar10,
        hint=f"download {CIFAR10_URL} and set data.path=/path/to/cifar-10-python.tar.gz",
        path=path,
        validation_split=validation_split,
        batch_size=batch_size,
        image_size=image_size,
        augment=augment,
        cache=cache,
        classes=classes,
        seed=seed,
    )


def _official(
    name,
    class_names,
    *,
    read,
    hint,
    path,
    validation_split,
    batch_size,
    image_size,
    augment,
    cache,
    classes,
    seed,
):
    """A dataset with official train/test splits, from `keras.datasets.<name>` (`path=None`)
    or from `read(path)`, with a seeded validation split carved from train.

    The config is checked before the download or the file read.
    """
    classes = check_classes(classes, class_names, data=name)
    check_common(
        batch_size=batch_size, image_size=image_size, augment=augment, allow_native_size=True
    )
    validation_split, _ = check_splits(validation_split)
    if path is None:
        source, arrays = f"{name}: keras.datasets.{name}", keras_load(name, hint)
    else:
        source, arrays = f"{name}: {path}", read(path)
    (x, y), (x_test, y_test) = arrays
    x, x_test = _as_images(x), _as_images(x_test)
    y, y_test = np.asarray(y).reshape(-1), np.asarray(y_test).reshape(-1)
    train, val, _ = split_indices(
        len(x), validation_split=validation_split, test_split=0.0, seed=seed
    )
    splits = {
        "train": (x[train], y[train]),
        "validation": (x[val], y[val]),
        "test": (x_test, y_test),
    }
    return bundle_from_arrays(
        splits,
        class_names=class_names,
        batch_size=batch_size,
        image_size=image_size,
        augment=augment,
        cache=cache,
        seed=seed,
        source=source,
        classes=classes,
    )


def _as_images(x):
    """uint8 `(n, h, w, c)`: grey images get their channel axis."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.dtype != np.uint8:
        x = np.clip(np.round(x), 0, 255).astype("uint8")
    return x


def _local(path, *, what):
    path = Path(os.path.expanduser(str(path)))
    require(
        path.exists(),
        f"data.path must be {what}. Received: data.path='{path}', which does not exist. "
        "Fix the path, or set data.path=null to download with keras.datasets.",
    )
    return path


def _load_npz(path):
    """`((x_train, y_train), (x_test, y_test))` from an npz in Keras's mnist.npz format."""
    path = _local(path, what="an .npz with x_train, y_train, x_test, y_test")
    keys = ("x_train", "y_train", "x_test", "y_test")
    problem = None if path.is_dir() else npz_problem(path)
    require(
        problem is None,
        f"data.path must be an .npz with {', '.join(keys)} (Keras's mnist.npz format). "
        f"Received: data.path='{path}', {problem}. Download {KERAS_DATASETS_URL}mnist.npz, or "
        "save your arrays with numpy.savez under those names.",
    )
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in keys if k not in f.files]
            require(
                not missing,
                f"data.path must be an .npz with {', '.join(keys)} (Keras's mnist.npz format). "
                f"Received: data.path='{path}', which lacks {', '.join(missing)}. "
                "Save the arrays under those names.",
            )
            x, y, x_test, y_test = (f[k] for k in keys)
    except (OSError, ValueError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(
            f"data.path must be an .npz file with {', '.join(keys)}. "
            f"Received: data.path='{path}', which numpy cannot read ({e}). Fix the file."
        ) from e
    return (x, y), (x_test, y_test)


def _load_fashion(path):
    """Fashion-MNIST from a folder of its four .gz files, or from an npz as mnist.npz."""
    if Path(os.path.expanduser(str(path))).is_dir():
        return _load_idx_folder(path)
    return _load_npz(path)


def _load_idx_folder(path):
    """Fashion-MNIST's four gzipped IDX files (as Keras caches them) from one folder."""
    path = _local(path, what="a folder with the four Fashion-MNIST .gz files")
    missing = [f for f in FASHION_FILES if not (path / f).is_file()]
    require(
        not missing,
        f"data.path must be a folder holding {', '.join(FASHION_FILES)}. "
        f"Received: data.path='{path}', which lacks {', '.join(missing)}. Add them.",
    )

    def read(name, offset):
        with gzip.open(path / name, "rb") as f:
            return np.frombuffer(f.read(), np.uint8, offset=offset)

    # IDX headers: 16 bytes before the images, 8 before the labels.
    y, y_test = read(FASHION_FILES[1], 8), read(FASHION_FILES[3], 8)
    x = read(FASHION_FILES[0], 16).reshape(len(y), 28, 28)
    x_test = read(FASHION_FILES[2], 16).reshape(len(y_test), 28, 28)
    return (x, y), (x_test, y_test)


def _load_cifar10(path):
    """CIFAR-10's python batches from the extracted folder or the .tar.gz archive."""
    path = _local(path, what="the cifar-10-batches-py folder or cifar-10-python.tar.gz")
    if path.is_dir():
        return _read_cifar_batches(path, shown=path)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            with tarfile.open(path) as archive:
                # filter="data" refuses absolute paths, links out of `tmp` and devices.
                archive.extractall(tmp, filter="data")
        except tarfile.TarError as e:
            raise ConfigError(
                "data.path must be the cifar-10-python.tar.gz archive or its extracted "
                f"cifar-10-batches-py folder. Received: data.path='{path}', which is not a "
                f"readable tar archive ({e}). Download it again from {CIFAR10_URL}."
            ) from e
        return _read_cifar_batches(Path(tmp), shown=path)


def _read_cifar_batches(folder, shown):
    # Keras's parser: a restricted unpickler that only rebuilds numpy arrays (not public API).
    from keras.src.datasets.cifar import load_batch

    for candidate in (folder, folder / "cifar-10-batches-py"):
        names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        if all((candidate / n).is_file() for n in names):
            batches = [load_batch(str(candidate / n)) for n in names]
            x = np.concatenate([b[0] for b in batches[:5]]).transpose(0, 2, 3, 1)
            y = np.concatenate([np.asarray(b[1]) for b in batches[:5]])
            x_test, y_test = batches[5][0].transpose(0, 2, 3, 1), np.asarray(batches[5][1])
            return (x, y), (x_test, y_test)
    raise ConfigError(
        "data.path must be the cifar-10-batches-py folder (data_batch_1..5, test_batch) or "
        f"cifar-10-python.tar.gz. Received: data.path='{shown}', where those files are "
        f"missing. Download {CIFAR10_URL} and point data.path at it."
    )
