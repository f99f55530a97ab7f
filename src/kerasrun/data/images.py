"""The `tf.data` image pipeline shared by every image dataset.

Files:  list → `from_tensor_slices` → parallel read + decode → resize → uint8 → `finish()`
Arrays: `from_tensor_slices` → (resize → uint8) → `finish()`
`finish()`: cache → shuffle (training) → batch → float32 → augment (training) → prefetch

Images leave the pipeline as float32 in [0, 255]: the model rescales (or calls its
backbone's `preprocess_input`) itself. Labels are int32 of shape `(batch,)`.
TensorFlow and Keras are imported inside the functions: listing files and checking a
config must not pay for them.
"""

import os
from pathlib import Path

import numpy as np

from kerasrun.errors import require

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
FLIP_MODES = ("horizontal", "vertical", "horizontal_and_vertical")
# The book's ImageDataGenerator settings (5.2.5) in these keys:
#   augment: {rotation: 0.111, translation: 0.2, shear: 0.2, zoom: 0.2, flip: horizontal}
# rotation is a fraction of a full turn (40° / 360° = 0.111), as RandomRotation's factor.
# The book's shear_range=0.2 was an angle in radians (Keras 2.0; degrees since the end of 2017,
# keras-team/keras#8868); RandomShear's factor is the shift as a fraction of the image, i.e.
# tan(angle), and tan(0.2) = 0.203, so `shear: 0.2` is the book's shear.
AUGMENT_KEYS = ("flip", "rotation", "zoom", "translation", "shear", "contrast")
ON_BAD_FILE = ("skip", "error")


def check_batch_size(batch_size):
    """`batch_size` as an int, or a `ConfigError`."""
    ok = isinstance(batch_size, int) and not isinstance(batch_size, bool) and batch_size > 0
    require(
        ok,
        "data.batch_size must be a positive integer. "
        f"Received: data.batch_size={batch_size!r}. Set e.g. data.batch_size=32.",
    )
    return batch_size


def check_image_size(image_size, allow_none=False):
    """`image_size` as a `(height, width)` tuple (or `None` when allowed)."""
    if image_size is None and allow_none:
        return None
    ok = (
        isinstance(image_size, (list, tuple))
        and len(image_size) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in image_size)
    )
    native = " or null (native size)" if allow_none else ""
    require(
        ok,
        f"data.image_size must be [height, width] of positive integers{native}. "
        f"Received: data.image_size={image_size!r}. Set e.g. data.image_size=[150,150].",
    )
    return tuple(image_size)


def check_splits(validation_split, test_split=0.0):
    """Both fractions as floats in [0, 1) whose sum is below 1 (`None` means 0)."""
    fractions = {}
    for key, value in (("validation_split", validation_split), ("test_split", test_split)):
        value = 0.0 if value is None else value
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1
        require(
            ok,
            f"data.{key} must be a fraction in [0, 1). "
            f"Received: data.{key}={value!r}. Set e.g. data.{key}=0.2.",
        )
        fractions[key] = float(value)
    require(
        sum(fractions.values()) < 1,
        "data.validation_split + data.test_split must be below 1 (some data must be left to "
        f"train on). Received: data.validation_split={validation_split!r}, "
        f"data.test_split={test_split!r}. Lower one of them.",
    )
    return fractions["validation_split"], fractions["test_split"]


def check_on_bad_file(on_bad_file):
    require(
        on_bad_file in ON_BAD_FILE,
        f"data.on_bad_file must be one of {', '.join(ON_BAD_FILE)}. "
        f"Received: data.on_bad_file={on_bad_file!r}. Use skip to drop unreadable images.",
    )
    return on_bad_file


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


def list_images(folder):
    """Image files under `folder` (recursively), sorted; hidden files and folders skipped."""
    found = []
    for parent, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [
            os.path.join(parent, f)
            for f in files
            if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS)
        ]
    return sorted(found)


def class_folders(folder, *, key="data.root"):
    """The sorted class sub-folder names of `folder` (like Keras: name order = label index)."""
    folder = Path(folder)
    require(
        folder.is_dir(),
        f"{key} must be an existing folder of class sub-folders (one per label). "
        f"Received: {key}='{folder}', which does not exist. Set {key}=/path/to/images.",
    )
    names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    require(
        len(names) >= 2,
        f"{key} needs at least 2 class sub-folders (one per label). "
        f"Received: {key}='{folder}' with {len(names)} ({', '.join(names) or 'none'}). "
        f"Put each class's images in its own sub-folder, e.g. {folder}/cats, {folder}/dogs.",
    )
    return names


def list_class_folder(folder, class_names, *, key="data.root"):
    """`(paths, labels)` of the images in `folder/<class>/` for each class, in class order."""
    paths, labels = [], []
    for label, name in enumerate(class_names):
        files = list_images(Path(folder) / name)
        require(
            files,
            f"Every class folder needs at least one image ({', '.join(IMAGE_EXTENSIONS)}). "
            f"Received: {key}='{folder}' whose '{name}/' holds none. Add images or remove it.",
        )
        paths += files
        labels += [label] * len(files)
    return paths, labels


def check_augment(augment):
    """The active augmentation keys of `augment` as a dict (empty = off), or a `ConfigError`.

    Keys (all optional, 0/null = that layer off): `flip` (one of `FLIP_MODES`), `rotation`
    (fraction of a full turn), `zoom`, `translation` and `shear` (a fraction, or
    [height, width] / [x, y] fractions), `contrast` (a fraction).
    """
    if not augment:
        return {}
    require(
        isinstance(augment, dict),
        f"data.augment must be a mapping of {', '.join(AUGMENT_KEYS)} (or null for none). "
        f"Received: data.augment={augment!r}. Set e.g. data.augment.flip=horizontal.",
    )
    for key, value in augment.items():
        require(
            key in AUGMENT_KEYS,
            f"Unknown augmentation data.augment.{key}. Allowed keys: {', '.join(AUGMENT_KEYS)}. "
            f"Received: data.augment.{key}={value!r}. Fix the spelling or remove it.",
        )
        if key == "flip":
            require(
                value in (*FLIP_MODES, None, False),
                f"data.augment.flip must be one of {', '.join(FLIP_MODES)} or null. "
                f"Received: data.augment.flip={value!r}. Set e.g. data.augment.flip=horizontal.",
            )
        else:
            _check_factor(value, key, pair=key in ("translation", "shear"))
    return {k: v for k, v in augment.items() if v not in (None, False, 0, [0, 0], (0, 0))}


def build_augmenter(augment, seed):
    """A `keras.layers.Pipeline` of random layers from the `augment` dict, or `None` (off)."""
    augment = check_augment(augment)
    if not augment:
        return None
    import keras

    def pair_of(value):
        return tuple(value) if isinstance(value, (list, tuple)) else (value, value)

    # "nearest" fill, as the book's ImageDataGenerator(fill_mode="nearest"). Each layer gets
    # its own seed so that, e.g., the flip decision and the rotation angle are independent.
    # dtype float32: under a mixed_float16 policy the layers would return float16 images.
    fill = {"fill_mode": "nearest", "dtype": "float32"}
    makers = {
        "flip": lambda v, s: keras.layers.RandomFlip(v, seed=s, dtype="float32"),
        "rotation": lambda v, s: keras.layers.RandomRotation(v, **fill, seed=s),
        "zoom": lambda v, s: keras.layers.RandomZoom(v, **fill, seed=s),
        "translation": lambda v, s: keras.layers.RandomTranslation(*pair_of(v), **fill, seed=s),
        "shear": lambda v, s: keras.layers.RandomShear(*pair_of(v), **fill, seed=s),
        "contrast": lambda v, s: keras.layers.RandomContrast(
            v, value_range=(0, 255), seed=s, dtype="float32"
        ),
    }
    layers = [makers[k](augment[k], seed + i) for i, k in enumerate(AUGMENT_KEYS) if k in augment]
    return keras.layers.Pipeline(layers, name="augmentation")


def check_common(*, batch_size, image_size, augment, allow_native_size=False):
    """Checks the keys every image builder shares, before anything is loaded."""
    check_batch_size(batch_size)
    check_augment(augment)
    return check_image_size(image_size, allow_none=allow_native_size)


def _check_factor(value, key, pair):
    def ok(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1

    valid = value is None or ok(value)
    if pair and isinstance(value, (list, tuple)):
        valid = len(value) == 2 and all(ok(v) for v in value)
    shape = "a fraction in [0, 1] or a [height, width] pair" if pair else "a fraction in [0, 1]"
    require(
        valid,
        f"data.augment.{key} must be {shape}. Received: data.augment.{key}={value!r}. "
        f"Set e.g. data.augment.{key}=0.2.",
    )


def files_dataset(paths, labels, *, image_size, on_bad_file="skip"):
    """`(uint8 image, int32 label)` pairs read and decoded in parallel.

    JPEG, PNG, BMP and GIF (first frame) are decoded to 3 channels and resized with
    bilinear interpolation, as `keras.utils.image_dataset_from_directory` does. With
    `on_bad_file="skip"` an unreadable file is dropped by `ignore_errors()` instead of
    stopping an epoch halfway; the dropped files are not counted or listed yet, so
    `DataBundle.sizes` counts the files found, not the images decoded.
    """
    import tensorflow as tf

    height, width = image_size

    def load(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        image.set_shape((None, None, 3))
        image = tf.image.resize(image, (height, width))
        # uint8 in the cache: 4x smaller than float32, cast back after batching.
        return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8), label

    ds = tf.data.Dataset.from_tensor_slices((list(paths), np.asarray(labels, "int32")))
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.ignore_errors() if on_bad_file == "skip" else ds


def finish(ds, *, batch_size, training=False, augmenter=None, cache=True, seed=0, size=None):
    """cache → shuffle → batch → float32 → augment → prefetch, for files and arrays alike.

    Args:
        ds: unbatched `(uint8 image, int32 label)` pairs.
        batch_size: examples per batch.
        training: shuffle (reshuffled each epoch) and augment; off for validation and test.
        augmenter: a layer from `build_augmenter()`, or `None`.
        cache: keep the decoded uint8 images in memory after the first epoch.
        seed: the shuffle seed.
        size: number of examples; the shuffle buffer holds them all (a full shuffle).
    """
    import tensorflow as tf

    if cache:
        ds = ds.cache()
    if training:
        ds = ds.shuffle(size or 10_000, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)

    def to_float(images, labels):
        return tf.cast(images, tf.float32), labels

    ds = ds.map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
    if training and augmenter is not None:

        def augment(images, labels):
            return augmenter(images, training=True), labels

        # Sequential on purpose: the random layers draw from one seed generator, and
        # parallel calls would draw in a different order every run (not reproducible).
        ds = ds.map(augment)
    return ds.prefetch(tf.data.AUTOTUNE)


def bundle_from_files(
    splits, *, class_names, image_size, batch_size, augment, cache, on_bad_file, seed, source
):
    """A `DataBundle` from `{"train": (paths, labels), "validation": ..., "test": ...}`.

    A split that is missing or empty becomes `None`.
    """
    from kerasrun.data.bundle import DataBundle

    augmenter = build_augmenter(augment, seed)
    datasets, sizes = {}, {}
    for name in ("train", "validation", "test"):
        paths, labels = splits.get(name) or ([], [])
        sizes[name] = len(paths)
        if not paths:
            datasets[name] = None
            continue
        ds = files_dataset(paths, labels, image_size=image_size, on_bad_file=on_bad_file)
        training = name == "train"
        datasets[name] = finish(
            ds,
            batch_size=batch_size,
            training=training,
            augmenter=augmenter,
            cache=cache,
            seed=seed,
            size=len(paths),
        )
    return DataBundle(
        train_dataset=datasets["train"],
        validation_dataset=datasets["validation"],
        test_dataset=datasets["test"],
        input_shape=(*image_size, 3),
        task="binary" if len(class_names) == 2 else "multiclass",
        class_names=list(class_names),
        sizes=sizes,
        source=source,
        batch_size=batch_size,
    )
