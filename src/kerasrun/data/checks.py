"""The keys every data builder shares, checked before anything is downloaded or read.

`batch_size`, `image_size`, `validation_split` / `test_split` (and the seeded split they
make, `split_indices`), `on_bad_file` and `classes`. The numbers go through the one set of
value checks in `kerasrun.errors`; the shapes of value only data has (a `[height, width]`
pair, class names) are checked here.
"""

import numpy as np

from kerasrun.data.augment import check_augment
from kerasrun.errors import check_int, check_number, is_int, require

ON_BAD_FILE = ("skip", "error")


def check_batch_size(batch_size):
    """`batch_size` as an int, or a `ConfigError`."""
    return check_int("data.batch_size", batch_size, example=32)


def check_image_size(image_size, allow_none=False):
    """`image_size` as a `(height, width)` tuple (or `None` when allowed)."""
    if image_size is None and allow_none:
        return None
    ok = (
        isinstance(image_size, (list, tuple))
        and len(image_size) == 2
        and all(is_int(v) and v > 0 for v in image_size)
    )
    native = " or null (native size)" if allow_none else ""
    require(
        ok,
        f"data.image_size must be [height, width] of positive integers{native}. "
        f"Received: data.image_size={image_size!r}. Set e.g. data.image_size=[150,150].",
    )
    return tuple(image_size)


def check_common(*, batch_size, image_size, augment, allow_native_size=False):
    """Checks the keys every image builder shares; returns `image_size` as a tuple."""
    check_batch_size(batch_size)
    check_augment(augment)
    return check_image_size(image_size, allow_none=allow_native_size)


def check_splits(validation_split, test_split=0.0):
    """Both fractions as floats in [0, 1) whose sum is below 1 (`None` means 0)."""
    fractions = {}
    for key, value in (("validation_split", validation_split), ("test_split", test_split)):
        value = 0.0 if value is None else value
        check_number(
            f"data.{key}", value, minimum=0, below=1, example=0.2, why="a fraction of the data"
        )
        fractions[key] = float(value)
    require(
        sum(fractions.values()) < 1,
        "data.validation_split + data.test_split must be below 1 (some data must be left to "
        f"train on). Received: data.validation_split={validation_split!r}, "
        f"data.test_split={test_split!r}. Lower one of them.",
    )
    return fractions["validation_split"], fractions["test_split"]


def split_indices(n, *, validation_split, test_split, seed):
    """Seeded, deterministic `(train, validation, test)` index arrays over `range(n)`.

    A non-zero fraction always gets at least one example; each array is sorted.
    """
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, round(n * test_split)) if test_split else 0
    n_val = max(1, round(n * validation_split)) if validation_split else 0
    require(
        n - n_test - n_val > 0,
        f"Too few examples ({n}) for data.validation_split={validation_split!r} and "
        f"data.test_split={test_split!r}: nothing is left to train on. "
        "Lower the fractions or add data.",
    )
    test, val, train = np.split(order, [n_test, n_test + n_val])
    return np.sort(train), np.sort(val), np.sort(test)


def check_on_bad_file(on_bad_file):
    """`on_bad_file` (`skip` or `error`), or a `ConfigError`."""
    require(
        on_bad_file in ON_BAD_FILE,
        f"data.on_bad_file must be one of {', '.join(ON_BAD_FILE)}. "
        f"Received: data.on_bad_file={on_bad_file!r}. Use skip to drop unreadable images.",
    )
    return on_bad_file


def check_classes(classes, class_names, *, data):
    """`classes` as a list of names of `class_names` (numbers become names), or `None`.

    Raises:
        ConfigError: not a non-empty list of distinct names, or a name that is not a class.
    """
    if classes is None:
        return None
    ok = isinstance(classes, (list, tuple)) and classes
    ok = ok and all(isinstance(c, str) or is_int(c) for c in classes)
    names = [str(c) for c in classes] if ok else []
    require(
        ok and len(set(names)) == len(names),
        "data.classes must be a list of distinct class names to keep, or null (all of them). "
        f"Received: data.classes={classes!r}. Use e.g. data.classes=[{class_names[-1]}].",
    )
    unknown = [c for c in names if c not in class_names]
    require(
        not unknown,
        f"data.classes must name classes of data={data}: {', '.join(class_names)}. "
        f"Received: data.classes={names} ({', '.join(unknown)} is not one). Pick from that list.",
    )
    return names
