"""The `tf.data` image pipeline shared by every image dataset.

Files:  list → check (`FileCheck`: unreadable files are skipped or refused here, before
        training) → `from_tensor_slices` → parallel read + decode (a JPEG ≥ 2x the target at
        1/2, 1/4 or 1/8 scale) → resize → uint8 → `finish()`
Arrays: `from_tensor_slices` → (resize → uint8) → `finish()`
`finish()`: cache → shuffle (training) → batch → float32 → augment (training) → prefetch

Images leave the pipeline as float32 in [0, 255]: the model rescales (or calls its
backbone's `preprocess_input`) itself. Labels are int32 of shape `(batch,)`.
TensorFlow and Keras are imported inside the functions: listing files and checking a
config must not pay for them.
"""

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from kerasrun.data.augment import augment_batches, build_augmenter, check_augment
from kerasrun.errors import ConfigError, require

log = logging.getLogger("kerasrun")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
ON_BAD_FILE = ("skip", "error")
# Folders of metadata, never of images: macOS zip archives (`__MACOSX/._cat.jpg`) and
# Synology thumbnails (`@eaDir/cat.jpg/SYNOPHOTO_THUMB_XL.jpg`).
IGNORED_FOLDERS = ("__MACOSX", "@eaDir")
# What TensorFlow's `decode_image` decodes right, by Pillow's format → modes (None: all).
# Checked on real files (tests/test_bad_images.py): JPEG grayscale and CMYK (Adobe) come out
# as the right RGB, PNG of every bit depth is scaled to 8 bits (16-bit 0x8080 → 128), GIF
# gives its first frame. TF reads an 8-bit palette BMP's indices as gray and refuses 1-bit
# BMPs; those, and any format TF lacks (a TIFF or WebP named .png), are decoded by Pillow.
TF_DECODES = {"JPEG": ("L", "RGB", "CMYK"), "PNG": None, "GIF": None, "BMP": ("RGB", "RGBA")}


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
    """Image files under `folder` (recursively, into nested folders), sorted.

    Hidden files and folders (`.DS_Store`, AppleDouble `._cat.jpg`) and metadata folders
    (`IGNORED_FOLDERS`) are not images and are passed over. Symlinked folders are followed,
    but a folder already listed is not listed again: a symlink loop (a link to an enclosing
    folder) or a second link to the same folder is logged as a warning and not followed,
    so the listing always ends and no image is counted twice.
    """
    found, seen = [], set()
    for parent, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(parent)
        # A link to an enclosing folder would list its other sub-folders too (another
        # class's images): only links can do that, so only they pay for the search.
        if real in seen or (os.path.islink(parent) and any(_inside(s, real) for s in seen)):
            log.warning(
                f"Not following the symlinked folder {shown(parent)}: {shown(real)} is already "
                "listed (a symlink loop, or a second link to it)."
            )
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in IGNORED_FOLDERS)
        found += [
            os.path.join(parent, f)
            for f in files
            if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS)
        ]
    return sorted(found)


def _loops_back(link, folder):
    """Whether `link` is a symlink to `folder` or to a folder enclosing it (a warning)."""
    real = os.path.realpath(link)
    loops = os.path.islink(link) and (real == os.path.realpath(folder) or _inside(folder, real))
    if loops:
        log.warning(f"Not following the symlinked folder {shown(link)}: a symlink loop.")
    return loops


def _inside(path, folder):
    path, folder = os.path.realpath(path), folder.rstrip(os.sep)
    return path.startswith(folder + os.sep)


def shown(path):
    """`path` as printable text, even when its name is not valid UTF-8 (`\\xe9` for é)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def class_folders(folder, *, key="data.root", minimum=2):
    """The sorted class sub-folder names of `folder` (like Keras: name order = label index).

    A classifier needs two classes: a single class folder (or none) is a `ConfigError`
    naming `key` and the folders found (`minimum=1`: one is enough, for a generative model
    that keeps one class). Hidden and metadata folders are not classes.
    """
    folder = Path(folder)
    require(
        folder.is_dir(),
        f"{key} must be an existing folder of class sub-folders (one per label). "
        f"Received: {key}='{folder}', which does not exist. Set {key}=/path/to/images.",
    )
    names = sorted(
        p.name
        for p in folder.iterdir()
        if p.is_dir()
        and not p.name.startswith(".")
        and p.name not in IGNORED_FOLDERS
        and not _loops_back(p, folder)
    )
    loose = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    require(
        len(names) >= minimum,
        f"{key} needs at least {minimum} class sub-folder{'s' if minimum > 1 else ''} "
        "(one per label). "
        f"Received: {key}='{folder}' with {len(names)} ({', '.join(names) or 'none'})"
        + (f" and {len(loose)} images directly inside" if loose else "")
        + f". Put each class's images in its own sub-folder, e.g. {folder}/cats, {folder}/dogs."
        + (
            f" A generative model (model=dcgan or vae) trains on one: data.classes=[{names[0]}]."
            if len(names) == 1
            else ""
        ),
    )
    return names


def list_class_folder(folder, class_names, *, key="data.root", check=None):
    """`(paths, labels)` of the images in `folder/<class>/` for each class, in class order.

    An empty class folder is a `ConfigError`, not a warning: its label would be one the
    model can never learn (and with two folders, a single class). With a `FileCheck`, only
    the readable images are returned, and a class whose every image is unreadable is a
    `ConfigError` too.
    """
    paths, labels = [], []
    for label, name in enumerate(class_names):
        files = list_images(Path(folder) / name)
        require(
            files,
            f"Every class folder needs at least one image ({', '.join(IMAGE_EXTENSIONS)}). "
            f"Received: {key}='{folder}' whose '{name}/' holds none. Add images or remove it.",
        )
        if check is not None:
            found, skipped = len(files), len(check.bad_files)
            files, _ = check.keep(files)
            first = check.bad_files[skipped] if not files else ("", "")
            require(
                files,
                "Every class folder needs at least one readable image. Received: "
                f"{key}='{folder}' whose '{name}/' holds {found}, all unreadable (first: "
                f"{first[0]}: {first[1]}). Replace them or remove the folder.",
            )
        paths += files
        labels += [label] * len(files)
    return paths, labels


class FileCheck:
    """The check of every listed image file before training, so that nothing fails mid-epoch.

    Each file is opened with Pillow and checked, in parallel threads: a JPEG is decoded at
    1/8 scale (libjpeg still reads every byte of its data, so truncation and corruption show
    up, at about a third of a full decode's cost), a PNG's chunks are checksummed (`verify`),
    other formats are decoded. A file that fails is skipped and kept in `bad_files` with the
    reason (`on_bad_file="skip"`), or stops the build with a one-line `ConfigError`
    (`"error"`). Files TensorFlow cannot decode right (see `TF_DECODES`) are decoded by
    Pillow in the pipeline instead (`with_pillow`).

    Images over Pillow's decompression-bomb limit (`PIL.Image.MAX_IMAGE_PIXELS`, 89.5
    megapixels, e.g. 10000×10000): a JPEG is decoded by Pillow at a reduced size (1/2 to
    1/8, still at least `image_size`; libjpeg scales while decoding, so a 100-megapixel photo
    takes 0.05 s and 20 MB instead of 1.7 s and 600 MB in full), as the photos of high-resolution
    cameras are real data; any other format would need the whole image in memory, so it
    is skipped with the reason. Over twice the limit Pillow refuses the file as a possible
    decompression bomb: skipped too.

    Args:
        on_bad_file: `"skip"` or `"error"`.

    Attributes:
        bad_files: `(path, reason)` of each skipped file, in listing order.
        with_pillow: the paths to decode with Pillow.
        checked: number of files checked; `seconds`: the time it took.
    """

    def __init__(self, on_bad_file="skip"):
        self.on_bad_file = check_on_bad_file(on_bad_file)
        self.bad_files, self.with_pillow = [], set()
        self.checked, self.seconds = 0, 0.0

    def keep(self, paths, labels=None):
        """The `(paths, labels)` of the readable files among `paths` (labels may be `None`)."""
        labels = [None] * len(paths) if labels is None else labels
        _quiet_pillow()
        start = time.perf_counter()
        with ThreadPoolExecutor(min(8, 2 * (os.cpu_count() or 1))) as pool:
            found = list(pool.map(inspect_image, paths))
        self.checked += len(paths)
        self.seconds += time.perf_counter() - start
        kept = [], []
        for path, label, (decoder, reason) in zip(paths, labels, found, strict=True):
            if reason is not None:
                self._bad(path, reason)
                continue
            if decoder == "pillow":
                self.with_pillow.add(path)
            kept[0].append(path)
            kept[1].append(label)
        return kept

    def _bad(self, path, reason):
        if self.on_bad_file == "error":
            raise ConfigError(
                f"Unreadable image {shown(path)}: {reason}. Received: data.on_bad_file='error'"
                ", which stops at the first one. Fix or remove the file, or set "
                "data.on_bad_file=skip to train without it."
            )
        self.bad_files.append((shown(path), reason))


def inspect_image(path):
    """How the pipeline can decode `path`: `("tf" | "pillow", None)`, or `(None, reason)`."""
    from PIL import Image, UnidentifiedImageError

    try:
        if os.path.getsize(path) == 0:
            return None, "empty file (0 bytes)"
    except OSError as e:  # a broken symlink, a file without read permission, ...
        return None, f"cannot be read: {e.strerror}"
    kind = "file"
    try:
        with Image.open(path) as image:
            kind, (width, height) = image.format, image.size
            too_large = width * height > (Image.MAX_IMAGE_PIXELS or float("inf"))
            if too_large and kind != "JPEG":
                return None, (
                    f"too large: {width}x{height} pixels, over Pillow's decompression-bomb "
                    f"limit of {Image.MAX_IMAGE_PIXELS:,}; save a smaller copy"
                )
            if kind == "PNG":
                image.verify()
            else:
                image.draft("RGB", (1, 1))  # JPEG: 1/8 scale; a no-op for other formats
                image.load()
            modes = TF_DECODES.get(kind, ())
            tf_decodes = not too_large and (modes is None or image.mode in modes)
    except UnidentifiedImageError:
        return None, "not an image (Pillow cannot identify its content)"
    except Image.DecompressionBombError as e:
        return None, f"too large: {_one_line(e)}"
    except Exception as e:  # broken data raises OSError, SyntaxError, ValueError, struct.error...
        return None, f"broken {kind}: {_one_line(e)}"
    return ("tf" if tf_decodes else "pillow"), None


def _quiet_pillow():
    """Pillow warns about images over its pixel limit; `FileCheck` applies its own policy to
    them and lists every skipped file, so the warning is noise. Called from the main thread
    only, before the threads start: `warnings.filterwarnings` is not thread-safe."""
    import warnings

    from PIL import Image

    bomb = Image.DecompressionBombWarning
    if not any(f[0] == "ignore" and f[2] is bomb for f in warnings.filters):
        warnings.filterwarnings("ignore", category=bomb)


def _one_line(error):
    return " ".join(str(error).split()) or type(error).__name__


def decode_with_pillow(path, height, width):
    """One image as uint8 RGB `(h, w, 3)`, decoded by Pillow (a `tf.numpy_function`)."""
    from PIL import Image

    with Image.open(os.fsdecode(path)) as image:
        # A JPEG is decoded at 1/2 to 1/8 scale while staying at least the target size.
        image.draft("RGB", (int(width), int(height)))
        return np.asarray(image.convert("RGB"))


def check_common(*, batch_size, image_size, augment, allow_native_size=False):
    """Checks the keys every image builder shares, before anything is loaded."""
    check_batch_size(batch_size)
    check_augment(augment)
    return check_image_size(image_size, allow_none=allow_native_size)


JPEG_RATIOS = (8, 4, 2)  # the scales libjpeg decodes at (1/8, 1/4, 1/2), largest first


def jpeg_ratio(source, target):
    """The largest JPEG decode ratio (8, 4, 2, else 1) keeping both sides ≥ the target.

    Args:
        source: the JPEG's `(height, width)`.
        target: the `(height, width)` it is resized to.

    libjpeg rounds the scaled sides up and `//` rounds down: this errs to the larger image.
    """
    for ratio in JPEG_RATIOS:
        if source[0] // ratio >= target[0] and source[1] // ratio >= target[1]:
            return ratio
    return 1


def jpeg_ratios(paths, image_size, skip=()):
    """The decode ratio of each file: `jpeg_ratio` for a JPEG, 1 for anything else.

    The size comes from the header (Pillow reads only that), in threads: about 0.1 s for
    2,000 files. A file that cannot be read, and the files in `skip` (decoded by Pillow),
    get 1, so they go through the pipeline exactly as before.
    """
    from PIL import Image

    def ratio(path):
        if path in skip:
            return 1
        try:
            with Image.open(path) as image:
                # (`format` JPEG, not MPO etc.: the files TensorFlow's `is_jpeg` also sees)
                if image.format != "JPEG":
                    return 1
                return jpeg_ratio((image.height, image.width), image_size)
        except Exception:  # not readable here: the pipeline's own rules apply to it
            return 1

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(ratio, paths))


def files_dataset(
    paths, labels, *, image_size, on_bad_file="skip", with_pillow=(), reduced_decode=True
):
    """`(uint8 image, int32 label)` pairs read and decoded in parallel, in `paths` order.

    JPEG, PNG, BMP and GIF (first frame) are decoded by TensorFlow to 3 channels (an alpha
    channel is dropped, as Keras does) and resized with bilinear interpolation, as
    `keras.utils.image_dataset_from_directory` does. The files in `with_pillow` (see
    `FileCheck`) are decoded by Pillow instead, then resized the same way.

    A JPEG at least twice the target size on both sides is decoded at 1/2, 1/4 or 1/8 scale
    (`jpeg_ratio`): libjpeg scales while decoding, skipping the detail the resize throws
    away, so a 500x375 photo for 150x150 decodes at 250x188 (about 1.1x faster here, 1.3x at
    1/4 scale: the entropy-coded data is still read in full, docs/performance.md); the pixels
    after the resize stay close to a full decode's (tests/test_pipeline_speed.py). The ratio
    is an attribute of `decode_jpeg`, not an input: each ratio gets its own parallel map, and
    `choose_from_datasets` puts the images back in order (graph control flow choosing the
    ratio per image cost more than the smaller decode saved). `reduced_decode=False` decodes
    every file at full size (for comparisons).

    The files are expected to have passed a `FileCheck`, so none should fail here. Should
    one still do, `on_bad_file="skip"` drops it (`ignore_errors()`) rather than stopping a
    long training halfway, and `"error"` raises TensorFlow's error.
    """
    import tensorflow as tf

    height, width = image_size
    pillow_flags = [path in with_pillow for path in paths]
    if any(pillow_flags):
        _quiet_pillow()
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
        ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
        return ds.ignore_errors() if on_bad_file == "skip" else ds

    groups = sorted(set(ratios))
    members = {r: [i for i, ratio in enumerate(ratios) if ratio == r] for r in groups}
    if len(groups) == 1:
        return pipeline(groups[0], members[groups[0]])
    choices = np.asarray([groups.index(r) for r in ratios], "int64")
    # stop_on_empty_dataset=False: a file skipped by ignore_errors() must not end the others.
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
    from kerasrun.data.bundle import DataBundle

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
            on_bad_file=on_bad_file,
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
        bad_files=list(check.bad_files),
    )
