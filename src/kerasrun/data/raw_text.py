"""The book's 6.1.3 "from raw text to word embeddings": IMDB's raw reviews and GloVe vectors.

`imdb_raw` reads the review files of Stanford's Large Movie Review dataset (`aclImdb`),
turns them into int32 word indices with a `keras.layers.TextVectorization` adapted on the
training reviews only, and, given a GloVe text file (`embeddings.path`), builds the book's
`embedding_matrix` for the model's Embedding (`DataBundle.embeddings`).

The book used the old `Tokenizer` + `pad_sequences`, which keep the last `maxlen` words;
TextVectorization keeps the first `output_sequence_length` tokens and pads at the end.
numpy, TensorFlow and Keras are imported inside the functions.
"""

import codecs
import logging
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import kerasrun.data.download as download
import kerasrun.data.images as images
import kerasrun.data.keras_text as keras_text
from kerasrun.data.bundle import DataBundle
from kerasrun.data.checks import check_batch_size
from kerasrun.errors import ConfigError, check_int, require

log = logging.getLogger("kerasrun")

ACLIMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
# The archive's published checksum and size (TensorFlow Datasets' imdb_reviews checksums,
# Hugging Face's imdb dataset info, and several download scripts all give these two values).
ACLIMDB_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
ACLIMDB_SIZE = 84_125_825
GLOVE_URL = "https://nlp.stanford.edu/projects/glove"
CLASS_FOLDERS = ("neg", "pos")  # label 0, label 1
SPLIT_FOLDERS = ("train", "test")
# A mapping, not a dict, so that the default cannot be changed by accident.
NO_EMBEDDINGS = MappingProxyType({"path": None, "trainable": False})
MISSING = "???"  # OmegaConf's mandatory value, left as is by `to_container`


def imdb_raw(
    *,
    root=None,
    url=ACLIMDB_URL,
    sha256=ACLIMDB_SHA256,
    size=ACLIMDB_SIZE,
    cache_dir=None,
    max_tokens=10000,
    output_sequence_length=100,
    train_samples=None,
    validation_samples=10000,
    embeddings=NO_EMBEDDINGS,
    batch_size=32,
    seed=0,
):
    """IMDB's raw reviews as word indices (book §6.1.3), optionally with GloVe vectors.

    The 25,000 training reviews (sorted by label on disk) are shuffled with `seed`; the first
    `train_samples` train and the next `validation_samples` validate (the book: 200 and
    10,000). The 25,000 test reviews are the test set. Labels: 0 = negative, 1 = positive.

    Args:
        root: a local `aclImdb` folder (train/neg, train/pos, test/neg, test/pos of .txt
            reviews) or a folder holding one; `None` downloads `url` once.
        url: where to download `aclImdb_v1.tar.gz` from.
        sha256: expected sha256 of the download, or `None` (not checked).
        size: expected size of the download in bytes, or `None` (not checked).
        cache_dir: Keras's cache folder for the download (default `$KERAS_HOME` or `~/.keras`).
        max_tokens: vocabulary size, padding (0) and `[UNK]` (1) included: the model's
            `num_words`.
        output_sequence_length: every review is cut or padded to this many tokens.
        train_samples: training reviews; `None` = all those not held out for validation.
        validation_samples: reviews held out for validation, after the training ones.
        embeddings: `{"path": a GloVe text file such as glove.6B.100d.txt, or None;
            "trainable": whether the Embedding keeps learning}`.
        batch_size: examples per batch.
        seed: the shuffle of the training reviews and of the training batches.
    """
    import numpy as np

    check_batch_size(batch_size)
    check_int("data.max_tokens", max_tokens, minimum=3, example=10000, why="padding, [UNK], words")
    check_int("data.output_sequence_length", output_sequence_length, example=100)
    check_int("data.validation_samples", validation_samples, example=10000)
    check_int("data.train_samples", train_samples, allow_none=True, example=200)
    glove = _check_embeddings(embeddings)

    folder, source = _find_aclimdb(root, url=url, sha256=sha256, size=size, cache_dir=cache_dir)
    bad_files, not_utf8 = [], []
    texts, labels = read_reviews(folder, "train", bad_files=bad_files, not_utf8=not_utf8)
    test_texts, test_labels = read_reviews(folder, "test", bad_files=bad_files, not_utf8=not_utf8)
    if not_utf8:  # kept: one bad byte in a review of 200 words should not lose the review
        files = "1 review file is" if len(not_utf8) == 1 else f"{len(not_utf8):,} review files are"
        log.warning(
            f"{files} not valid UTF-8 (first: {not_utf8[0]}): read with U+FFFD in place of "
            "each bad byte."
        )
    n = len(texts)
    n_train = n - validation_samples if train_samples is None else train_samples
    require(
        n_train >= 1 and n_train + validation_samples <= n,
        f"data.train_samples + data.validation_samples must be at most the {n:,} training "
        f"reviews of {folder} (and leave at least one to train on). Received: "
        f"data.train_samples={train_samples!r}, data.validation_samples={validation_samples!r}. "
        "Lower them (the book: data.train_samples=200 data.validation_samples=10000).",
    )
    order = np.random.default_rng(seed).permutation(n)  # the files are sorted by label
    split_index = {
        "train": order[:n_train],
        "validation": order[n_train : n_train + validation_samples],
    }

    import keras

    vectorizer = keras.layers.TextVectorization(
        max_tokens=max_tokens, output_sequence_length=output_sequence_length, output_mode="int"
    )
    vectorizer.adapt(np.asarray([texts[i] for i in split_index["train"]]), batch_size=1024)
    vocabulary = [str(word) for word in vectorizer.get_vocabulary()]

    splits = {
        name: ([texts[i] for i in index], labels[index]) for name, index in split_index.items()
    }
    splits["test"] = (test_texts, test_labels)
    datasets, sizes = {}, {}
    for name, (split_texts, split_labels) in splits.items():
        sizes[name] = len(split_texts)
        datasets[name] = keras_text.array_dataset(
            _vectorize(vectorizer, split_texts, output_sequence_length),
            split_labels,
            training=name == "train",
            batch_size=batch_size,
            seed=seed,
        )
    source += (
        f" (TextVectorization vocabulary of {len(vocabulary):,} tokens, max_tokens={max_tokens},"
        f" adapted on the {sizes['train']:,} training reviews; seed={seed})"
    )
    bundle = DataBundle.from_splits(
        datasets,
        sizes=sizes,
        input_shape=(output_sequence_length,),
        task="binary",
        class_names=list(keras_text.IMDB_NAMES),
        source=source,
        batch_size=batch_size,
    )
    bundle.vocabulary = vocabulary  # predict turns new text into the same word indices
    bundle.bad_files = bad_files  # train lists them in <run>/bad_files.txt
    if glove["path"] is not None:
        matrix = embedding_matrix(glove["path"], vocabulary, max_tokens)
        bundle.embeddings = {"matrix": matrix, "trainable": glove["trainable"]}
        bundle.source += f"; GloVe {glove['path']} ({matrix.shape[1]}-d)"
    return bundle


# --- the review files ---------------------------------------------------------------------------


def read_reviews(folder, split, *, bad_files=None, not_utf8=None):
    """`(texts, int32 labels)` of `folder/<split>/{neg,pos}/*.txt`, in sorted file order.

    Every file is read here, before training, so that nothing can fail mid-epoch. Hidden
    files (`.DS_Store`, macOS's `._<name>.txt` copies) are not reviews: ignored. A review is
    UTF-8 (a byte-order mark is dropped; UTF-16 with one is read too); a byte that is not
    UTF-8 becomes U+FFFD, the review is kept and its path appended to `not_utf8`. A file
    that cannot be read or holds no text is skipped and `(path, reason)` appended to
    `bad_files`: an empty review is a label without words, nothing the model can learn
    from. The `<br />` tags become spaces. A class folder whose files are all skipped is a
    `ConfigError`.
    """
    import numpy as np

    bad_files = [] if bad_files is None else bad_files
    not_utf8 = [] if not_utf8 is None else not_utf8
    texts, labels = [], []
    for label, name in enumerate(CLASS_FOLDERS):
        files = review_files(Path(folder) / split / name)
        skipped = len(bad_files)
        for path in files:
            try:
                data = path.read_bytes()
            except OSError as e:
                bad_files.append((images.shown(path), f"cannot be read ({e.strerror or e})"))
                continue
            text, valid = decode_review(data)
            text = text.replace("<br />", " ")
            if not text.strip():
                why = "empty file (0 bytes)" if not data else "no text, only white space"
                bad_files.append((images.shown(path), why))
                continue
            if not valid:
                not_utf8.append(images.shown(path))
            texts.append(text)
            labels.append(label)
        first = bad_files[skipped] if len(bad_files) > skipped else ("", "")
        require(
            not files or len(bad_files) - skipped < len(files),
            f"Every class folder needs at least one review with text. Received: "
            f"{Path(folder) / split / name}/ holds {len(files)} .txt files, all skipped "
            f"(first: {first[0]}: {first[1]}). Replace them or fix the folder.",
        )
    return texts, np.asarray(labels, "int32")


def review_files(folder):
    """The sorted `.txt` files of `folder` that are not hidden (empty if no such folder)."""
    return sorted(p for p in Path(folder).glob("*.txt") if not p.name.startswith("."))


def decode_review(data):
    """`(text, valid)` of a review file's bytes: UTF-8 or UTF-16 by their byte-order mark.

    Without a mark the bytes are UTF-8; each byte that is not becomes U+FFFD and `valid` is
    `False`. The mark itself is dropped: left in, it would glue itself to the first word.
    """
    codec = "utf-8"
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        codec = "utf-16"  # its decoder reads the mark and drops it
    try:
        return data.decode(codec), True
    except UnicodeDecodeError:
        return data.decode(codec, errors="replace"), False


def _vectorize(vectorizer, texts, length, chunk=4096):
    """int32 word indices `(len(texts), length)`, computed eagerly chunk by chunk."""
    import numpy as np

    parts = [
        np.asarray(vectorizer(np.asarray(texts[i : i + chunk])), "int32")
        for i in range(0, len(texts), chunk)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, length), "int32")


def _is_aclimdb(folder):
    """Whether `folder` has train/ and test/ folders of neg/ and pos/ holding .txt reviews."""
    return not _missing_parts(folder)


def _missing_parts(folder):
    """What `folder` lacks to be an aclImdb folder, in words (empty if nothing)."""
    missing = []
    for split in SPLIT_FOLDERS:
        if not (Path(folder) / split).is_dir():
            missing.append(f"{split}/ is missing")
            continue
        for name in CLASS_FOLDERS:
            if not (Path(folder) / split / name).is_dir():
                missing.append(f"{split}/{name}/ is missing")
            elif not any(  # stops at the first review: aclImdb has 12,500 a folder
                not p.name.startswith(".") for p in (Path(folder) / split / name).glob("*.txt")
            ):
                missing.append(f"{split}/{name}/ holds no .txt reviews")
    return missing


def _find_aclimdb(root, *, url, sha256, size, cache_dir):
    """The `aclImdb` folder and where it came from, in words."""
    if root is None:
        extracted = download.get_file(
            url,
            sha256=sha256,
            size=size,
            cache_dir=cache_dir,
            extract=True,
            instead="set data.root= to a local aclImdb folder",
        )
        candidates = [extracted / "aclImdb", extracted]
        candidates += [p for p in sorted(extracted.iterdir()) if p.is_dir()]
        found = [p for p in candidates if _is_aclimdb(p)]
        require(
            found,
            f"The archive from {url} must hold an aclImdb folder (train/ and test/ of neg/ and "
            f"pos/ .txt reviews). Received: data.url={url!r}, extracted to {extracted}. Check "
            "the URL, or set data.root= to a local aclImdb folder.",
        )
        return found[0], f"imdb_raw: download {url} -> {found[0]}"
    root = Path(str(root)).expanduser()
    require(
        root.is_dir(),
        "data.root must be an aclImdb folder or a folder holding one. Received: "
        f"data.root='{root}', which does not exist. Fix the path, or set data.root=null to "
        f"download {url}.",
    )
    for folder in (root, root / "aclImdb"):
        if _is_aclimdb(folder):
            return folder, f"imdb_raw: {folder}"
    # Say what is missing in the folder that looks most like aclImdb.
    nearest = root / "aclImdb" if (root / "aclImdb").is_dir() else root
    missing = _missing_parts(nearest)
    if nearest == root and not any((root / split).is_dir() for split in SPLIT_FOLDERS):
        what = "which has none"
    else:
        prefix = "aclImdb/" if nearest != root else ""
        what = "where " + "; ".join(prefix + part for part in missing)
    raise ConfigError(
        "data.root must be an aclImdb folder (train/neg, train/pos, test/neg and test/pos "
        "holding .txt reviews) or a folder holding one. Received: "
        f"data.root='{root}', {what}. Point data.root at the extracted "
        f"aclImdb_v1.tar.gz, or set data.root=null to download {url}."
    )


# --- GloVe --------------------------------------------------------------------------------------


def embedding_matrix(path, vocabulary, max_tokens):
    """The book's `embedding_matrix`: float32 `(max_tokens, dim)`, row i = word i's GloVe vector.

    Padding (0), `[UNK]` (1), and words the file lacks keep zero rows. The matrix has
    `max_tokens` rows even when the vocabulary is smaller, to match `model.num_words`.
    """
    import numpy as np

    wanted = {word: i for i, word in enumerate(vocabulary) if i >= 2}
    vectors, dim = read_glove(path, wanted)
    matrix = np.zeros((max_tokens, dim), "float32")
    for word, vector in vectors.items():
        matrix[wanted[word]] = vector
    words = max(len(vocabulary) - 2, 0)
    log.info(
        f"GloVe: {len(vectors):,} of the {words:,} vocabulary words found in {path} "
        f"({dim}-d); the others (and padding, [UNK]) are zero vectors"
    )
    return matrix


def read_glove(path, wanted=None):
    """`({word: float32 vector}, dim)` of a GloVe text file: one word and its floats a line.

    Only words in `wanted` (all if `None`) are kept; every line must have the same number of
    values. A later line for the same word wins, as with the book's dict.
    """
    import numpy as np

    path = Path(str(path)).expanduser()
    fix = (
        f"Download glove.6B.zip from {GLOVE_URL}, unzip it and set "
        "data.embeddings.path=/path/to/glove.6B.100d.txt, or set data.embeddings.path=null."
    )
    require(
        path.is_file(),
        "data.embeddings.path must be a GloVe text file (a word and its vector a line). "
        f"Received: data.embeddings.path='{path}', which does not exist. {fix}",
    )
    vectors, dim = {}, None
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue  # blank lines, e.g. at the end of the file
            parts = line.rstrip().split(" ")
            word, values = parts[0], parts[1:]
            if dim is None:
                dim = len(values)
            bad = not word or not values or len(values) != dim
            if not bad and (wanted is None or word in wanted):
                try:
                    vectors[word] = np.asarray(values, "float32")
                except ValueError:
                    bad = True
            if bad:
                raise ConfigError(
                    "data.embeddings.path must be a GloVe text file: every line a word and "
                    f"{dim or 'some'} float values separated by spaces. Received: "
                    f"data.embeddings.path='{path}', whose line {number} is not "
                    f"({line.strip()[:40]!r}, {len(values)} values). {fix}"
                )
    require(
        dim is not None,
        "data.embeddings.path must be a GloVe text file (a word and its vector a line). "
        f"Received: data.embeddings.path='{path}', which is empty. {fix}",
    )
    return vectors, dim


# --- checks ---------------------------------------------------------------------------------------


def _check_embeddings(embeddings):
    """`{"path": str or None, "trainable": bool}` from the `embeddings` mapping."""
    if embeddings is None:
        embeddings = {}
    require(
        isinstance(embeddings, Mapping),
        "data.embeddings must be a mapping {path: <GloVe file or null>, trainable: <bool>}. "
        f"Received: data.embeddings={embeddings!r}. "
        "Set e.g. data.embeddings.path=/path/to/glove.6B.100d.txt.",
    )
    unknown = sorted(set(embeddings) - set(NO_EMBEDDINGS))
    require(
        not unknown,
        f"Unknown key data.embeddings.{unknown[0] if unknown else ''}: data.embeddings takes "
        f"{', '.join(NO_EMBEDDINGS)}. Received: data.embeddings={dict(embeddings)!r}. Fix the "
        "spelling.",
    )
    config = {**NO_EMBEDDINGS, **embeddings}
    path, trainable = config["path"], config["trainable"]
    require(
        path != MISSING,
        "data.embeddings.path must name a GloVe text file: this preset trains on pretrained "
        f"word vectors. Received: data.embeddings.path='{MISSING}' (not set). Download "
        f"glove.6B.zip from {GLOVE_URL}, unzip it and add "
        "data.embeddings.path=/path/to/glove.6B.100d.txt to the command.",
    )
    require(
        path is None or (isinstance(path, str) and path.strip()),
        "data.embeddings.path must be a GloVe text file path or null. "
        f"Received: data.embeddings.path={path!r}. "
        "Set e.g. data.embeddings.path=/path/to/glove.6B.100d.txt.",
    )
    require(
        isinstance(trainable, bool),
        "data.embeddings.trainable must be true or false. "
        f"Received: data.embeddings.trainable={trainable!r}. "
        "Use false to freeze the pretrained vectors (the book's), true to fine-tune them.",
    )
    return {"path": path, "trainable": trainable}
