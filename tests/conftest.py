"""Shared fixtures: tiny real image folders (JPEG and PNG files written with Pillow)."""

import os
from pathlib import Path

import numpy as np
import pytest

# Quiet TensorFlow's C++ logs in the test process and in the `train` subprocesses.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
CATS_AND_DOGS = SHARED_DATA / "cats_and_dogs_filtered"


def write_image(path, label, size=(24, 20), seed=0):
    """Writes one real image file whose colour depends on `label` (a separable problem).

    Label 0 ("cats") is reddish, label 1 ("dogs") bluish, with noise so no two files are equal.
    The format follows the suffix: .jpg/.jpeg → JPEG, .png → PNG.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    h, w = size
    base = np.array([200, 40, 40]) if label == 0 else np.array([40, 40, 200])
    pixels = np.clip(base + rng.normal(0, 25, size=(h, w, 3)), 0, 255).astype("uint8")
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def make_class_folder(
    root, classes=("cats", "dogs"), per_class=12, size=(24, 20), suffix=".jpg", start=0
):
    """`root/<class>/<class>.<i><suffix>` for each class; returns `root`."""
    for label, name in enumerate(classes):
        for i in range(start, start + per_class):
            write_image(
                Path(root) / name / f"{name[:-1]}.{i}{suffix}",
                label,
                size,
                seed=hash((name, i)) % 2**32,
            )
    return Path(root)


@pytest.fixture
def cats_dogs_filtered(tmp_path):
    """A tiny `cats_and_dogs_filtered` layout: train/ and validation/ of cats/ and dogs/."""
    root = tmp_path / "cats_and_dogs_filtered"
    make_class_folder(root / "train", per_class=16)
    make_class_folder(root / "validation", per_class=8, start=2000)
    return root


@pytest.fixture
def kaggle_train(tmp_path):
    """An empty Kaggle-style `dogs-vs-cats/train` folder; the test writes cat.N.jpg / dog.N.jpg."""
    root = tmp_path / "dogs-vs-cats" / "train"
    root.mkdir(parents=True)
    return root
