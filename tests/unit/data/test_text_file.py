"""The book's §8.1 character-level text generation data: `data=text_file` on tiny text files
in tmp_path."""

import hashlib

import numpy as np
import pytest

from helpers import SHORT_TEXT, write_text_file
from kerasrun.data import build_data
from kerasrun.data.text_file import sequence_starts
from kerasrun.errors import ConfigError


def pairs(dataset, chars):
    """Every `(sequence, next character)` of a dataset of one-hot batches, decoded."""
    out = []
    for x, y in dataset:
        x, y = x.numpy(), y.numpy()
        assert x.dtype == np.float32 and np.all(x.sum(axis=-1) == 1)  # one-hot
        for seq, label in zip(x.argmax(axis=-1), y, strict=True):
            out.append(("".join(chars[i] for i in seq), chars[label]))
    return out


def book_pairs(text, maxlen, step):
    """Listing 8-3's loop."""
    return [(text[i : i + maxlen], text[i + maxlen]) for i in range(0, len(text) - maxlen, step)]


# --- data=text_file -------------------------------------------------------------------------


def test_the_books_sequences_one_hot_with_a_held_out_tail(tmp_path):
    data = build_data(
        "text_file",
        path=str(write_text_file(tmp_path)),
        maxlen=7,
        step=3,
        validation_split=0.25,
        batch_size=16,
        seed=0,
    )
    text = SHORT_TEXT.lower()
    n_val = round(len(text) * 0.25)
    train_text, val_text = text[:-n_val], text[-n_val:]
    assert data.characters == sorted(set(text)) and "C" not in data.characters
    assert data.class_names == [repr(c) for c in data.characters]  # "'\\n'", printable
    assert data.input_shape == (7, len(data.class_names)) and data.task == "multiclass"
    assert data.sizes == {
        "train": len(range(0, len(train_text) - 7, 3)),
        "validation": len(range(0, len(val_text) - 7, 3)),
    }
    assert data.text == train_text  # the sampler's seeds never come from the held-out tail
    # Training sequences are shuffled; validation ones keep the text's order.
    train = pairs(data.train_dataset, data.characters)
    assert train != book_pairs(train_text, 7, 3)
    assert sorted(train) == sorted(book_pairs(train_text, 7, 3))
    assert pairs(data.validation_dataset, data.characters) == book_pairs(val_text, 7, 3)
    assert data.test_dataset is None


def test_no_validation_and_case_kept(tmp_path):
    data = build_data(
        "text_file",
        path=str(write_text_file(tmp_path)),
        maxlen=10,
        step=1,
        lowercase=False,
        validation_split=0,
        seed=0,
    )
    assert "C" in data.characters and data.validation_dataset is None
    assert (
        data.sizes
        == {"train": len(SHORT_TEXT) - 10}
        == {"train": len(sequence_starts(len(SHORT_TEXT), 10, 1))}
    )


def test_the_download_is_checked_and_read(tmp_path):
    # The download path (data.path=null) on a local file:// URL: get_file, sha256, cache.
    site = write_text_file(tmp_path, name="nietzsche.txt")
    url = site.as_uri()
    good = hashlib.sha256(site.read_bytes()).hexdigest()
    cache = tmp_path / "keras_home"
    with pytest.raises(ConfigError, match="does not match data.sha256"):
        build_data("text_file", url=url, sha256="0" * 64, cache_dir=str(cache), seed=0)
    data = build_data(
        "text_file", url=url, sha256=good, cache_dir=str(cache), validation_split=0, seed=0
    )
    assert (cache / "datasets" / "nietzsche.txt").read_bytes() == site.read_bytes()
    assert data.sizes["train"] == len(range(0, len(data.text) - 60, 3))


BAD_FILES = {
    "missing": (None, "which is not a file"),
    "empty": (b"", "which is empty (0 bytes)"),
    "white_space": (b"  \n\t\n", "which is only white space"),
    "binary": (b"%PDF-1.4\x00\x01\x02 some text", "a binary file (a NUL byte at offset 8)"),
    "latin1": ("caf\xe9 au lait, " * 10).encode("latin-1"),
}
BAD_FILES["latin1"] = (BAD_FILES["latin1"], "which is not UTF-8 (byte 0xe9 at offset 3)")


@pytest.mark.parametrize("case", BAD_FILES)
def test_a_bad_file_is_one_line(tmp_path, case):
    content, expected = BAD_FILES[case]
    path = tmp_path / "text.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError) as error:
        build_data("text_file", path=str(path), maxlen=5, seed=0)
    message = str(error.value)
    assert "\n" not in message and expected in message
    assert message.startswith(f"data.path must be a UTF-8 text file. Received: data.path='{path}'")


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (
            dict(maxlen=len(SHORT_TEXT), validation_split=0),
            f"data.maxlen={len(SHORT_TEXT)} with {len(SHORT_TEXT):,} train characters",
        ),
        (dict(maxlen=60, validation_split=0.1), "data.maxlen=60 with 32 validation characters"),
        (dict(maxlen=0), "data.maxlen must be a positive integer. Received: data.maxlen=0."),
        (dict(step="3"), "data.step must be a positive integer. Received: data.step='3'."),
        (
            dict(validation_split=1),
            "data.validation_split must be a number in [0, 1) (a fraction of the data). "
            "Received: data.validation_split=1.",
        ),
    ],
    ids=["text_too_short", "tail_too_short", "maxlen_0", "step_string", "split_1"],
)
def test_bad_settings_are_one_line(tmp_path, overrides, expected):
    with pytest.raises(ConfigError, match=None) as error:
        build_data("text_file", path=str(write_text_file(tmp_path)), seed=0, **overrides)
    assert expected in str(error.value) and "\n" not in str(error.value)
