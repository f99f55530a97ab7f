"""The book's 6.1.3: raw aclImdb reviews, TextVectorization, GloVe vectors in a frozen Embedding.

A tiny `aclImdb` tree and a tiny GloVe file are written into tmp_path; the download is served
by an http.server on 127.0.0.1. Real TensorFlow and Keras throughout.
"""

import hashlib
import io
import json
import logging
import tarfile
import zipfile

import keras
import numpy as np
import pytest

from cli import only_run_dir, read_metrics, run_train
from kerasrun.data import build_data, raw_text
from kerasrun.errors import ConfigError
from kerasrun.models import build_model
from kerasrun.tasks import Task
from test_data import _Server

FILLER = ["the", "movie", "film", "plot", "actor", "scene", "story", "music"]
# The second word of every review says its class: a separable problem.
CLASS_WORD = {0: "awful", 1: "great"}
MORE = {0: ["boring", "dull"], 1: ["wonderful", "superb"]}
PER_CLASS = {"train": 40, "test": 20}
DIM = 4
GLOVE = {  # words of the reviews and one that is not ("banana"); "the", "film"... are missing
    "great": [1.0, 2.0, 3.0, 4.0],
    "awful": [-1.0, -2.0, -3.0, -4.0],
    "movie": [0.5, 0.25, -0.5, 0.125],
    "boring": [0.0, 1.5, 0.0, -1.5],
    "banana": [9.0, 9.0, 9.0, 9.0],
}
BINARY = Task("binary")


def write_aclimdb(parent, seed=0):
    """`parent/aclImdb/{train,test}/{neg,pos}/<i>_<rating>.txt`, as Stanford's archive.

    Review k starts with its own word `uniq<k>` (so a word of a validation or test review is
    never in the training vocabulary), then its class word. One positive training review has
    `<br />` tags, one negative one a byte that is not UTF-8; train/unsup/ must be ignored.
    """
    rng = np.random.default_rng(seed)
    k = 0
    for split, n in PER_CLASS.items():
        for label, name in enumerate(("neg", "pos")):
            folder = parent / "aclImdb" / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                words = [f"uniq{k}", CLASS_WORD[label], *rng.choice(FILLER + MORE[label], 12)]
                data = " ".join(words).encode()
                if (split, label, i) == ("train", 1, 0):
                    data += b"<br /><br />the end"
                if (split, label, i) == ("train", 0, 1):
                    data += b" caf\xe9"  # Latin-1, not UTF-8
                (folder / f"{i}_{8 if label else 2}.txt").write_bytes(data)
                k += 1
    unsup = parent / "aclImdb" / "train" / "unsup"
    unsup.mkdir()
    (unsup / "0_0.txt").write_text("unlabelled words " * 5)
    (parent / "aclImdb" / "README").write_text("Large Movie Review Dataset v1.0")
    return parent / "aclImdb"


def write_glove(path, vectors=GLOVE):
    path.write_text("".join(f"{w} {' '.join(map(str, v))}\n" for w, v in vectors.items()))
    return path


@pytest.fixture
def aclimdb(tmp_path):
    return write_aclimdb(tmp_path / "data")


@pytest.fixture
def glove(tmp_path):
    return write_glove(tmp_path / "glove.4d.txt")


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    yield
    keras.backend.clear_session()


def collect(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds], strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def build(root, **kwargs):
    defaults = dict(train_samples=30, validation_samples=20, max_tokens=200, seed=0)
    defaults["output_sequence_length"] = 10
    return build_data("imdb_raw", root=str(root), **{**defaults, **kwargs})


# --- the data -------------------------------------------------------------------------------------


def test_reviews_are_read_as_utf8_without_br_tags(aclimdb):
    texts, labels = raw_text.read_reviews(aclimdb, "train")
    assert len(texts) == 80 and labels.dtype == np.int32
    assert labels.tolist() == [0] * 40 + [1] * 40  # neg then pos, sorted: unsup/ ignored
    assert not any("<br" in t for t in texts)
    assert any(t.endswith("  the end") for t in texts)
    assert any(t.endswith("caf\ufffd") for t in texts)  # the bad byte, replaced


def test_splits_sizes_labels_and_sequences(aclimdb):
    bundle = build(aclimdb)
    assert bundle.sizes == {"train": 30, "validation": 20, "test": 40}
    assert (bundle.task, bundle.class_names) == ("binary", ["negative", "positive"])
    assert bundle.input_shape == (10,) and bundle.batch_size == 32 and bundle.embeddings is None
    assert bundle.train_dataset.element_spec[0].shape.as_list() == [None, 10]
    x, y = collect(bundle.train_dataset)
    assert x.dtype == np.int32 and y.dtype == np.int32 and x.shape == (30, 10)
    assert 0 < y.sum() < 30  # shuffled: the files on disk are sorted by label
    # Position 1 is the class word: one index per class, the same in every split.
    great, awful = x[y == 1, 1][0], x[y == 0, 1][0]
    for split in ("train", "validation", "test"):
        xs, ys = collect(getattr(bundle, f"{split}_dataset"))
        assert (xs[:, 1] == np.where(ys == 1, great, awful)).all(), split
    assert collect(bundle.test_dataset)[1].tolist() == [0] * 20 + [1] * 20


def test_vocabulary_is_adapted_on_the_training_reviews_only(aclimdb):
    bundle = build(aclimdb)
    x, _ = collect(bundle.train_dataset)
    assert (x[:, 0] > 1).all()  # each training review's own word is in the vocabulary
    for split in ("validation", "test"):
        xs, _ = collect(getattr(bundle, f"{split}_dataset"))
        assert (xs[:, 0] == 1).all(), split  # never seen in training: [UNK]
    # "" + [UNK] + the 30 training reviews' own words + the words they share.
    words = len(set(FILLER + MORE[0] + MORE[1] + list(CLASS_WORD.values()) + ["end", "caf"]))
    vocabulary = int(bundle.source.split("vocabulary of ")[1].split()[0])
    assert 2 + 30 < vocabulary <= 2 + 30 + words


def test_train_samples_null_trains_on_every_review_not_held_out(aclimdb):
    bundle = build(aclimdb, train_samples=None, validation_samples=25)
    assert bundle.sizes == {"train": 55, "validation": 25, "test": 40}


def test_the_split_is_seeded_and_root_may_hold_aclimdb(aclimdb):
    def validation(seed, root=aclimdb):
        return collect(build(root, seed=seed).validation_dataset)

    for a, b in zip(validation(0), validation(0, root=aclimdb.parent), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(validation(0)[0], validation(1)[0])


# --- GloVe ----------------------------------------------------------------------------------------


def test_embedding_matrix_rows_are_the_glove_vectors(aclimdb, glove, caplog):
    with caplog.at_level(logging.INFO, logger="kerasrun"):
        bundle = build(aclimdb, embeddings={"path": str(glove), "trainable": False})
    matrix = bundle.embeddings["matrix"]
    assert bundle.embeddings["trainable"] is False
    assert matrix.shape == (200, DIM) and matrix.dtype == np.float32  # max_tokens rows
    x, y = collect(bundle.train_dataset)
    great, awful = x[y == 1, 1][0], x[y == 0, 1][0]
    np.testing.assert_array_equal(matrix[great], GLOVE["great"])
    np.testing.assert_array_equal(matrix[awful], GLOVE["awful"])
    assert not matrix[:2].any()  # padding and [UNK]
    assert not matrix[x[:, 0]].any()  # uniq<k>: not in the file
    found = {tuple(row) for row in matrix if row.any()}
    assert found == {tuple(GLOVE[w]) for w in ("great", "awful", "movie", "boring")}
    assert "4 of the" in caplog.text and str(glove) in caplog.text


def test_embedding_matrix_has_max_tokens_rows_for_a_smaller_vocabulary(tmp_path):
    vocabulary = ["", "[UNK]", "movie", "the", "great"]
    path = write_glove(tmp_path / "g.txt", {**GLOVE, "[UNK]": [7.0] * DIM})
    matrix = raw_text.embedding_matrix(path, vocabulary, 8)
    expected = np.zeros((8, DIM), "float32")
    expected[2], expected[4] = GLOVE["movie"], GLOVE["great"]
    np.testing.assert_array_equal(matrix, expected)


@pytest.mark.parametrize(
    "content, words",
    [
        (None, ["does not exist", "glove.6B.zip"]),
        ("", ["is empty"]),
        ("\n\n", ["is empty"]),
        ("great 1 2 3 4\nawful 1 2 3\n", ["line 2", "3 values", "4 float values"]),
        ("great 1 2 3 4\nmovie 1 x 3 4\n", ["line 2"]),
        ("great\n", ["line 1", "0 values"]),
    ],
)
def test_bad_glove_files_are_one_line_errors(aclimdb, tmp_path, content, words):
    path = tmp_path / "glove.txt"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as error:
        build(aclimdb, embeddings={"path": str(path)})
    message = str(error.value)
    assert "\n" not in message and "Received: data.embeddings.path=" in message
    for word in words:
        assert word in message


# --- config errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"train_samples": 0}, ["data.train_samples must be a positive integer or null"]),
        ({"train_samples": 2.5}, ["data.train_samples=2.5"]),
        ({"validation_samples": 0}, ["data.validation_samples=0", "positive integer"]),
        ({"train_samples": 70}, ["at most the 80 training reviews", "data.train_samples=70"]),
        ({"train_samples": None, "validation_samples": 80}, ["data.validation_samples=80"]),
        ({"max_tokens": 2}, ["data.max_tokens=2", "at least 3"]),
        ({"output_sequence_length": 0}, ["data.output_sequence_length=0"]),
        ({"batch_size": 0}, ["data.batch_size=0"]),
        ({"embeddings": {"paht": "x"}}, ["data.embeddings.paht", "path, trainable"]),
        ({"embeddings": "glove.txt"}, ["data.embeddings must be a mapping"]),
        ({"embeddings": {"path": "???"}}, ["data.embeddings.path='???'", "glove.6B.100d.txt"]),
        ({"embeddings": {"path": None, "trainable": "no"}}, ["data.embeddings.trainable='no'"]),
    ],
)
def test_config_errors_are_one_line(aclimdb, kwargs, words):
    with pytest.raises(ConfigError) as error:
        build(aclimdb, **kwargs)
    message = str(error.value)
    assert "\n" not in message and "Received:" in message
    for word in words:
        assert word in message


def test_a_root_without_aclimdb_says_what_it_must_hold(tmp_path, aclimdb):
    with pytest.raises(ConfigError, match="does not exist") as error:
        build(tmp_path / "nowhere")
    assert "data.root=null" in str(error.value)
    (aclimdb / "test" / "pos").rename(aclimdb / "test" / "positive")
    with pytest.raises(ConfigError, match="train/neg, train/pos, test/neg and test/pos") as error:
        build(aclimdb)
    assert "\n" not in str(error.value) and f"data.root='{aclimdb}'" in str(error.value)


# --- the download ---------------------------------------------------------------------------------


@pytest.fixture
def served_tar(tmp_path, monkeypatch):
    """An `aclImdb_v1.tar.gz` of the tiny tree, served over HTTP on 127.0.0.1."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")  # never through a proxy
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    tree = write_aclimdb(tmp_path / "tree")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(tree, arcname="aclImdb")
    site = tmp_path / "site"
    site.mkdir()
    (site / "aclImdb_v1.tar.gz").write_bytes(buffer.getvalue())
    other = io.BytesIO()
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("readme.txt", "hello")
    (site / "other.zip").write_bytes(other.getvalue())
    server = _Server(site)
    server.size = len(buffer.getvalue())
    server.sha256 = hashlib.sha256(buffer.getvalue()).hexdigest()
    yield server
    server.close()


def test_download_extracts_the_archive_once(tmp_path, served_tar):
    url = f"{served_tar.url}/aclImdb_v1.tar.gz"
    cache = tmp_path / "keras_home"
    for _ in range(2):  # the second build uses the cached archive and extraction
        bundle = build_data(
            "imdb_raw",
            url=url,
            sha256=served_tar.sha256,
            size=served_tar.size,
            cache_dir=str(cache),
            train_samples=30,
            validation_samples=20,
            seed=0,
        )
        assert bundle.sizes == {"train": 30, "validation": 20, "test": 40}
    assert served_tar.httpd.requests == 1
    extracted = cache / "datasets" / "aclImdb_v1_extracted" / "aclImdb"
    assert bundle.source.startswith(f"imdb_raw: download {url} -> {extracted} (")


def test_download_errors(tmp_path, served_tar):
    cache = str(tmp_path / "keras_home")
    url = f"{served_tar.url}/aclImdb_v1.tar.gz"
    with pytest.raises(ConfigError, match="data.sha256"):
        build_data("imdb_raw", url=url, sha256="0" * 64, size=None, cache_dir=cache)
    with pytest.raises(ConfigError, match="data.size"):
        build_data("imdb_raw", url=url, sha256=None, size=served_tar.size + 1, cache_dir=cache)
    with pytest.raises(ConfigError, match="must hold an aclImdb folder") as error:
        build_data(
            "imdb_raw", url=f"{served_tar.url}/other.zip", sha256=None, size=None, cache_dir=cache
        )
    assert "data.root=" in str(error.value)


def test_the_published_archive_checksum_is_the_default():
    assert raw_text.ACLIMDB_SIZE == 84_125_825
    assert len(raw_text.ACLIMDB_SHA256) == 64


# --- the models' Embedding ------------------------------------------------------------------------


TEXT_MODELS = {
    "embedding_flatten": {},
    "simple_rnn": {},
    "lstm": {},
    "gru": {"num_words": 50},
    "conv1d": {"kernel_size": 3, "pool_size": 2},
}


def vectors(num_words=50, dim=6, trainable=False):
    matrix = np.random.default_rng(0).normal(size=(num_words, dim)).astype("float32")
    return {"matrix": matrix, "trainable": trainable}


def embedding_of(model):
    return next(layer for layer in model.layers if isinstance(layer, keras.layers.Embedding))


@pytest.mark.parametrize("name", TEXT_MODELS)
@pytest.mark.parametrize("trainable", [False, True])
def test_pretrained_vectors_fill_the_embedding(name, trainable):
    embeddings = vectors(trainable=trainable)
    kwargs = {**TEXT_MODELS[name], "num_words": 50, "embedding_dim": 6}
    model = build_model(name, input_shape=(20,), task=BINARY, embeddings=embeddings, **kwargs)
    layer = embedding_of(model)
    np.testing.assert_array_equal(layer.get_weights()[0], embeddings["matrix"])
    assert layer.trainable is trainable
    assert any(w is layer.embeddings for w in model.trainable_weights) is trainable
    plain = build_model(name, input_shape=(20,), task=BINARY, **kwargs)
    frozen = 0 if trainable else 50 * 6
    assert model.count_params() == plain.count_params()
    trainable_count = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable_count == plain.count_params() - frozen
    # The vectors are weights, not a Constant initializer copied into the model's config.
    assert "__numpy__" not in json.dumps(model.get_config())


def test_frozen_vectors_survive_fit_and_a_keras_round_trip(tmp_path):
    embeddings = vectors()
    model = build_model(
        "embedding_flatten",
        input_shape=(20,),
        task=BINARY,
        num_words=50,
        embedding_dim=6,
        units=[4],
        embeddings=embeddings,
    )
    model.compile(optimizer="rmsprop", loss="binary_crossentropy")
    x = np.random.default_rng(1).integers(0, 50, size=(16, 20)).astype("int32")
    model.fit(x, np.arange(16) % 2, epochs=2, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    layer = embedding_of(loaded)
    assert layer.trainable is False
    np.testing.assert_array_equal(layer.get_weights()[0], embeddings["matrix"])
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("name", TEXT_MODELS)
def test_a_matrix_of_another_shape_is_one_line_error(name):
    kwargs = {**TEXT_MODELS[name], "num_words": 50, "embedding_dim": 8}
    with pytest.raises(ConfigError) as error:
        build_model(name, input_shape=(20,), task=BINARY, embeddings=vectors(), **kwargs)
    message = str(error.value)
    assert "\n" not in message
    assert "Received: model.num_words=50, model.embedding_dim=8" in message
    assert "model.embedding_dim=6" in message and "data.max_tokens=50" in message


def test_time_series_models_refuse_word_vectors():
    with pytest.raises(ConfigError, match="model.num_words=None"):
        build_model("gru", input_shape=(12, 3), task=BINARY, embeddings=vectors())
    with pytest.raises(ConfigError, match="need a model with a word Embedding"):
        build_model("conv1d_gru", input_shape=(40, 3), task=BINARY, embeddings=vectors())


# --- the presets through the real `train` command -------------------------------------------------


def test_glove_preset_needs_the_glove_file(tmp_path, aclimdb):
    result = run_train("experiment=imdb_raw_glove_200", f"data.root={aclimdb}", cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "glove_path is required" in errors[0], output[-3000:]
    assert "Traceback" not in output


@pytest.mark.slow
def test_glove_preset_trains_with_a_frozen_embedding(tmp_path, aclimdb, glove):
    result = run_train(
        "experiment=imdb_raw_glove_200",
        "debug=default",
        f"data.root={aclimdb}",
        f"data.embeddings.path={glove}",  # or glove_path=, the preset's own key
        f"model.embedding_dim={DIM}",
        "data.train_samples=30",
        "data.validation_samples=20",
        "data.batch_size=16",
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "GloVe: 4 of the" in output
    run_dir = only_run_dir(tmp_path)
    metrics = read_metrics(run_dir)
    assert metrics["status"] == "finished" and metrics["epochs"] == 1
    model = keras.models.load_model(run_dir / "model.keras")
    layer = embedding_of(model)
    matrix = layer.get_weights()[0]
    assert layer.trainable is False and matrix.shape == (10000, DIM)
    assert {tuple(row) for row in matrix if row.any()} == {
        tuple(GLOVE[w]) for w in ("great", "awful", "movie", "boring")
    }  # unchanged by training
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == 100 * DIM * 32 + 32 + 33


@pytest.mark.slow
def test_noglove_preset_learns_the_separable_reviews(tmp_path, aclimdb):
    result = run_train(
        "experiment=imdb_raw_noglove_200",
        f"data.root={aclimdb}",
        "data.train_samples=60",
        "data.validation_samples=20",
        "data.output_sequence_length=10",
        "trainer.epochs=8",
        cwd=tmp_path,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    metrics = read_metrics(only_run_dir(tmp_path))
    assert metrics["test_accuracy"] >= 0.9, metrics
