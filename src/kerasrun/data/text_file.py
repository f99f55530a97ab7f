"""Any text file as next-character examples: the book's §8.1 "text generation with LSTM".

The book (listings 8-2 and 8-3) lowercases nietzsche.txt, cuts it into "semi-redundant"
sequences of `maxlen` characters every `step` characters (`text[i: i + maxlen]`, for `i` in
`range(0, len(text) - maxlen, step)`), and one-hot encodes each sequence and the character
that follows it into bool arrays. For the 600,000 characters of nietzsche.txt those arrays
take about 700 MB, so here the text stays int codes (one per character) and each batch is
one-hot encoded in the tf.data pipeline: the model still reads `(maxlen, n_chars)` one-hot
sequences, as in the book. The label is the next character's index (sparse categorical
cross-entropy: the book's categorical cross-entropy on integer labels).

`validation_split` holds out the text's tail (the book held out nothing): its sequences give
a `val_loss` on text the model never trained on. numpy and TensorFlow are imported inside.
"""

import codecs
import os
from pathlib import Path

import kerasrun.data.download as download
import kerasrun.data.images as images
from kerasrun.data.bundle import DataBundle
from kerasrun.data.checks import check_batch_size, check_splits
from kerasrun.errors import ConfigError, check_int, require

NIETZSCHE_URL = "https://s3.amazonaws.com/text-datasets/nietzsche.txt"


def text_file(
    *,
    path=None,
    url=NIETZSCHE_URL,
    sha256=None,
    size=None,
    cache_dir=None,
    maxlen=60,
    step=3,
    lowercase=True,
    validation_split=0.1,
    batch_size=128,
    seed=0,
):
    """Next-character prediction on a UTF-8 text file (book §8.1).

    Args:
        path: a local UTF-8 text file, or `None` to download `url` once (the book's
            nietzsche.txt) into the Keras cache.
        url: where to download the text from when `path` is `None`.
        sha256: expected sha256 of the download, or `None` (not checked).
        size: expected size of the download in bytes, or `None` (not checked).
        cache_dir: Keras's cache folder for the download (default `$KERAS_HOME` or `~/.keras`).
        maxlen: characters per sequence (the book's 60).
        step: a new sequence every `step` characters (the book's 3).
        lowercase: lowercase the text first, as the book (fewer characters to learn).
        validation_split: the fraction of the text, at its end, held out for validation;
            0 = none (the book's, which had no validation).
        batch_size: sequences per batch (the book's 128).
        seed: the shuffle of the training sequences.

    Returns:
        A multiclass `DataBundle` over the text's characters: inputs float32 one-hot
        `(maxlen, n_chars)`, labels the next character's index; `characters` are the
        characters (`sorted(set(text))`, the book's `chars`), `class_names` their `repr`,
        `text` the training text (seeds for sampling).

    Raises:
        ConfigError: a bad key, or a file that is missing, empty, binary, not UTF-8, or
            shorter than `maxlen + 1` characters (per split).
    """
    import numpy as np

    check_batch_size(batch_size)
    check_int("data.maxlen", maxlen, example=60)
    check_int("data.step", step, example=3)
    require(
        isinstance(lowercase, bool),
        f"data.lowercase must be true or false. Received: data.lowercase={lowercase!r}.",
    )
    validation_split, _ = check_splits(validation_split)
    if path is None:
        path = download.get_file(
            url, sha256=sha256, size=size, cache_dir=cache_dir, instead="set data.path=<a file>"
        )
        text = read_text(path, url=url)
    else:
        path = Path(os.path.expanduser(str(path)))
        text = read_text(path)
    if lowercase:
        text = text.lower()

    # The validation text is the tail: its sequences never overlap the training ones.
    n_val = round(len(text) * validation_split)
    parts = {"train": text[: len(text) - n_val]}
    if n_val:
        parts["validation"] = text[len(text) - n_val :]
    for name, part in parts.items():
        require(
            len(part) > maxlen,
            f"data.maxlen must be below the length of the {name} text: a sequence needs "
            f"maxlen + 1 = {maxlen + 1} characters. Received: data.maxlen={maxlen} with "
            f"{len(part):,} {name} characters of {len(text):,} in {images.shown(path)} "
            f"(data.validation_split={validation_split:g}). Lower data.maxlen"
            f"{' or data.validation_split' if n_val else ''}, or use a longer text.",
        )

    chars = sorted(set(text))
    char_indices = {c: i for i, c in enumerate(chars)}
    codes = np.fromiter((char_indices[c] for c in text), dtype="int32", count=len(text))
    datasets, sizes, offset = {"validation": None, "test": None}, {}, 0
    for name, part in parts.items():
        starts = offset + sequence_starts(len(part), maxlen, step)
        sizes[name] = len(starts)
        datasets[name] = _dataset(
            codes,
            starts,
            maxlen=maxlen,
            n_chars=len(chars),
            batch_size=batch_size,
            training=name == "train",
            seed=seed,
        )
        offset += len(part)

    held_out = f", the last {n_val:,} held out for validation" if n_val else ""
    return DataBundle(
        train_dataset=datasets["train"],
        validation_dataset=datasets["validation"],
        test_dataset=None,
        input_shape=(maxlen, len(chars)),
        task="multiclass",
        class_names=[repr(c) for c in chars],  # printable: "\n" is a class too
        sizes=sizes,
        source=(
            f"text_file: {images.shown(path)} ({len(text):,} characters{held_out}; "
            f"{len(chars)} distinct{', lowercased' if lowercase else ''}; "
            f"maxlen={maxlen}, step={step})"
        ),
        batch_size=batch_size,
        text=parts["train"],
        characters=chars,
    )


def sequence_starts(length, maxlen, step):
    """Where the book's sequences of a `length`-character text start: `range(0, length -
    maxlen, step)` (each needs `maxlen` characters and the next one, its label)."""
    import numpy as np

    return np.arange(0, max(length - maxlen, 0), step, dtype="int64")


def read_text(path, *, url=None):
    """The text of the UTF-8 file `path` (a byte-order mark dropped, line ends as `\\n`).

    Raises:
        ConfigError: the file is missing, unreadable, empty, binary or not UTF-8.
    """
    shown = images.shown(path)
    if url is None:
        received = f"data.path must be a UTF-8 text file. Received: data.path='{shown}'"
    else:  # a download
        received = f"data.url must give a UTF-8 text file. Received: data.url='{url}' ({shown})"
    other = ", or set data.path=null for the book's nietzsche.txt" if url is None else ""
    require(Path(path).is_file(), f"{received}, which is not a file. Fix the path{other}.")
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(
            f"{received}, which cannot be read ({e.strerror or e}). Check its permissions."
        ) from None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    empty = "empty (0 bytes)" if not data else "only white space"
    require(data.strip(), f"{received}, which is {empty}. Use a file with some text.")
    nul = data.find(b"\x00")
    require(
        nul < 0,
        f"{received}, a binary file (a NUL byte at offset {nul:,}). Use a plain text file "
        "(a .txt, not a .pdf, .docx or archive).",
    )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{received}, which is not UTF-8 (byte 0x{data[e.start]:02x} at offset "
            f"{e.start:,}). Convert it, e.g. iconv -f latin1 -t utf-8 '{shown}' > utf8.txt."
        ) from None
    return text.replace("\r\n", "\n")


def _dataset(codes, starts, *, maxlen, n_chars, batch_size, training, seed):
    """Batches of `(one-hot sequences (batch, maxlen, n_chars), next-character index)`.

    Only the int codes are held in memory; a batch of start indices is gathered into
    sequences and one-hot encoded in the pipeline (vectorised: one map per batch).
    """
    import tensorflow as tf

    text = tf.constant(codes)
    window = tf.range(maxlen + 1, dtype=tf.int64)

    def one_hot(batch_starts):
        sequences = tf.gather(text, batch_starts[:, None] + window[None, :])
        return tf.one_hot(sequences[:, :-1], n_chars), sequences[:, -1]

    dataset = tf.data.Dataset.from_tensor_slices(starts)
    if training:
        dataset = dataset.shuffle(len(starts), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).map(one_hot, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)
