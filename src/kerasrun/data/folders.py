"""Datasets of image files in folders: any `image_folder`, and the book's `cats_dogs`.

Class names are the sorted sub-folder names (label = index), as in
`keras.utils.image_dataset_from_directory`. Every listed file is checked before the splits
are made (`images.FileCheck`): unreadable ones are skipped, and listed in
`DataBundle.bad_files`, or refused (`on_bad_file`); the rest go through `pipeline.files_dataset`.
"""

import re
from pathlib import Path

import kerasrun.data.download as download
import kerasrun.data.images as images
from kerasrun.data.checks import (
    check_classes,
    check_common,
    check_on_bad_file,
    check_splits,
    split_indices,
)
from kerasrun.data.pipeline import bundle_from_files
from kerasrun.errors import ConfigError, check_number, require

CATS_DOGS_URL = "https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip"
# Its published size (every download log shows 68606236 bytes); no sha256 is published.
CATS_DOGS_SIZE = 68_606_236
CATS_DOGS = ["cats", "dogs"]
# The book's split of Kaggle's dogs-vs-cats/train (5.2.2): file numbers per split.
KAGGLE_SPLITS = {
    "train": range(0, 1000),
    "validation": range(1000, 1500),
    "test": range(1500, 2000),
}
KAGGLE_FILE = re.compile(r"^(cat|dog)\.\d+\.jpe?g$", re.IGNORECASE)
VALIDATION_DIRS = ("validation", "val")


def image_folder(
    *,
    root=None,
    image_size=(150, 150),
    batch_size=32,
    validation_split=0.2,
    test_split=0.0,
    augment=None,
    cache=True,
    on_bad_file="skip",
    classes=None,
    seed=0,
):
    """Images in class sub-folders: `root/<class>/*.jpg`, or split folders of those.

    Layouts:
        - `root/train/<class>/`, with optional `root/validation/` (or `val/`) and
          `root/test/`: each present split folder is used as is; a missing one is carved
          from train/ by `validation_split` / `test_split` (seeded).
        - `root/<class>/`: split by `validation_split` and `test_split` (seeded).

    What is found in the folders:
        - A class's images may sit in nested folders (`cats/2023/summer/x.jpg`: a cat);
          symlinked folders are followed, a symlink loop is not (a warning).
        - JPEG (RGB, grayscale, CMYK), PNG (any bit depth, alpha dropped), BMP and GIF
          (first frame) files are used, whatever their name (non-ASCII is fine).
        - Hidden files (`.DS_Store`, `._cat.jpg`) and `__MACOSX/` are not images: passed over.
        - A truncated, empty or non-image file is skipped (counted, listed in
          `<run>/bad_files.txt` by `train`) with `on_bad_file="skip"`, or stops the build
          with a one-line error naming it with `"error"`. A skipped file changes the splits
          as deleting it would.
        - Over 89.5 megapixels (e.g. 10000×10000), a JPEG is decoded at a reduced size and
          any other format is skipped (see `images.FileCheck`).
        - A single class folder, an empty class folder, or one whose files are all
          unreadable is a one-line error: a classifier needs images of at least two classes.

    Args:
        root: the folder.
        image_size: `[height, width]` every image is resized to.
        batch_size: examples per batch.
        validation_split: fraction carved out for validation when there is no validation/.
        test_split: fraction carved out for the test when there is no test/.
        augment: augmentation keys (see `kerasrun.data.augment`), or `None`.
        cache: keep decoded images in memory after the first epoch.
        on_bad_file: `"skip"` unreadable images, or `"error"` (stop at the first one).
        classes: the class folders to keep (labels follow this order), or `None` for all;
            one is enough for a generative model (`model=dcgan`): `root/frogs/` alone works.
        seed: split, shuffle and augmentation seed.
    """
    image_size = _check(batch_size, image_size, augment, on_bad_file)
    check = images.FileCheck(on_bad_file)
    validation_split, test_split = check_splits(validation_split, test_split)
    require(
        root is not None,
        "data.root must be a folder of class sub-folders (or of train/, validation/, test/ "
        "folders of them). Received: data.root=None. Set data.root=/path/to/images.",
    )
    root = Path(root).expanduser()
    given = {"train": root / "train", "test": root / "test"}
    given["validation"] = next((root / d for d in VALIDATION_DIRS if (root / d).is_dir()), None)
    top = root / "train" if given["train"].is_dir() else root
    all_names = images.class_folders(top, minimum=1 if classes is not None else 2)
    class_names = check_classes(classes, all_names, data="image_folder") or all_names
    paths, labels = images.list_class_folder(top, class_names, check=check)
    splits = {}
    for name in ("validation", "test"):
        folder = given[name]
        if folder is not None and folder.is_dir() and top != root:
            names = images.class_folders(
                folder, key="data.root", minimum=1 if classes is not None else 2
            )
            require(
                names == all_names,
                f"The class folders of {folder} must be those of {top}. Received: "
                f"data.root='{root}' with {name} classes {names} and train classes "
                f"{all_names}. Rename or add folders so that both splits have the same classes.",
            )
            splits[name] = images.list_class_folder(folder, class_names, check=check)
    # Carve from train/ only the splits that have no folder of their own.
    carve = {
        "validation": 0.0 if "validation" in splits else validation_split,
        "test": 0.0 if "test" in splits else test_split,
    }
    train, val, test = split_indices(
        len(paths), validation_split=carve["validation"], test_split=carve["test"], seed=seed
    )
    for name, index in (("train", train), ("validation", val), ("test", test)):
        if name not in splits:
            splits[name] = ([paths[i] for i in index], [labels[i] for i in index])
    layout = "train/ validation/ test/ folders" if top != root else "class folders"
    return bundle_from_files(
        splits,
        class_names=class_names,
        image_size=image_size,
        batch_size=batch_size,
        augment=augment,
        cache=cache,
        on_bad_file=on_bad_file,
        seed=seed,
        source=f"image folder: {root} ({layout}; carved validation_split={carve['validation']}, "
        f"test_split={carve['test']}, seed={seed})",
        check=check,
    )


def cats_dogs(
    *,
    root=None,
    url=CATS_DOGS_URL,
    sha256=None,
    size=CATS_DOGS_SIZE,
    cache_dir=None,
    image_size=(150, 150),
    batch_size=32,
    train_fraction=1.0,
    augment=None,
    cache=True,
    on_bad_file="skip",
    seed=0,
):
    """The book's cats vs. dogs (5.2): 2,000 train, 1,000 validation, 1,000 test images.

    Sources, detected from `root`:
        1. `root=None`: download `url` (`cats_and_dogs_filtered.zip`) with
           `keras.utils.get_file` into `<cache_dir>/datasets/`, extract it once, and use it
           as layout 2.
        2. a `cats_and_dogs_filtered` folder: train/ and validation/ of cats/ and dogs/.
           Its validation/ is split in half per class by sorted file name (alternating
           files), into validation and test; a test/ folder, if present, is used instead.
        3. Kaggle's flat `dogs-vs-cats/train` folder (cat.0.jpg ... dog.12499.jpg): the
           book's split, numbers 0-999 train, 1000-1499 validation, 1500-1999 test.
    Labels: 0 = cats, 1 = dogs, in all three.

    Args:
        root: a local folder in layout 2 or 3, or `None` to download.
        url: where to download `cats_and_dogs_filtered.zip` from.
        sha256: expected sha256 of the download, or `None` (not checked).
        size: expected size of the download in bytes (the public zip's is 68,606,236), or
            `None` (not checked).
        cache_dir: Keras's cache folder for the download (default `$KERAS_HOME` or `~/.keras`).
        train_fraction: train on this seeded fraction of each class's training images only
            (the lecture deck's VGG16 recipe uses 0.25 to mimic scarce data).
        image_size, batch_size, augment, cache, on_bad_file, seed: as for `image_folder`
            (unreadable files are checked for before splitting, in every layout).
    """
    image_size = _check(batch_size, image_size, augment, on_bad_file)
    check = images.FileCheck(on_bad_file)
    check_number(
        "data.train_fraction",
        train_fraction,
        above=0,
        maximum=1,
        example=0.25,
        why="the share of the training images to train on",
    )
    if root is None:
        extracted = download.get_file(
            url,
            sha256=sha256,
            size=size,
            cache_dir=cache_dir,
            extract=True,
            instead="set data.root= to a local cats_and_dogs_filtered or dogs-vs-cats/train folder",
        )
        found = [p for p in (extracted, *sorted(extracted.iterdir())) if _is_filtered(p)]
        require(
            found,
            f"The archive from {url} must hold the cats_and_dogs_filtered layout (train/ and "
            f"validation/ of cats/ and dogs/, none empty). Received: data.url={url!r}, "
            f"extracted to {extracted}. Check the URL, or set data.root= to a local folder.",
        )
        splits, source = _filtered_splits(found[0], check), f"download: {url} -> {found[0]}"
    else:
        root = Path(root).expanduser()
        require(
            root.is_dir(),
            f"data.root must be an existing folder. Received: data.root='{root}', which does "
            "not exist. Fix the path, or set data.root=null to download cats_and_dogs_filtered.",
        )
        if _is_filtered(root):
            splits = _filtered_splits(root, check)
            source = f"cats_and_dogs_filtered folder: {root}"
        elif _kaggle_folder(root) is not None:
            root = _kaggle_folder(root)
            splits, source = _kaggle_splits(root, check), f"kaggle dogs-vs-cats folder: {root}"
        else:
            raise ConfigError(
                "data.root must be one of: a cats_and_dogs_filtered folder (train/ and "
                "validation/ of cats/ and dogs/), Kaggle's flat dogs-vs-cats/train folder "
                "(cat.0.jpg ... dog.1999.jpg), or null to download "
                f"{url}. Received: data.root='{root}', which is neither. Point data.root at "
                "one of those layouts."
            )
    if train_fraction < 1:
        splits["train"] = _keep_fraction(*splits["train"], train_fraction, seed)
        source += f" (train_fraction={train_fraction})"
    return bundle_from_files(
        splits,
        class_names=CATS_DOGS,
        image_size=image_size,
        batch_size=batch_size,
        augment=augment,
        cache=cache,
        on_bad_file=on_bad_file,
        seed=seed,
        source=source,
        check=check,
    )


def _keep_fraction(paths, labels, fraction, seed):
    """A seeded `fraction` of each class's `(paths, labels)`, in their original order."""
    import numpy as np

    rng = np.random.default_rng(seed)
    labels_array = np.asarray(labels)
    keep = []
    for label in np.unique(labels_array):
        index = np.flatnonzero(labels_array == label)
        keep += list(rng.choice(index, max(1, round(len(index) * fraction)), replace=False))
    keep = sorted(keep)
    return [paths[i] for i in keep], [labels[i] for i in keep]


def _check(batch_size, image_size, augment, on_bad_file):
    check_on_bad_file(on_bad_file)
    return check_common(batch_size=batch_size, image_size=image_size, augment=augment)


def _is_filtered(folder):
    """Whether `folder` has non-empty train/ and validation/ folders of cats/ and dogs/."""
    return all(
        images.list_images(Path(folder) / split / name)
        for split in ("train", "validation")
        for name in CATS_DOGS
    )


def _filtered_splits(root, check):
    splits = {"train": _labelled(root / "train", check), "validation": ([], []), "test": ([], [])}
    if all(images.list_images(root / "test" / name) for name in CATS_DOGS):
        splits["validation"] = _labelled(root / "validation", check)
        splits["test"] = _labelled(root / "test", check)
        return splits
    for label, name in enumerate(CATS_DOGS):
        files, _ = check.keep(images.list_images(root / "validation" / name))
        # Alternate sorted files: disjoint halves, balanced per class, same every run.
        for split, half in (("validation", files[0::2]), ("test", files[1::2])):
            splits[split][0].extend(half)
            splits[split][1].extend([label] * len(half))
    return splits


def _labelled(folder, check):
    return images.list_class_folder(folder, CATS_DOGS, check=check)


def _kaggle_folder(root):
    """`root` (or `root/train`) if it holds Kaggle's flat cat.N.jpg / dog.N.jpg files."""
    for folder in (root, root / "train"):
        if folder.is_dir() and any(KAGGLE_FILE.match(p.name) for p in folder.iterdir()):
            return folder
    return None


def _kaggle_splits(root, check):
    splits = {}
    for split, numbers in KAGGLE_SPLITS.items():
        pairs = [
            (root / f"{name}.{i}.jpg", label)
            for label, name in enumerate(("cat", "dog"))
            for i in numbers
        ]
        splits[split] = ([str(p) for p, _ in pairs], [label for _, label in pairs])
    missing = [p for paths, _ in splits.values() for p in paths if not Path(p).is_file()]
    require(
        not missing,
        "Kaggle's dogs-vs-cats/train folder must hold cat.0.jpg ... cat.1999.jpg and dog.0.jpg "
        f"... dog.1999.jpg for the book's split. Received: data.root='{root}', where "
        f"{len(missing)} are missing (first: {Path(missing[0]).name if missing else ''}). "
        "Use the full Kaggle train folder.",
    )
    return {split: check.keep(*pairs) for split, pairs in splits.items()}
