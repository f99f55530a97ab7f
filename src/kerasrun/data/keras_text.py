"""The book's chapter 3 datasets: IMDB reviews, Reuters newswires, Boston housing prices.

Each builder calls `keras.datasets.<name>.load_data()` (a download on first use) unless
`path` names a local copy of the very file Keras downloads; a local file goes through the
same steps as `load_data` (shuffle with seed 113, start mark 1, word indices offset by 3,
words at or above `num_words` → 2, the OOV index), so both give the same arrays.

Text: `encoding: multi_hot` gives the book's `vectorize_sequences` float32 vectors of length
`num_words`, built batch by batch in tf.data (25,000 dense 10,000-d reviews would be 1 GB);
`encoding: sequence` gives int32 word indices padded to `maxlen` (`keras.utils.pad_sequences`).
Labels are int32 class indices (`(batch,)`); Boston's targets are float32 prices in k$.
numpy, TensorFlow and Keras are imported inside the functions.
"""

import functools
import os
import zipfile
from pathlib import Path

from kerasrun.data.bundle import DataBundle, kfold
from kerasrun.data.checks import check_batch_size, check_splits, split_indices
from kerasrun.data.download import KERAS_DATASETS_URL, keras_load
from kerasrun.errors import ConfigError, check_int, require

ENCODINGS = ("multi_hot", "sequence")
# keras.datasets.{imdb,reuters,boston_housing}.load_data defaults (keras/src/datasets/*.py).
KERAS_SEED = 113
START_CHAR = 1
OOV_CHAR = 2
INDEX_FROM = 3
KERAS_TEST_SPLIT = 0.2  # reuters and boston_housing
TRAIN_TEST_KEYS = ("x_train", "y_train", "x_test", "y_test")
IMDB_NAMES = ["negative", "positive"]
REUTERS_NAMES = [str(i) for i in range(46)]


def imdb(
    *,
    path=None,
    num_words=10000,
    maxlen=None,
    encoding="multi_hot",
    validation_split=None,
    validation_size=10000,
    batch_size=512,
    seed=0,
):
    """IMDB: 25,000 + 25,000 movie reviews as word indices, positive or negative (book §3.4).

    Args:
        path: a local `imdb.npz` as Keras downloads it (keys `x_train`, `y_train`, `x_test`,
            `y_test`; object arrays of raw word-index lists), or `None` for
            `keras.datasets.imdb.load_data()`.
        num_words: keep the `num_words` most frequent words; rarer ones become 2 (OOV).
        maxlen: with `encoding="sequence"`, pad or truncate (at the start) to this length;
            ignored by `multi_hot`.
        encoding: `"multi_hot"` (float32, length `num_words`) or `"sequence"` (int32, `maxlen`).
        validation_split: a fraction of the training reviews held out at random (seeded);
            `None` holds out the first `validation_size` reviews instead, as the book does.
        validation_size: reviews held out when `validation_split` is `None` (0: none).
        batch_size: examples per batch.
        seed: validation split and shuffle seed.
    """
    return _word_indices(
        "imdb",
        IMDB_NAMES,
        task="binary",
        read=load_imdb_file,
        path=path,
        num_words=num_words,
        maxlen=maxlen,
        encoding=encoding,
        validation_split=validation_split,
        validation_size=validation_size,
        batch_size=batch_size,
        seed=seed,
    )


def reuters(
    *,
    path=None,
    num_words=10000,
    maxlen=None,
    encoding="multi_hot",
    validation_size=1000,
    validation_split=None,
    batch_size=512,
    seed=0,
):
    """Reuters: 8,982 + 2,246 newswires as word indices, 46 topics (book §3.5).

    Args:
        path: a local `reuters.npz` as Keras downloads it (keys `x`, `y`; Keras shuffles with
            seed 113 and keeps the last 20% as the test set), or an npz already split as
            imdb.npz (`x_train`, `y_train`, `x_test`, `y_test`), or `None` for
            `keras.datasets.reuters.load_data()`.
        validation_size: newswires held out (the first ones, as the book) when
            `validation_split` is `None` (0: none).
        num_words, maxlen, encoding, validation_split, batch_size, seed: as for `imdb`.
    """
    return _word_indices(
        "reuters",
        REUTERS_NAMES,
        task="multiclass",
        read=load_reuters_file,
        path=path,
        num_words=num_words,
        maxlen=maxlen,
        encoding=encoding,
        validation_split=validation_split,
        validation_size=validation_size,
        batch_size=batch_size,
        seed=seed,
    )


def boston_housing(*, path=None, validation_split=0.2, batch_size=16, seed=0):
    """Boston housing: 404 + 102 suburbs, 13 features → median price in k$ (book §3.6).

    Features are standardised with the mean and std of the training examples only (after
    any validation hold-out); validation and test reuse them, as the book insists.

    Args:
        path: a local `boston_housing.npz` as Keras downloads it (keys `x`, `y`), or `None`
            for `keras.datasets.boston_housing.load_data()`. Both split off the same test set.
        validation_split: a fraction of the 404 training examples held out at random
            (seeded), 0.2 by default so that callbacks have a val_loss to watch; `None`
            means no validation set (the book uses K-fold instead).
        batch_size: examples per batch (the book's final model uses 16).
        seed: validation split and shuffle seed.
    """
    import numpy as np

    check_batch_size(batch_size)
    validation_split, _ = check_splits(validation_split)
    if path is None:
        source = "boston_housing: keras.datasets.boston_housing"
        (x, y), (x_test, y_test) = keras_load(
            "boston_housing",
            f"download {KERAS_DATASETS_URL}boston_housing.npz and set "
            "data.path=/path/to/boston_housing.npz",
        )
    else:
        source = f"boston_housing: {path}"
        (x, y), (x_test, y_test) = load_boston_file(path)
    x, x_test = np.asarray(x, "float32"), np.asarray(x_test, "float32")
    y, y_test = np.asarray(y, "float32").reshape(-1), np.asarray(y_test, "float32").reshape(-1)
    train, val, _ = split_indices(
        len(x), validation_split=validation_split, test_split=0.0, seed=seed
    )
    mean = x[train].mean(axis=0)
    std = x[train].std(axis=0)
    std[std == 0] = 1.0  # a constant feature stays 0 instead of becoming NaN
    splits = {
        "train": ((x[train] - mean) / std, y[train]),
        "validation": ((x[val] - mean) / std, y[val]),
        "test": ((x_test - mean) / std, y_test),
    }

    def make(features, targets, training):
        return array_dataset(features, targets, training=training, batch_size=batch_size, seed=seed)

    datasets = {name: make(*arrays, name == "train") for name, arrays in splits.items()}
    sizes = {name: len(features) for name, (features, _) in splits.items()}
    bundle = DataBundle.from_splits(
        datasets,
        sizes=sizes,
        input_shape=(x.shape[1],),
        task="regression",
        source=source,
        batch_size=batch_size,
    )
    # K-fold (the book's 3.6) folds all 404 examples, standardised as above.
    bundle.folds = _folds(splits, make)
    return bundle


# --- local files in Keras's format -----------------------------------------------------------


def load_imdb_file(path, *, num_words):
    """`load_data(num_words=num_words)`'s arrays, from a local copy of Keras's imdb.npz."""
    return _presplit(_load_npz(path, (TRAIN_TEST_KEYS,), "imdb.npz"), num_words)


def load_reuters_file(path, *, num_words):
    """`load_data(num_words=num_words)`'s arrays, from a local copy of Keras's reuters.npz.

    A file already split as imdb.npz (keys `x_train`, `y_train`, `x_test`, `y_test`) is read
    as imdb.npz is.
    """
    import numpy as np

    f = _load_npz(path, (("x", "y"), TRAIN_TEST_KEYS), "reuters.npz")
    if "x" not in f or "y" not in f:
        return _presplit(f, num_words)
    order = np.arange(len(f["x"]))
    np.random.RandomState(KERAS_SEED).shuffle(order)
    xs, ys = _keras_words(f["x"][order], num_words), np.asarray(f["y"])[order]
    cut = int(len(xs) * (1 - KERAS_TEST_SPLIT))
    return (xs[:cut], ys[:cut]), (xs[cut:], ys[cut:])


def load_boston_file(path):
    """`load_data()`'s arrays, from a local copy of Keras's boston_housing.npz."""
    import numpy as np

    f = _load_npz(path, (("x", "y"),), "boston_housing.npz")
    x, y = np.asarray(f["x"]), np.asarray(f["y"])
    order = np.arange(len(x))
    np.random.RandomState(KERAS_SEED).shuffle(order)
    x, y = x[order], y[order]
    cut = int(len(x) * (1 - KERAS_TEST_SPLIT))
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def _keras_words(sequences, num_words):
    """Keras's load_data steps: start mark, index offset, rare words → OOV."""
    import numpy as np

    out = [
        [START_CHAR] + [w + INDEX_FROM if w + INDEX_FROM < num_words else OOV_CHAR for w in seq]
        for seq in sequences
    ]
    result = np.empty(len(out), dtype="object")
    result[:] = out
    return result


def _presplit(f, num_words):
    """imdb.npz's steps: each split shuffled by one generator (train first), then words."""
    import numpy as np

    rng = np.random.RandomState(KERAS_SEED)
    split = {}
    for part in ("train", "test"):
        xs, ys = f[f"x_{part}"], f[f"y_{part}"]
        order = np.arange(len(xs))
        rng.shuffle(order)
        split[part] = (_keras_words(xs[order], num_words), np.asarray(ys)[order])
    return split["train"], split["test"]


def _load_npz(path, layouts, keras_name):
    """The arrays of a local npz holding all the keys of one of `layouts` (tuples of keys)."""
    path = Path(os.path.expanduser(str(path)))
    wanted = " or ".join(", ".join(keys) for keys in layouts)
    require(
        path.is_file(),
        f"data.path must be a local {keras_name} (Keras's format, keys {wanted}). "
        f"Received: data.path='{path}', which does not exist. Fix the path, or set "
        "data.path=null to download with keras.datasets.",
    )
    problem = npz_problem(path)
    require(
        problem is None,
        f"data.path must be a local {keras_name} (Keras's format, keys {wanted}). "
        f"Received: data.path='{path}', {problem}. Download it again from "
        f"{KERAS_DATASETS_URL}{keras_name}.",
    )
    # Keras's reader: a restricted unpickler for the ragged object arrays (not public API).
    from keras.src.datasets.npz_utils import load_npz

    try:
        f = load_npz(str(path))
    except Exception as e:  # zipfile, pickle and numpy errors alike: an unreadable file
        raise ConfigError(
            f"data.path must be a readable {keras_name} (keys {wanted}). "
            f"Received: data.path='{path}', which cannot be read ({type(e).__name__}: {e}). "
            f"Download it again from {KERAS_DATASETS_URL}{keras_name}."
        ) from e
    missing = [k for k in layouts[0] if k not in f]
    require(
        any(all(k in f for k in keys) for keys in layouts),
        f"data.path must be an .npz with keys {wanted} (Keras's {keras_name}). "
        f"Received: data.path='{path}', which lacks {', '.join(missing)} (it holds "
        f"{', '.join(sorted(f)) or 'no arrays'}). Download it from "
        f"{KERAS_DATASETS_URL}{keras_name}.",
    )
    return f


def npz_problem(path):
    """Why the file `path` is not an .npz, in words ("which is empty (0 bytes)"), or `None`.

    Read from its first bytes, so that the error says what the file is rather than what a
    zip or pickle reader stumbled on.
    """
    with open(path, "rb") as f:
        head = f.read(8)
    if not head:
        return "which is empty (0 bytes)"
    if head.startswith(b"\x93NUMPY"):
        return "which is one .npy array, not an .npz of named arrays (numpy.savez writes one)"
    if zipfile.is_zipfile(path):
        return None
    if head.startswith(b"PK\x03\x04"):
        return "which is a damaged or truncated zip archive (an interrupted download?)"
    return f"which is not an .npz (a zip archive of .npy arrays); it starts with {head!r}"


# --- checks and pipelines --------------------------------------------------------------------


def _check_text(*, num_words, maxlen, encoding, validation_split, validation_size, batch_size):
    """Checks a text config before any download or file read."""
    require(
        encoding in ENCODINGS,
        f"data.encoding must be one of {', '.join(ENCODINGS)}. "
        f"Received: data.encoding={encoding!r}. Use multi_hot for the book's chapter 3 "
        "dense models, sequence (with data.maxlen) for embeddings and RNNs.",
    )
    check_int("data.num_words", num_words, example=10000, why="the most frequent words kept")
    check_int("data.maxlen", maxlen, allow_none=True, example=500)
    require(
        encoding != "sequence" or maxlen is not None,
        "data.maxlen must be a positive integer with data.encoding=sequence (every sequence is "
        "padded or truncated to it). Received: data.maxlen=None. Set e.g. data.maxlen=500.",
    )
    check_int("data.validation_size", validation_size, minimum=0, example=1000)
    check_splits(validation_split)
    check_batch_size(batch_size)


def _word_indices(
    name,
    class_names,
    *,
    task,
    read,
    path,
    num_words,
    maxlen,
    encoding,
    validation_split,
    validation_size,
    batch_size,
    seed,
):
    """The IMDB or Reuters `DataBundle`: the config checked, then `keras.datasets.<name>`
    (`path=None`) or the local file `read(path, num_words=num_words)`, split and encoded."""
    import numpy as np

    _check_text(
        num_words=num_words,
        maxlen=maxlen,
        encoding=encoding,
        validation_split=validation_split,
        validation_size=validation_size,
        batch_size=batch_size,
    )
    if path is None:
        hint = f"download {KERAS_DATASETS_URL}{name}.npz and set data.path=/path/to/{name}.npz"
        source = f"{name}: keras.datasets.{name}"
        arrays = keras_load(name, hint, num_words=num_words)
    else:
        source, arrays = f"{name}: {path}", read(path, num_words=num_words)
    (x, y), (x_test, y_test) = arrays
    y, y_test = np.asarray(y, "int32").reshape(-1), np.asarray(y_test, "int32").reshape(-1)
    if validation_split is not None:
        train, val, _ = split_indices(
            len(x), validation_split=validation_split, test_split=0.0, seed=seed
        )
    else:
        require(
            validation_size < len(x),
            f"data.validation_size must leave training examples: the training set has "
            f"{len(x)}. Received: data.validation_size={validation_size}. "
            "Lower it, or set data.validation_split=0.2 instead.",
        )
        val, train = np.arange(validation_size), np.arange(validation_size, len(x))
    splits = {
        "train": (x[train], y[train]),
        "validation": (x[val], y[val]),
        "test": (x_test, y_test),
    }

    def make(sequences, labels, training):
        if encoding == "sequence":
            import keras

            padded = keras.utils.pad_sequences(list(sequences), maxlen=maxlen, dtype="int32")
            return array_dataset(
                padded, labels, training=training, batch_size=batch_size, seed=seed
            )
        return _multi_hot_dataset(
            sequences, labels, num_words, training=training, batch_size=batch_size, seed=seed
        )

    datasets = {name: make(*arrays, name == "train") for name, arrays in splits.items()}
    sizes = {name: len(sequences) for name, (sequences, _) in splits.items()}
    shape = (maxlen,) if encoding == "sequence" else (num_words,)
    bundle = DataBundle.from_splits(
        datasets,
        sizes=sizes,
        input_shape=shape,
        task=task,
        class_names=list(class_names),
        source=source,
        batch_size=batch_size,
    )
    bundle.folds = _folds(splits, make)
    return bundle


def _folds(splits, make):
    """`DataBundle.folds`: K-fold over the training and validation examples, in that order."""
    import numpy as np

    (x, y), (x_val, y_val) = splits["train"], splits["validation"]
    return functools.partial(
        kfold,
        np.concatenate([x, x_val]),
        np.concatenate([y, y_val]),
        make_dataset=lambda x, y, training: make(x, y, training),
    )


def array_dataset(x, y, *, training, batch_size, seed):
    """from_tensor_slices → shuffle (training) → batch → prefetch; `None` when empty."""
    import tensorflow as tf

    if not len(x):
        return None
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if training:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _multi_hot_dataset(sequences, labels, num_words, *, training, batch_size, seed):
    """Word-index lists → batches of float32 multi-hot rows, encoded batch by batch."""
    import numpy as np
    import tensorflow as tf

    if not len(sequences):
        return None
    lengths = np.array([len(s) for s in sequences], "int64")
    flat = np.fromiter((w for s in sequences for w in s), "int32", count=int(lengths.sum()))
    ragged = tf.RaggedTensor.from_row_lengths(flat, lengths)
    ds = tf.data.Dataset.from_tensor_slices((ragged, labels))
    if training:
        ds = ds.shuffle(len(sequences), seed=seed, reshuffle_each_iteration=True)

    def encode(words, batch_labels):
        rows = tf.math.bincount(
            words,
            minlength=num_words,
            maxlength=num_words,
            binary_output=True,
            axis=-1,
            dtype=tf.float32,
        )
        return tf.ensure_shape(rows, [None, num_words]), batch_labels

    ds = ds.ragged_batch(batch_size).map(encode, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
