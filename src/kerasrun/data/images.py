"""Image files: finding them, checking them before training, and how to decode them.

`list_images` and `class_folders` find the files (nested folders, symlinks, hidden files);
`FileCheck` opens every listed file once, before training, so that nothing fails
mid-epoch: unreadable files are skipped or refused, and the files TensorFlow decodes wrongly
go to Pillow (`decode_with_pillow`); `jpeg_ratios` reads the JPEG headers for a decode at
reduced size. The `tf.data` pipeline that reads them is `kerasrun.data.pipeline`.

Pillow is imported inside the functions: listing files and checking a config must not pay
for it.
"""

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from kerasrun.data.checks import check_on_bad_file
from kerasrun.errors import ConfigError, require

log = logging.getLogger("kerasrun")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
# Folders of metadata, never of images: macOS zip archives (`__MACOSX/._cat.jpg`) and
# Synology thumbnails (`@eaDir/cat.jpg/SYNOPHOTO_THUMB_XL.jpg`).
IGNORED_FOLDERS = ("__MACOSX", "@eaDir")
# What TensorFlow's `decode_image` decodes right, by Pillow's format → modes (None: all).
# Checked on real files (tests/unit/data/test_images.py): JPEG grayscale and CMYK (Adobe) come out
# as the right RGB, PNG of every bit depth is scaled to 8 bits (16-bit 0x8080 → 128), GIF
# gives its first frame. TF reads an 8-bit palette BMP's indices as gray and refuses 1-bit
# BMPs; those, and any format TF lacks (a TIFF or WebP named .png), are decoded by Pillow.
TF_DECODES = {"JPEG": ("L", "RGB", "CMYK"), "PNG": None, "GIF": None, "BMP": ("RGB", "RGBA")}


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
    up, at about a third of a full decode's cost), a PNG's chunks are checksummed (`verify`)
    and its pixels decoded in full (its deflate stream can be corrupt in valid chunks, which
    TensorFlow would only find mid-epoch: a PNG costs about half of its first-epoch decode),
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
        quiet_pillow()
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
                image.verify()  # the chunks' CRCs, which libpng checks too
            else:
                image.draft("RGB", (1, 1))  # JPEG: 1/8 scale; a no-op for other formats
                image.load()
            modes = TF_DECODES.get(kind, ())
            tf_decodes = not too_large and (modes is None or image.mode in modes)
        if kind == "PNG":
            # `verify` never inflates the pixel data: a corrupt deflate stream in valid chunks
            # would pass it and fail TensorFlow's decode mid-epoch. (After `verify` the file
            # must be opened again.)
            with Image.open(path) as image:
                image.load()
    except UnidentifiedImageError:
        return None, "not an image (Pillow cannot identify its content)"
    except Image.DecompressionBombError as e:
        return None, f"too large: {_one_line(e)}"
    except Exception as e:  # broken data raises OSError, SyntaxError, ValueError, struct.error...
        return None, f"broken {kind}: {_one_line(e)}"
    return ("tf" if tf_decodes else "pillow"), None


def quiet_pillow():
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
