"""The `tf.data` pipeline shared by every image dataset, from files or from arrays.

Files:  `images.FileCheck` (before the splits) → `from_tensor_slices` → parallel read +
        decode (a JPEG ≥ 2x the target at 1/2, 1/4 or 1/8 scale) → resize → uint8 → `finish()`
Arrays: `from_tensor_slices` → (resize → uint8) → `finish()`
`finish()`: cache → shuffle (training) → batch → float32 → augment (training) → prefetch

Images leave the pipeline as float32 in [0, 255]: the model rescales (or calls its
backbone's `preprocess_input`) itself. Labels are int32 of shape `(batch,)`.
TensorFlow is imported inside the functions: checking a config must not pay for it.
"""

import functools
import logging
import os
from pathlib import Path

import numpy as np

from kerasrun.data.augment import augment_batches, build_augmenter
from kerasrun.data.bundle import DataBundle, kfold
from kerasrun.data.checks import check_common
from kerasrun.data.images import FileCheck, decode_with_pillow, jpeg_ratios, quiet_pillow
from kerasrun.errors import require

log = logging.getLogger("kerasrun")


def files_dataset(paths, labels, *, image_size, with_pillow=(), reduced_decode=True):
    """`(uint8 image, int32 label)` pairs read and decoded in parallel, in `paths` order.

    JPEG, PNG, BMP and GIF (first frame) are decoded by TensorFlow to 3 channels (an alpha
    channel is dropped, as Keras does) and resized with bilinear interpolation, as
    `keras.utils.image_dataset_from_directory` does. The files in `with_pillow` (see
    `FileCheck`) are decoded by Pillow instead, then resized the same way.

    A JPEG at least twice the target size on both sides is decoded at 1/2, 1/4 or 1/8 scale
    (`jpeg_ratio`): libjpeg scales while decoding, skipping the detail the resize throws
    away, so a 500x375 photo for 150x150 decodes at 250x188 (about 1.1x faster here, 1.3x at
    1/4 scale: the entropy-coded data is still read in full, docs/performance.md); the pixels
    after the resize stay close to a full decode's (tests/unit/data/test_pipeline.py). The ratio
    is an attribute of `decode_jpeg`, not an input: each ratio gets its own parallel map, and
    `choose_from_datasets` puts the images back in order (graph control flow choosing the
    ratio per image cost more than the smaller decode saved). `reduced_decode=False` decodes
    every file at full size (for comparisons).

    The files are expected to have passed a `FileCheck`, which decodes each one before
    training (a PNG in full: its chunks can be valid and its deflate stream corrupt), so
    that a bad file is counted, listed and left out of `sizes`, or refused in one line. None
    is dropped here: `ignore_errors()` would drop a file that still fails (changed on disk
    since the check) without a count or a name, so TensorFlow's error stops the run instead,
    whatever `data.on_bad_file` says.
    """
    import tensorflow as tf

    height, width = image_size
    pillow_flags = [path in with_pillow for path in paths]
    if any(pillow_flags):
        quiet_pillow()
    ratios = jpeg_ratios(paths, image_size, with_pillow) if reduced_decode else [1] * len(paths)

    def pipeline(ratio, indices):
        use_pillow = any(pillow_flags[i] for i in indices)

        def by_tf(path):
            contents = tf.io.read_file(path)
            if ratio > 1:  # a JPEG, by its header
                return tf.io.decode_jpeg(contents, channels=3, ratio=ratio)
            return tf.io.decode_image(contents, channels=3, expand_animations=False)

        def by_pillow(path):
            return tf.numpy_function(
                decode_with_pillow, [path, height, width], tf.uint8, stateful=False
            )

        def load(path, pillow, label):
            # No tf.cond (and no Python in the graph) when every file is for TensorFlow.
            if use_pillow:
                image = tf.cond(pillow, lambda: by_pillow(path), lambda: by_tf(path))
            else:
                image = by_tf(path)
            image.set_shape((None, None, 3))
            image = tf.image.resize(image, (height, width))
            # uint8 in the cache: 4x smaller than float32, cast back after batching.
            return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8), label

        # Paths as bytes: a file name that is not valid UTF-8 still reaches the file system.
        names = [os.fsencode(paths[i]) for i in indices]
        flags = [pillow_flags[i] for i in indices]
        chosen = np.asarray([labels[i] for i in indices], "int32")
        ds = tf.data.Dataset.from_tensor_slices((names, flags, chosen))
        return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)

    groups = sorted(set(ratios))
    members = {r: [i for i, ratio in enumerate(ratios) if ratio == r] for r in groups}
    if len(groups) == 1:
        return pipeline(groups[0], members[groups[0]])
    choices = np.asarray([groups.index(r) for r in ratios], "int64")
    # Every file yields one image, so no dataset runs out before the selector does.
    return tf.data.Dataset.choose_from_datasets(
        [pipeline(r, members[r]) for r in groups],
        tf.data.Dataset.from_tensor_slices(choices),
        stop_on_empty_dataset=False,
    )


def finish(
    ds, *, batch_size, training=False, augmenter=None, cache=True, seed=0, size=None, name=None
):
    """cache → shuffle → batch → float32 → augment → prefetch, for files and arrays alike.

    Args:
        ds: unbatched `(uint8 image, int32 label)` pairs.
        batch_size: examples per batch.
        training: shuffle (reshuffled each epoch) and augment; off for validation and test.
        augmenter: an `augment.Augmentation` (`build_augmenter()`), or `None`.
        cache: keep the decoded uint8 images in memory after the first epoch (`True`), or
            in files in this directory (a path: `data.cache=disk`, see `disk_cache`).
        seed: the shuffle seed.
        size: number of examples; the shuffle buffer holds them all (a full shuffle).
        name: the split (`train`, ...): its cache files' name in a disk cache.
    """
    import tensorflow as tf

    if isinstance(cache, (str, os.PathLike)):
        ds = ds.cache(disk_cache(cache, name or "data"))
    elif cache:
        ds = ds.cache()
    if training:
        ds = ds.shuffle(size or 10_000, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)

    def to_float(images, labels):
        return tf.cast(images, tf.float32), labels

    ds = ds.map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
    if training and augmenter is not None:
        ds = augment_batches(ds, augmenter, seed)
    return ds.prefetch(tf.data.AUTOTUNE)


def disk_cache(directory, name):
    """The file prefix of split `name`'s tf.data cache in `directory`, made usable.

    tf.data writes `<prefix>.data-*` and a `<prefix>_*.lockfile` while the first pass runs,
    and `<prefix>.index` when the pass is complete; later passes (and a resumed run) read the
    files. A run killed during the first pass leaves a lockfile and partial data, on which
    tf.data would fail ("a concurrently running iterator"): those are removed here, so the
    pass writes them again. A complete cache (with its index) is kept.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    prefix = directory / name
    if not prefix.with_name(f"{name}.index").exists():
        for stale in directory.glob(f"{name}[._]*"):
            stale.unlink()
    return str(prefix)


def bundle_from_files(
    splits,
    *,
    class_names,
    image_size,
    batch_size,
    augment,
    cache,
    on_bad_file,
    seed,
    source,
    check=None,
):
    """A `DataBundle` from `{"train": (paths, labels), "validation": ..., "test": ...}`.

    `check` is the `FileCheck` the builder ran on these paths before splitting them (so a
    skipped file changes the splits as deleting it would); without one, every split is
    checked here. `sizes` count the images that will really be used, and `bad_files` lists
    the skipped ones. A split that is missing or empty becomes `None`.
    """
    if check is None:
        check = FileCheck(on_bad_file)
        splits = {name: check.keep(*split) for name, split in splits.items() if split}
    if check.checked:
        log.info(
            f"Checked {check.checked} image files in {check.seconds:.1f} s: "
            f"{len(check.bad_files)} unreadable, {len(check.with_pillow)} decoded with Pillow."
        )
    first = ": ".join(check.bad_files[0]) if check.bad_files else "none"
    require(
        (splits.get("train") or ([], []))[0],
        f"No readable training image is left: {len(check.bad_files)} files were skipped as "
        f"unreadable (first: {first}). Received: {source}. Replace or remove those files.",
    )
    augmenter = build_augmenter(augment)
    datasets, sizes = {}, {}
    for name in ("train", "validation", "test"):
        paths, labels = splits.get(name) or ([], [])
        sizes[name] = len(paths)
        if not paths:
            datasets[name] = None
            continue
        ds = files_dataset(
            paths,
            labels,
            image_size=image_size,
            with_pillow=check.with_pillow,
        )
        training = name == "train"
        datasets[name] = finish(
            ds,
            batch_size=batch_size,
            training=training,
            augmenter=augmenter,
            cache=cache,
            seed=seed,
            size=len(paths),
            name=name,
        )
    return DataBundle.from_splits(
        datasets,
        input_shape=(*image_size, 3),
        task="binary" if len(class_names) == 2 else "multiclass",
        class_names=list(class_names),
        sizes=sizes,
        source=source,
        batch_size=batch_size,
        bad_files=list(check.bad_files),
    )


def bundle_from_arrays(
    splits, *, class_names, batch_size, image_size, augment, cache, seed, source, classes=None
):
    """A `DataBundle` from `{"train": (x, y), "validation": (x, y), "test": (x, y)}`.

    `x` is uint8 `(n, h, w, c)`; an empty or missing split becomes `None`. `classes` (checked
    names of `class_names`, or `None`) keeps only their examples, labelled in that order.
    """
    import tensorflow as tf

    image_size = check_common(
        batch_size=batch_size, image_size=image_size, augment=augment, allow_native_size=True
    )
    augmenter = build_augmenter(augment)
    if classes is not None:
        splits, class_names = keep_classes(splits, class_names, classes)
    x_train = splits["train"][0]
    shape = (*(image_size or x_train.shape[1:3]), x_train.shape[3])
    resized = image_size is not None and tuple(image_size) != tuple(x_train.shape[1:3])

    def resize(image, label):
        image = tf.image.resize(image, image_size)
        return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8), label

    def make(x, y, training):
        if not len(x):
            return None
        ds = tf.data.Dataset.from_tensor_slices((x, np.asarray(y, "int32").reshape(-1)))
        if resized:
            ds = ds.map(resize, num_parallel_calls=tf.data.AUTOTUNE)
        # Arrays are in memory already: caching them unresized would only copy them, and
        # resized ones are no larger than memory can hold (data.cache=disk: in memory too).
        return finish(
            ds,
            batch_size=batch_size,
            training=training,
            augmenter=augmenter,
            cache=bool(cache) and resized,
            seed=seed,
            size=len(x),
        )

    datasets, sizes = {}, {}
    for name in ("train", "validation", "test"):
        x, y = splits.get(name) or (x_train[:0], [])
        sizes[name] = len(x)
        datasets[name] = make(x, y, name == "train")
    x_val, y_val = splits.get("validation") or (x_train[:0], [])
    all_x = np.concatenate([x_train, x_val])
    all_y = np.concatenate(
        [np.asarray(splits["train"][1]).reshape(-1), np.asarray(y_val).reshape(-1)]
    )
    return DataBundle.from_splits(
        datasets,
        input_shape=shape,
        task="binary" if len(class_names) == 2 else "multiclass",
        class_names=list(class_names),
        sizes=sizes,
        source=source,
        batch_size=batch_size,
        folds=functools.partial(kfold, all_x, all_y.astype("int32"), make_dataset=make),
    )


def keep_classes(splits, class_names, classes):
    """`(splits, classes)`: only the examples of `classes`, relabelled 0.. in their order."""
    new_label = np.full(len(class_names), -1)
    new_label[[class_names.index(c) for c in classes]] = np.arange(len(classes))
    kept = {}
    for name, (x, y) in splits.items():
        y = new_label[np.asarray(y).reshape(-1)]
        kept[name] = (x[y >= 0], y[y >= 0])
    return kept, list(classes)
