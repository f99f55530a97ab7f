"""`DataBundle`'s K folds (`trainer.kfold`, the book's 3.6): consecutive slices of the
training and validation examples."""

import numpy as np

from kerasrun.data import build_data
from kerasrun.data.bundle import kfold


def test_folds_are_the_books_consecutive_slices():
    x, y = np.arange(10), np.arange(10) * 10
    seen = []
    for train, val, sizes in kfold(x, y, 4, make_dataset=lambda x, y, training: (x, y, training)):
        assert train[2] and not val[2]  # the training side is the one that shuffles
        assert sizes == {"train": len(train[0]), "validation": 2}
        assert set(train[0]) | set(val[0]) == set(range(10)) and not set(train[0]) & set(val[0])
        np.testing.assert_array_equal(val[1], val[0] * 10)  # labels travel with examples
        seen.append(list(val[0]))
    # num_val_samples = 10 // 4 = 2; the 2 left over always train, as in the book's loop.
    assert seen == [[0, 1], [2, 3], [4, 5], [6, 7]]


def test_in_memory_data_folds_training_and_validation_examples(tmp_path):
    bundle = build_data("digits", validation_split=0.2, test_split=0.1, seed=0)
    folds = list(bundle.folds(3))
    total = bundle.sizes["train"] + bundle.sizes["validation"]
    assert len(folds) == 3
    for train, val, sizes in folds:
        assert sizes == {"train": total - total // 3, "validation": total // 3}
        assert sum(int(y.shape[0]) for _, y in val) == total // 3
        assert sum(int(y.shape[0]) for _, y in train) == sizes["train"]
