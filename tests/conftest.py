"""Shared fixtures: tiny real data folders (written with helpers.py), a real trained run, and
conf/visualize.yaml composed in process. The writers themselves are in helpers.py."""

import os
from pathlib import Path

import pytest

from helpers import make_class_folder, write_aclimdb, write_glove

# Quiet TensorFlow's C++ logs in the test process and in the `train` subprocesses.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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


@pytest.fixture
def aclimdb(tmp_path):
    """A tiny aclImdb tree (`helpers.write_aclimdb`): 40 training and 20 test reviews a class."""
    return write_aclimdb(tmp_path / "data")


@pytest.fixture
def glove(tmp_path):
    """A tiny GloVe file of `helpers.GLOVE`'s 4-d vectors."""
    return write_glove(tmp_path / "glove.4d.txt")


@pytest.fixture
def visualize_config(tmp_path, monkeypatch):
    """`config(*overrides)`: conf/visualize.yaml composed with Hydra, as plain dicts; the
    current directory is `tmp_path` (where outputs/visualize/ goes)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from kerasrun.config.compose import conf_dir, plain

    monkeypatch.chdir(tmp_path)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        yield lambda *overrides: plain(compose("visualize", overrides=list(overrides)))
    GlobalHydra.instance().clear()
