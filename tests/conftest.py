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


@pytest.fixture(scope="session")
def trained_image_run(tmp_path_factory):
    """A real `train` run on reddish "cats" and bluish "dogs" (32×32 PNG and JPEG files).

    Shared by the tests of evaluate / predict / visualize / export-model: train once (about
    15 s), read many times. Returns `(run_dir, photos_root)`; treat both as read-only (copy
    the run with shutil.copytree before writing into it).
    """
    import subprocess
    import sys

    cwd = tmp_path_factory.mktemp("trained")
    photos = make_class_folder(cwd / "photos", per_class=30, size=(40, 36))
    make_class_folder(photos, per_class=10, size=(50, 30), suffix=".png", start=100)
    train = str(Path(sys.executable).with_name("train"))
    result = subprocess.run(
        [
            train,
            "data=image_folder",
            f"data.root={photos}",
            "data.image_size=[32,32]",
            "data.batch_size=8",
            "data.validation_split=0.2",
            "data.test_split=0.2",
            "trainer.epochs=4",
            "optimizer=adam",
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    (run_dir,) = (cwd / "outputs" / "runs").iterdir()
    return run_dir, photos
