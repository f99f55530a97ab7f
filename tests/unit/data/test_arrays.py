"""The datasets held in memory as arrays (digits, MNIST, Fashion-MNIST, CIFAR-10), read
from local files in Keras's own formats: no network."""

import gzip
import hashlib
import pickle
import tarfile

import numpy as np
import pytest

from helpers import collect
from kerasrun.data import build_data
from kerasrun.errors import ConfigError


def fingerprints(images):
    return {hashlib.sha1(np.ascontiguousarray(im).tobytes()).hexdigest() for im in images}


# --- digits and the array datasets -----------------------------------------------------------


def test_digits_batches():
    bundle = build_data("digits", seed=0)
    images, labels = next(iter(bundle.train_dataset))
    assert images.shape == (64, 8, 8, 1) and images.dtype == "float32"
    assert labels.shape == (64,) and labels.dtype == "int32"
    assert 0 <= float(np.min(images)) and float(np.max(images)) <= 255
    assert float(np.max(images)) > 1  # not rescaled: the model does that
    assert bundle.input_shape == (8, 8, 1) and bundle.task == "multiclass"
    assert bundle.class_names == [str(i) for i in range(10)]
    assert bundle.sizes == {"train": 1257, "validation": 270, "test": 270}
    assert len(collect(bundle.validation_dataset)[1]) == len(collect(bundle.test_dataset)[1]) == 270


def test_digits_splits_are_seeded():
    def validation(seed):
        return collect(build_data("digits", seed=seed).validation_dataset)[0]

    first, again, other = validation(1), validation(1), validation(2)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    bundle = build_data("digits", seed=1)
    val, test = collect(bundle.validation_dataset)[0], collect(bundle.test_dataset)[0]
    assert len(fingerprints(val) & fingerprints(test)) < 5  # a few digits are pixel-identical


def test_digits_reshuffles_each_epoch_and_resizes():
    bundle = build_data("digits", image_size=[16, 16], batch_size=32, seed=0)
    first, second = collect(bundle.train_dataset)[1], collect(bundle.train_dataset)[1]
    assert not np.array_equal(first, second)
    assert sorted(first) == sorted(second)
    assert bundle.input_shape == (16, 16, 1)
    assert next(iter(bundle.test_dataset))[0].shape == (32, 16, 16, 1)


def _mnist_like(n_train, n_test, shape=(28, 28)):
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test).astype(np.uint8),
    }


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_mnist_formats_from_a_local_npz(tmp_path, name):
    arrays = _mnist_like(50, 10)
    np.savez(tmp_path / "mnist.npz", **arrays)
    bundle = build_data(name, path=str(tmp_path / "mnist.npz"), batch_size=8, seed=0)
    assert bundle.sizes == {"train": 45, "validation": 5, "test": 10}
    assert bundle.input_shape == (28, 28, 1) and len(bundle.class_names) == 10
    x_test, y_test = collect(bundle.test_dataset)
    assert np.array_equal(x_test[..., 0], arrays["x_test"])  # the official test split, in order
    assert np.array_equal(y_test, arrays["y_test"])
    assert str(tmp_path) in bundle.source


def test_fashion_mnist_from_the_keras_gz_files(tmp_path):
    arrays = _mnist_like(20, 6)
    for stem, key, header in (
        ("train-images-idx3-ubyte", "x_train", 16),
        ("train-labels-idx1-ubyte", "y_train", 8),
        ("t10k-images-idx3-ubyte", "x_test", 16),
        ("t10k-labels-idx1-ubyte", "y_test", 8),
    ):
        with gzip.open(tmp_path / f"{stem}.gz", "wb") as f:
            f.write(bytes(header) + arrays[key].tobytes())
    bundle = build_data("fashion_mnist", path=str(tmp_path), validation_split=0.25, seed=0)
    assert bundle.sizes == {"train": 15, "validation": 5, "test": 6}
    assert bundle.class_names[0] == "T-shirt/top" and bundle.class_names[9] == "Ankle boot"
    assert np.array_equal(collect(bundle.test_dataset)[0][..., 0], arrays["x_test"])


def _cifar_folder(folder, per_batch=4):
    """Tiny `cifar-10-batches-py`: image i of every batch is red 10, green 20, blue 30 + i."""
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        planes = np.zeros((per_batch, 3, 32, 32), np.uint8)
        planes[:, 0], planes[:, 1] = 10, 20
        planes[:, 2] = (30 + np.arange(per_batch))[:, None, None]
        batch = {b"data": planes.reshape(per_batch, 3072), b"labels": list(range(per_batch))}
        (folder / name).write_bytes(pickle.dumps(batch))
    return folder


def test_cifar10_from_the_folder_and_the_archive(tmp_path):
    folder = _cifar_folder(tmp_path / "cifar-10-batches-py")
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz") as archive:
        archive.add(folder, arcname="cifar-10-batches-py")
    for path in (folder, tmp_path / "cifar-10-python.tar.gz"):
        bundle = build_data("cifar10", path=str(path), validation_split=0.2, seed=0)
        assert bundle.sizes == {"train": 16, "validation": 4, "test": 4}
        assert bundle.input_shape == (32, 32, 3) and bundle.class_names[0] == "airplane"
        x_test, y_test = collect(bundle.test_dataset)
        assert x_test[3, 5, 7].tolist() == [10, 20, 33]  # channels last after the transpose
        assert y_test.tolist() == [0, 1, 2, 3]


def test_npz_without_the_keras_keys(tmp_path):
    np.savez(tmp_path / "mine.npz", images=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(ConfigError, match="lacks x_train, y_train, x_test, y_test"):
        build_data("mnist", path=str(tmp_path / "mine.npz"))
