"""The book's 6.1.3: raw aclImdb reviews, TextVectorization, GloVe vectors for a frozen Embedding.

A tiny `aclImdb` tree and a tiny GloVe file are written into tmp_path (conftest's `aclimdb`
and `glove`); the download is served by an http.server on 127.0.0.1. Real TensorFlow and
Keras throughout.

Bad reviews: every file is read before training, so nothing fails mid-epoch. A file with no
text (0 bytes, only white space) or that cannot be read is skipped and counted in
`DataBundle.bad_files`, which `train` writes to `<run>/bad_files.txt`; a review with bytes
that are not UTF-8 is kept with U+FFFD and counted in a warning; hidden files (.DS_Store,
macOS's ._name.txt) are not reviews.
"""

import codecs
import hashlib
import io
import logging
import os
import tarfile
import zipfile

import keras
import numpy as np
import pytest

from helpers import (
    CLASS_WORD,
    FILLER,
    GLOVE,
    GLOVE_DIM,
    MORE,
    Server,
    assert_one_line,
    collect,
    write_aclimdb,
    write_glove,
)
from kerasrun.data import build_data, raw_text
from kerasrun.errors import ConfigError


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    yield
    keras.backend.clear_session()


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
    assert matrix.shape == (200, GLOVE_DIM) and matrix.dtype == np.float32  # max_tokens rows
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
    path = write_glove(tmp_path / "g.txt", {**GLOVE, "[UNK]": [7.0] * GLOVE_DIM})
    matrix = raw_text.embedding_matrix(path, vocabulary, 8)
    expected = np.zeros((8, GLOVE_DIM), "float32")
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
    server = Server(site)
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


def test_empty_and_unreadable_reviews_are_skipped_and_counted(aclimdb):
    (aclimdb / "train" / "pos" / "0_8.txt").write_bytes(b"")
    (aclimdb / "train" / "neg" / "0_2.txt").write_text(" \n\t<br /><br />\n")
    (aclimdb / "test" / "pos" / "90_8.txt").symlink_to(aclimdb / "moved" / "90_8.txt")
    (aclimdb / "test" / "neg" / "91_2.txt").mkdir()  # a folder named like a review
    bundle = build(aclimdb)
    reasons = {os.path.relpath(path, aclimdb): why for path, why in bundle.bad_files}
    assert reasons == {
        "train/pos/0_8.txt": "empty file (0 bytes)",
        "train/neg/0_2.txt": "no text, only white space",
        "test/pos/90_8.txt": "cannot be read (No such file or directory)",
        "test/neg/91_2.txt": "cannot be read (Is a directory)",
    }
    # The 40 test reviews are still 40 (two unreadable extras skipped); 78 of 80 train.
    assert bundle.sizes["test"] == 40
    texts, _ = raw_text.read_reviews(aclimdb, "train")
    assert len(texts) == 78 and all(t.strip() for t in texts)


def test_a_class_whose_every_review_is_empty_is_one_line_error(aclimdb):
    for path in (aclimdb / "train" / "pos").glob("*.txt"):
        path.write_bytes(b"")
    with pytest.raises(ConfigError) as e:
        build(aclimdb)
    message = str(e.value)
    assert "\n" not in message and "Received: " in message
    assert f"{aclimdb}/train/pos/ holds 40 .txt files, all skipped" in message
    assert "empty file (0 bytes)" in message


def test_reviews_that_are_not_utf8_are_kept_with_replacement_and_counted(aclimdb, caplog):
    # The fixture's train/neg/1_2.txt ends in Latin-1 "caf\xe9"; one more in test/.
    path = aclimdb / "test" / "pos" / "3_8.txt"
    path.write_bytes(path.read_bytes() + b" na\xefve")
    with caplog.at_level(logging.WARNING, logger="kerasrun"):
        bundle = build(aclimdb)
    assert bundle.bad_files == [] and bundle.sizes["test"] == 40  # kept, not skipped
    warnings = [r.getMessage() for r in caplog.records if "not valid UTF-8" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("2 review files are not valid UTF-8 (first: ")
    assert "train/neg/1_2.txt" in warnings[0] and "U+FFFD" in warnings[0]
    texts, _ = raw_text.read_reviews(aclimdb, "test")
    assert sum(t.endswith(" na\ufffdve") for t in texts) == 1


@pytest.mark.parametrize(
    "encoding, bom",
    [
        ("utf-8", codecs.BOM_UTF8),
        ("utf-16-le", codecs.BOM_UTF16_LE),
        ("utf-16-be", codecs.BOM_UTF16_BE),
    ],
)
def test_a_byte_order_mark_is_read_and_not_glued_to_the_first_word(aclimdb, encoding, bom):
    path = aclimdb / "train" / "pos" / "0_8.txt"
    plain = path.read_text(encoding="utf-8")
    path.write_bytes(bom + plain.encode(encoding))
    texts, _ = raw_text.read_reviews(aclimdb, "train")
    assert plain.replace("<br />", " ") in texts
    assert not any("\ufeff" in t or "\x00" in t for t in texts)


def test_hidden_files_in_class_folders_are_not_reviews(aclimdb):
    before, _ = raw_text.read_reviews(aclimdb, "train")
    for name in ("neg", "pos"):
        folder = aclimdb / "train" / name
        (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1\x00\x00")
        # macOS writes these "AppleDouble" copies to FAT/exFAT and network drives.
        (folder / "._0_8.txt").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X\xff")
    bad_files, not_utf8 = [], []
    after, labels = raw_text.read_reviews(aclimdb, "train", bad_files=bad_files, not_utf8=not_utf8)
    assert after == before and len(labels) == 80
    assert bad_files == [] and not any("._" in p for p in not_utf8)


@pytest.mark.parametrize(
    "change, where",
    [
        (lambda a: [p.unlink() for p in (a / "train" / "pos").glob("*.txt")], "train/pos/ holds"),
        (lambda a: (a / "test" / "neg").rename(a / "test" / "negative"), "test/neg/ is missing"),
        (lambda a: (a / "train").rename(a / "training"), "train/ is missing"),
    ],
    ids=["empty-class-folder", "missing-class-folder", "missing-train"],
)
def test_a_missing_or_empty_folder_is_named(aclimdb, change, where):
    change(aclimdb)
    (aclimdb / "test" / "pos" / ".DS_Store").write_bytes(b"\x00")  # hidden files do not count
    with pytest.raises(ConfigError) as e:
        build(aclimdb)
    assert_one_line(e, f"data.root='{aclimdb}', where {where}", "train/neg, train/pos")
    # Pointed at the folder holding aclImdb/, the path names aclImdb/.
    with pytest.raises(ConfigError) as e:
        build(aclimdb.parent)
    assert_one_line(e, f"data.root='{aclimdb.parent}', where aclImdb/{where}")
