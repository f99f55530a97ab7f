"""IMDB, Reuters and Boston housing from tiny npz files in Keras's own format: no network.

A file that is not an .npz, or lacks a key, is a one-line `ConfigError` that names it and
the keys it must hold.
"""

import keras
import numpy as np
import pytest

from helpers import assert_one_line, collect, zipped
from kerasrun.data import build_data, keras_text
from kerasrun.errors import ConfigError

NEW = ("imdb", "reuters", "boston_housing")
WORD = 4  # raw index in the file; Keras offsets it by 3, so the models see word 7


def ragged(lists):
    out = np.empty(len(lists), dtype="object")
    out[:] = [list(map(int, s)) for s in lists]
    return out


def reviews(rng, labels):
    """Raw word-index lists (as in Keras's file: no start mark, no offset); label 1 says WORD."""
    out = []
    for label in labels:
        seq = rng.integers(5, 40, size=rng.integers(3, 15)).tolist()
        if label:
            seq += [WORD] * 3
        out.append(seq)
    return ragged(out)


@pytest.fixture
def imdb_file(tmp_path):
    rng = np.random.default_rng(0)
    y, y_test = rng.integers(0, 2, 60), rng.integers(0, 2, 40)
    path = tmp_path / "imdb.npz"
    np.savez(path, x_train=reviews(rng, y), y_train=y, x_test=reviews(rng, y_test), y_test=y_test)
    return path


@pytest.fixture
def reuters_file(tmp_path):
    rng = np.random.default_rng(1)
    y = np.arange(100) % 46
    path = tmp_path / "reuters.npz"
    np.savez(path, x=reviews(rng, y % 2), y=y)
    return path


@pytest.fixture
def boston_file(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.normal(50, 10, size=(60, 13)) * np.arange(1, 14)
    path = tmp_path / "boston_housing.npz"
    np.savez(path, x=x, y=x[:, 0] / 10 + rng.normal(0, 1, 60))
    return path


def multi_hot(sequences, num_words):
    out = np.zeros((len(sequences), num_words), "float32")
    for i, seq in enumerate(sequences):
        out[i, seq] = 1.0
    return out


# --- the YAML files and the registry ---------------------------------------------------------


# --- local files read exactly as keras.datasets reads them ------------------------------------


@pytest.mark.parametrize(
    "name, fixture, kwargs",
    [
        ("imdb", "imdb_file", {"num_words": 20}),
        ("reuters", "reuters_file", {"num_words": 20}),
        ("boston_housing", "boston_file", {}),
    ],
)
def test_local_file_matches_keras_load_data(name, fixture, kwargs, request, monkeypatch):
    import importlib

    path = request.getfixturevalue(fixture)
    module = importlib.import_module(f"keras.src.datasets.{name}")
    monkeypatch.setattr(module, "get_file", lambda *a, **k: str(path))  # no download
    expected = module.load_data(**kwargs)
    loader = {
        "imdb": keras_text.load_imdb_file,
        "reuters": keras_text.load_reuters_file,
        "boston_housing": keras_text.load_boston_file,
    }[name]
    got = loader(path, **kwargs)
    for (x, y), (x_ref, y_ref) in zip(got, expected, strict=True):
        if x.dtype == object:
            assert [list(s) for s in x] == [list(s) for s in x_ref]
        else:
            np.testing.assert_array_equal(x, x_ref)
        np.testing.assert_array_equal(y, y_ref)
    if name == "boston_housing":
        assert len(got[0][0]) == int(60 * 0.8)


# --- IMDB --------------------------------------------------------------------------------------


def test_imdb_multi_hot_is_the_books_vectorize_sequences(imdb_file):
    bundle = build_data("imdb", path=str(imdb_file), num_words=50, validation_size=10, seed=0)
    assert (bundle.task, bundle.class_names) == ("binary", ["negative", "positive"])
    assert bundle.input_shape == (50,) and bundle.batch_size == 512
    assert bundle.sizes == {"train": 50, "validation": 10, "test": 40}
    assert bundle.source == f"imdb: {imdb_file}"
    (x, y), (x_test, y_test) = keras_text.load_imdb_file(imdb_file, num_words=50)
    x_val, y_val = collect(bundle.validation_dataset)
    assert x_val.dtype == np.float32 and y_val.dtype == np.int32 and x_val.shape == (10, 50)
    np.testing.assert_array_equal(x_val, multi_hot(x[:10], 50))  # the first 10, as the book
    np.testing.assert_array_equal(y_val, y[:10])
    xt, yt = collect(bundle.test_dataset)
    np.testing.assert_array_equal(xt, multi_hot(x_test, 50))
    np.testing.assert_array_equal(yt, y_test)
    xtr, ytr = collect(bundle.train_dataset)
    assert sorted(map(tuple, xtr)) == sorted(map(tuple, multi_hot(x[10:], 50)))
    assert set(np.unique(xtr)) <= {0.0, 1.0} and (xtr[:, 1] == 1).all()  # the start mark
    assert (xtr[:, 7] == ytr).all()  # word 7 (raw 4 + offset 3) marks the positives
    assert bundle.train_dataset.element_spec[0].shape.as_list() == [None, 50]


def test_imdb_sequence_encoding_pads_to_maxlen(imdb_file):
    bundle = build_data(
        "imdb", path=str(imdb_file), encoding="sequence", maxlen=12, validation_size=0, seed=0
    )
    assert bundle.input_shape == (12,) and bundle.validation_dataset is None
    assert bundle.sizes["validation"] == 0
    x_test, y_test = collect(bundle.test_dataset)
    assert x_test.dtype == np.int32 and x_test.shape == (40, 12) and y_test.dtype == np.int32

    (_, _), (ref, _) = keras_text.load_imdb_file(imdb_file, num_words=10000)
    np.testing.assert_array_equal(x_test, keras.utils.pad_sequences(list(ref), maxlen=12))


def test_num_words_caps_the_vocabulary_with_the_oov_index(imdb_file):
    (x, _), _ = keras_text.load_imdb_file(imdb_file, num_words=8)
    words = {w for s in x for w in s}
    assert max(words) < 8 and 2 in words and 7 in words and 1 in words
    bundle = build_data(
        "imdb",
        path=str(imdb_file),
        num_words=8,
        encoding="sequence",
        maxlen=20,
        seed=0,
        validation_size=5,
    )
    xs, _ = collect(bundle.train_dataset)
    assert xs.max() < 8 and (xs == 2).any()


def test_validation_split_is_seeded_and_replaces_validation_size(imdb_file):
    def validation(seed):
        bundle = build_data(
            "imdb", path=str(imdb_file), num_words=50, validation_split=0.25, seed=seed
        )
        assert bundle.sizes == {"train": 45, "validation": 15, "test": 40}
        return collect(bundle.validation_dataset)[0]

    first, again, other = validation(0), validation(0), validation(1)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    (x, _), _ = keras_text.load_imdb_file(imdb_file, num_words=50)
    assert not np.array_equal(first, multi_hot(x[:15], 50))  # not the first 15


def test_training_batches_are_shuffled_with_the_seed(imdb_file):
    def labels(seed):
        b = build_data("imdb", path=str(imdb_file), batch_size=8, validation_size=10, seed=seed)
        return collect(b.train_dataset)[1]

    np.testing.assert_array_equal(labels(3), labels(3))
    assert sorted(labels(3)) == sorted(labels(4))


# --- Reuters -----------------------------------------------------------------------------------


def test_reuters_is_multiclass_with_46_int_labels(reuters_file):
    bundle = build_data("reuters", path=str(reuters_file), num_words=30, validation_size=10, seed=0)
    assert bundle.task == "multiclass" and bundle.num_classes == 46
    assert bundle.class_names[:3] == ["0", "1", "2"] and bundle.class_names[-1] == "45"
    assert bundle.sizes == {"train": 70, "validation": 10, "test": 20}
    assert bundle.input_shape == (30,)
    x, y = collect(bundle.train_dataset)
    assert x.dtype == np.float32 and x.shape == (70, 30) and y.dtype == np.int32
    assert 0 <= y.min() and y.max() <= 45


# --- Boston housing ----------------------------------------------------------------------------


def test_boston_is_standardised_with_training_statistics_only(boston_file):
    bundle = build_data("boston_housing", path=str(boston_file), validation_split=None, seed=0)
    assert (bundle.task, bundle.class_names, bundle.num_classes) == ("regression", [], 0)
    assert bundle.input_shape == (13,) and bundle.batch_size == 16
    assert bundle.validation_dataset is None
    assert bundle.sizes == {"train": 48, "validation": 0, "test": 12}
    x, y = collect(bundle.train_dataset)
    x_test, y_test = collect(bundle.test_dataset)
    assert x.dtype == np.float32 and y.dtype == np.float32 and y_test.dtype == np.float32
    np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=0), 1, atol=1e-4)
    assert np.abs(x_test.mean(axis=0)).max() > 1e-3  # the test set's own stats are not used
    (raw, targets), (raw_test, raw_y_test) = keras_text.load_boston_file(boston_file)
    mean, std = raw.mean(axis=0), raw.std(axis=0)
    np.testing.assert_allclose(x_test, (raw_test - mean) / std, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(y_test, raw_y_test, rtol=1e-6)
    assert sorted(y) == pytest.approx(sorted(targets.astype("float32")))


def test_boston_validation_split_holds_out_before_standardising(boston_file):
    bundle = build_data("boston_housing", path=str(boston_file), validation_split=0.25, seed=0)
    assert bundle.sizes == {"train": 36, "validation": 12, "test": 12}
    x, _ = collect(bundle.train_dataset)
    x_val, y_val = collect(bundle.validation_dataset)
    np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-5)
    assert x_val.shape == (12, 13) and y_val.dtype == np.float32


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, kwargs, words",
    [
        ("imdb", {"encoding": "one_hot"}, ["multi_hot, sequence", "data.encoding='one_hot'"]),
        ("imdb", {"encoding": "sequence"}, ["data.maxlen=None", "data.maxlen=500"]),
        ("reuters", {"num_words": 0}, ["positive integer", "data.num_words=0"]),
        ("imdb", {"batch_size": 0}, ["data.batch_size=0"]),
        ("boston_housing", {"batch_size": -1}, ["data.batch_size=-1"]),
        ("reuters", {"validation_split": 1.5}, ["[0, 1)", "data.validation_split=1.5"]),
        ("imdb", {"path": "/no/such/imdb.npz"}, ["does not exist", "data.path=null"]),
        ("boston_housing", {"path": "/no/such.npz"}, ["data.path='/no/such.npz'"]),
    ],
)
def test_config_errors_are_one_line(name, kwargs, words):
    with pytest.raises(ConfigError) as e:
        build_data(name, seed=0, **kwargs)
    message = str(e.value)
    assert "\n" not in message and "Received:" in message
    for word in words:
        assert word in message


def test_validation_size_must_leave_training_data(imdb_file):
    with pytest.raises(ConfigError, match="data.validation_size=60"):
        build_data("imdb", path=str(imdb_file), validation_size=60, seed=0)


def test_a_file_without_keras_keys_is_a_config_error(tmp_path):
    path = tmp_path / "reuters.npz"
    np.savez(path, x_train=np.zeros(3))
    with pytest.raises(ConfigError, match="lacks x, y"):
        build_data("reuters", path=str(path), seed=0)


@pytest.mark.parametrize("name", NEW)
def test_offline_download_says_where_to_get_the_file(name, monkeypatch):

    def offline(**kwargs):
        raise Exception("URL fetch failure on https://...: None -- [Errno -3] no network")

    monkeypatch.setattr(getattr(keras.datasets, name), "load_data", offline)
    with pytest.raises(ConfigError) as e:
        build_data(name, seed=0)
    message = str(e.value)
    assert "\n" not in message and "Received: data.path=None" in message
    assert f"{keras_text.KERAS_DATASETS_URL}{name}.npz" in message
    assert f"data.path=/path/to/{name}.npz" in message


def test_reuters_also_reads_a_file_split_as_imdb_npz(imdb_file):
    got = keras_text.load_reuters_file(imdb_file, num_words=30)
    expected = keras_text.load_imdb_file(imdb_file, num_words=30)
    for (x, y), (x_ref, y_ref) in zip(got, expected, strict=True):
        assert [list(s) for s in x] == [list(s) for s in x_ref]
        np.testing.assert_array_equal(y, y_ref)
    bundle = build_data("reuters", path=str(imdb_file), validation_size=10, seed=0)
    assert bundle.sizes == {"train": 50, "validation": 10, "test": 40}


# --- Keras-format npz files (data.path) -----------------------------------------------------------


def _npy(path):
    np.save(path, np.zeros(3))
    return path.with_suffix(".npy").read_bytes()


NOT_NPZ = {
    "empty": (lambda tmp: b"", "which is empty (0 bytes)"),
    "text": (lambda tmp: b"x_train,y_train\n1,0\n", "which is not an .npz (a zip archive"),
    "npy": (lambda tmp: _npy(tmp / "one"), "which is one .npy array, not an .npz"),
    "truncated": (lambda tmp: zipped("x" * 500)[:60], "damaged or truncated zip archive"),
}
KEYS = {
    "imdb": "x_train, y_train, x_test, y_test",
    "reuters": "x, y or x_train, y_train, x_test, y_test",
    "boston_housing": "x, y",
    "mnist": "x_train, y_train, x_test, y_test",
}


@pytest.mark.parametrize("name", sorted(KEYS))
@pytest.mark.parametrize("kind", sorted(NOT_NPZ))
def test_a_file_that_is_not_an_npz_names_the_file_and_the_keys(tmp_path, name, kind):
    make, what = NOT_NPZ[kind]
    path = tmp_path / f"{name}.npz"
    path.write_bytes(make(tmp_path))
    with pytest.raises(ConfigError) as e:
        build_data(name, path=str(path), seed=0)
    assert_one_line(e, f"data.path='{path}'", what, KEYS[name], f"{name}.npz")


@pytest.mark.parametrize(
    "name, arrays, lacks",
    [
        ("imdb", ("x_train", "y_train", "x_test"), "lacks y_test (it holds x_test, x_train"),
        ("boston_housing", ("x",), "lacks y (it holds x)"),
        ("mnist", ("x_train", "y_train", "x_test"), "lacks y_test"),
    ],
)
def test_an_npz_missing_a_key_names_the_file_and_the_expected_keys(tmp_path, name, arrays, lacks):
    path = tmp_path / f"{name}.npz"
    np.savez(path, **{key: np.zeros((4, 2)) for key in arrays})
    with pytest.raises(ConfigError) as e:
        build_data(name, path=str(path), seed=0)
    assert_one_line(e, f"data.path='{path}'", KEYS[name], lacks)
