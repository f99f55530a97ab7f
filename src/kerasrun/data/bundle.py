"""`DataBundle`: what every data builder returns."""

from dataclasses import dataclass, field


@dataclass
class DataBundle:
    """Datasets ready for `model.fit`, and what the model needs to know about them.

    Attributes:
        train_dataset: batched, shuffled, augmented, prefetched `tf.data.Dataset`
            of `(images, labels)`. Images are float32 in [0, 255] (the model rescales),
            labels int32 of shape `(batch,)`.
        validation_dataset: the same without shuffling or augmentation, or `None`.
        test_dataset: as `validation_dataset`, or `None` when the data has no test split.
        input_shape: one example's shape, e.g. `(150, 150, 3)`.
        task: `"binary"`, `"multiclass"` or `"regression"` (see `kerasrun.tasks`).
        class_names: one name per class index (empty for regression).
        sizes: examples per split, e.g. `{"train": 2000, "validation": 500, "test": 500}`.
        source: where the data came from, in words, for the console and `config.yaml`.
        batch_size: examples per batch.
        baseline: a no-learning baseline computed by the builder, or empty. Time series
            (`kerasrun.data.timeseries`) give the book's common-sense MAE per split:
            `{"val_mae": 0.29, "val_mae_original": 2.57, "test_mae": ...,
            "test_mae_original": ...}` (normalised units, and × the target's training std).
        embeddings: pretrained word vectors for the model's `Embedding`, or `None`:
            `{"matrix": float32 array (num_words, dim), "trainable": bool}` (book §6.1.3).
        vocabulary: the words of the data's `TextVectorization` in index order (`""` and
            `[UNK]` first), or `None`: `train` saves it as `<run>/vocabulary.txt` for `predict`.
        bad_files: `(path, reason)` of every file the builder skipped as unreadable
            (`data.on_bad_file: skip`); `train` counts them and lists them in
            `<run>/bad_files.txt`.
        folds: `folds(k)` yields the `(train_dataset, validation_dataset, sizes)` of each of
            the book's K folds (see `kfold`), or `None` when the data cannot be folded.
        text: a character-level text generator's training text (`text_file`), or `None`:
            its sampler picks seed sequences from it.
        characters: the characters of a character-level text (`text_file`) in class index
            order, or `None` (its `class_names` are their printable `repr`, e.g. `'\\n'`).
    """

    train_dataset: object
    validation_dataset: object
    test_dataset: object
    input_shape: tuple
    task: str
    class_names: list = field(default_factory=list)
    sizes: dict = field(default_factory=dict)
    source: str = ""
    batch_size: int = 0
    baseline: dict = field(default_factory=dict)
    embeddings: dict = None
    vocabulary: list = None
    bad_files: list = field(default_factory=list)
    folds: object = None
    text: str = None
    characters: list = None

    @classmethod
    def from_splits(cls, datasets, **fields):
        """A `DataBundle` of `datasets["train"]`, `["validation"]` and `["test"]` (a missing
        split is `None`) and the other `fields`."""
        return cls(
            train_dataset=datasets.get("train"),
            validation_dataset=datasets.get("validation"),
            test_dataset=datasets.get("test"),
            **fields,
        )

    def info(self):
        """What a later command needs to know without the data: saved as config.yaml's
        `data_info` (`predict` names classes with it on a machine without the dataset)."""
        return {
            "task": self.task,
            "class_names": list(self.class_names),
            "input_shape": [None if d is None else int(d) for d in self.input_shape],
            "sizes": dict(self.sizes),
            "source": self.source,
        }

    @property
    def num_classes(self):
        return len(self.class_names)

    @property
    def steps_per_pass(self):
        """Batches in one pass over the training data (`None` if unknown)."""
        if not self.batch_size:
            return None
        return -(-self.sizes.get("train", 0) // self.batch_size)  # ceil


def kfold(x, y, k, *, make_dataset):
    """The book's K-fold validation (§3.6) over the examples `x`, `y` (arrays, same order).

    Fold `i` validates on the `i`-th of `k` consecutive slices of `len(x) // k` examples and
    trains on all the others, as the book's loop does (no shuffling: the examples keep their
    order, so every example is validated exactly once, but the `len(x) % k` last ones).

    Args:
        make_dataset: `make_dataset(x, y, training=bool)` → a batched `tf.data.Dataset`.

    Yields:
        `(train_dataset, validation_dataset, {"train": n_train, "validation": n_val})`.
    """
    import numpy as np

    n = len(x)
    size = n // k
    for i in range(k):
        val = np.arange(i * size, (i + 1) * size)
        train = np.concatenate([np.arange(0, i * size), np.arange((i + 1) * size, n)])
        yield (
            make_dataset(x[train], y[train], training=True),
            make_dataset(x[val], y[val], training=False),
            {"train": len(train), "validation": len(val)},
        )
