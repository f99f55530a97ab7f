"""The data layer on real files through real tf.data: no mocks, no network.

Images are written into tmp_path; the download is served by an http.server on 127.0.0.1.
"""

import functools
import gzip
import hashlib
import http.server
import inspect
import io
import pickle
import socket
import subprocess
import sys
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import CATS_AND_DOGS, make_class_folder
from kerasrun.config.compose import conf_dir
from kerasrun.data import DATASETS, build_data
from kerasrun.errors import ConfigError

CONF_DATA = Path(__file__).resolve().parents[1] / "conf" / "data"


def collect(ds):
    """All `(images, labels)` of a batched dataset as two numpy arrays."""
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds], strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def write_numbered(path, number, label, size=4):
    """A PNG (whatever the suffix) whose pixels encode `number` and `label` exactly."""
    from PIL import Image

    pixel = (number // 256, number % 256, 255 * label)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), pixel).save(path, format="PNG")


def numbers(images):
    """The numbers `write_numbered` encoded, back from a batch of float images."""
    return (images[:, 0, 0, 0] * 256 + images[:, 0, 0, 1]).astype(int).tolist()


def fingerprints(images):
    return {hashlib.sha1(np.ascontiguousarray(im).tobytes()).hexdigest() for im in images}


# --- the registry and the YAML files ---------------------------------------------------------


def test_import_does_not_load_tensorflow():
    code = (
        "import sys, kerasrun.data; "
        "heavy = [m for m in ('tensorflow', 'keras') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_yaml_keys_are_builder_arguments(name):
    from omegaconf import OmegaConf

    path = CONF_DATA / f"{name}.yaml"
    cfg = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    assert cfg.pop("name") == name == path.stem
    params = inspect.signature(DATASETS[name]).parameters
    assert set(cfg) <= set(params), set(cfg) - set(params)
    assert "seed" in params and "seed" not in cfg  # train.py passes the top-level seed
    assert all(p.kind is p.KEYWORD_ONLY for p in params.values())
    if name in YAML_STATES_EVERYTHING:  # every argument in the YAML, with its default
        assert set(cfg) == set(params) - {"seed"}
        assert all(cfg[k] == params[k].default for k in cfg)


# The text and time-series builders' YAML files list every argument with its default.
YAML_STATES_EVERYTHING = (
    "imdb",
    "reuters",
    "boston_housing",
    "imdb_raw",
    "jena_climate",
    "csv_timeseries",
    "text_file",
)


def test_every_builder_has_a_yaml():
    assert sorted(p.stem for p in CONF_DATA.glob("*.yaml")) == sorted(DATASETS)


def _defaults_exist():
    """Whether every default option of conf/train.yaml exists yet (other groups are WIP)."""
    from omegaconf import OmegaConf

    try:
        root = conf_dir()
    except FileNotFoundError:
        return False
    for entry in OmegaConf.to_container(OmegaConf.load(root / "train.yaml")).get("defaults", []):
        if isinstance(entry, str) or entry is None:
            continue
        for group, option in entry.items():
            options = option if isinstance(option, list) else [option]
            if group.startswith(("optional ", "override ")) or group == "hydra":
                continue
            if not all((root / group / f"{o}.yaml").is_file() for o in options if o):
                return False
    return True


@pytest.mark.skipif(not _defaults_exist(), reason="conf/train.yaml's defaults are incomplete")
@pytest.mark.parametrize("name", sorted(DATASETS))
def test_each_data_option_composes(name):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from kerasrun.config.compose import plain

    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            cfg = compose(config_name="train", overrides=[f"data={name}"])
    finally:
        GlobalHydra.instance().clear()
    data = plain(cfg.data)
    assert data.pop("name") == name
    assert set(data) <= set(inspect.signature(DATASETS[name]).parameters)
    if name == "digits":  # the only one that needs neither a download nor a folder
        bundle = build_data(name, seed=cfg.seed, **data)
        assert bundle.sizes["train"] > 0


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


def test_augmentation_changes_training_images_only():
    aug = {"flip": "horizontal", "rotation": 0.111, "zoom": 0.2, "translation": 0.2}
    plain_bundle = build_data("digits", seed=3)
    augmented = build_data("digits", augment=aug, seed=3)
    (x0, y0), (x1, y1) = collect(plain_bundle.train_dataset), collect(augmented.train_dataset)
    assert np.array_equal(y0, y1)  # same seeded shuffle: the same examples, in the same order
    assert not np.allclose(x0, x1)
    assert 0 <= x1.min() and x1.max() <= 255 and x1.dtype == np.float32
    for split in ("validation_dataset", "test_dataset"):
        a, b = collect(getattr(plain_bundle, split)), collect(getattr(augmented, split))
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_augmentation_is_seeded():
    aug = {"rotation": 0.1, "contrast": 0.3, "shear": [0.1, 0.2]}
    first = collect(build_data("digits", augment=aug, seed=5).train_dataset)[0]
    again = collect(build_data("digits", augment=aug, seed=5).train_dataset)[0]
    assert np.array_equal(first, again)


def test_images_stay_float32_under_mixed_precision():
    import keras

    keras.config.set_dtype_policy("mixed_float16")  # train.py sets it before building data
    try:
        bundle = build_data("digits", augment={"rotation": 0.1, "contrast": 0.2}, seed=0)
        images, _ = next(iter(bundle.train_dataset))
    finally:
        keras.config.set_dtype_policy("float32")
    assert images.dtype == "float32"


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


# --- image folders ---------------------------------------------------------------------------


def test_image_folder_batches_and_labels(tmp_path):
    root = make_class_folder(tmp_path / "images", per_class=10, size=(30, 40))
    bundle = build_data("image_folder", root=str(root), image_size=[20, 24], batch_size=4, seed=0)
    assert bundle.class_names == ["cats", "dogs"] and bundle.task == "binary"
    assert bundle.sizes == {"train": 16, "validation": 4, "test": 0}
    assert bundle.test_dataset is None and bundle.input_shape == (20, 24, 3)
    images, labels = next(iter(bundle.train_dataset))
    assert images.shape == (4, 20, 24, 3) and images.dtype == "float32"
    assert labels.shape == (4,) and labels.dtype == "int32"
    for ds in (bundle.train_dataset, bundle.validation_dataset):
        x, y = collect(ds)
        reddish = x[..., 0].mean(axis=(1, 2)) > x[..., 2].mean(axis=(1, 2))
        assert np.array_equal(reddish, y == 0)  # conftest: cats are red, dogs blue


def test_image_folder_file_types(tmp_path):
    root = tmp_path / "images"
    for label, name in enumerate(("a", "b", "c")):
        for i, suffix in enumerate((".jpg", ".JPEG", ".png", ".bmp", ".gif")):
            write_numbered(root / name / f"{i}{suffix}", 10 * label + i, 0)
        (root / name / "notes.txt").write_text("not an image")
        write_numbered(root / name / ".hidden.png", 99, 0)
    bundle = build_data("image_folder", root=str(root), image_size=[4, 4], validation_split=0.0)
    assert bundle.task == "multiclass" and bundle.class_names == ["a", "b", "c"]
    assert bundle.sizes["train"] == 15 and bundle.validation_dataset is None
    x, y = collect(bundle.train_dataset)
    assert sorted(numbers(x)) == [10 * label + i for label in range(3) for i in range(5)]
    assert np.array_equal(np.array(numbers(x)) // 10, y)


def test_image_folder_splits_are_seeded_and_disjoint(tmp_path):
    root = tmp_path / "images"
    for i in range(40):
        write_numbered(root / ("cats", "dogs")[i % 2] / f"{i}.png", i, i % 2)

    def split_numbers(seed):
        bundle = build_data(
            "image_folder",
            root=str(root),
            image_size=[4, 4],
            validation_split=0.25,
            test_split=0.25,
            seed=seed,
        )
        assert bundle.sizes == {"train": 20, "validation": 10, "test": 10}
        return [
            sorted(numbers(collect(ds)[0]))
            for ds in (bundle.train_dataset, bundle.validation_dataset, bundle.test_dataset)
        ]

    first = split_numbers(0)
    assert sorted(sum(first, [])) == list(range(40))  # disjoint and complete
    assert split_numbers(0) == first and split_numbers(1) != first


def test_image_folder_with_split_folders(tmp_path):
    make_class_folder(tmp_path / "train", per_class=6)
    make_class_folder(tmp_path / "val", per_class=2, start=100)
    make_class_folder(tmp_path / "test", per_class=3, start=200)
    bundle = build_data("image_folder", root=str(tmp_path), image_size=[8, 8], seed=0)
    assert bundle.sizes == {"train": 12, "validation": 4, "test": 6}
    make_class_folder(tmp_path / "test", classes=("cats", "dogs", "birds"), per_class=1)
    with pytest.raises(ConfigError, match="test classes") as error:
        build_data("image_folder", root=str(tmp_path), image_size=[8, 8], seed=0)
    assert "data.root" in str(error.value)


@pytest.mark.parametrize("on_bad_file", ["skip", "error"])
def test_a_corrupt_file(tmp_path, on_bad_file):
    root = make_class_folder(tmp_path / "images", per_class=5)
    broken = root / "cats" / "cat.broken.jpg"
    broken.write_bytes(b"this is not a JPEG")
    kwargs = dict(root=str(root), image_size=[8, 8], validation_split=0.0, seed=0)
    if on_bad_file == "error":  # found when the data is built, not mid-epoch
        with pytest.raises(ConfigError, match=r"cat\.broken\.jpg: not an image"):
            build_data("image_folder", on_bad_file=on_bad_file, **kwargs)
        return
    bundle = build_data("image_folder", on_bad_file=on_bad_file, **kwargs)
    assert bundle.sizes["train"] == 10  # the images that will really be used
    assert bundle.bad_files[0][0] == str(broken)
    for _ in range(2):  # the cache holds the 10 good images
        assert len(collect(bundle.train_dataset)[1]) == 10


# --- cats_dogs -------------------------------------------------------------------------------


def test_cats_dogs_filtered_layout(tmp_path):
    root = tmp_path / "cats_and_dogs_filtered"
    for label, name in enumerate(("cats", "dogs")):
        for i in range(12):
            write_numbered(root / "train" / name / f"{name[:-1]}.{i}.jpg", i, label)
        for i in range(2000, 2010):
            write_numbered(root / "validation" / name / f"{name[:-1]}.{i}.jpg", i, label)
    bundle = build_data("cats_dogs", root=str(root), image_size=[4, 4], batch_size=8, seed=0)
    assert bundle.class_names == ["cats", "dogs"] and bundle.task == "binary"
    assert bundle.sizes == {"train": 24, "validation": 10, "test": 10}
    assert bundle.source.startswith("cats_and_dogs_filtered folder:")
    val, test = collect(bundle.validation_dataset), collect(bundle.test_dataset)
    assert sorted(val[1]) == [0] * 5 + [1] * 5 and sorted(test[1]) == [0] * 5 + [1] * 5
    pairs = [set(zip(numbers(x), y.tolist(), strict=True)) for x, y in (val, test)]
    assert not pairs[0] & pairs[1]
    assert pairs[0] | pairs[1] == {(i, label) for i in range(2000, 2010) for label in (0, 1)}
    # Labels follow the folders: write_numbered puts 255 * label in the blue channel.
    x, y = collect(bundle.train_dataset)
    assert np.array_equal(x[:, 0, 0, 2] == 255, y == 1)


def test_cats_dogs_kaggle_layout(kaggle_train):
    for label, name in enumerate(("cat", "dog")):
        for i in range(2005):  # 2000-2004 are beyond the book's split
            write_numbered(kaggle_train / f"{name}.{i}.jpg", i, label, size=2)
    bundle = build_data("cats_dogs", root=str(kaggle_train.parent), image_size=[2, 2], seed=0)
    assert bundle.sizes == {"train": 2000, "validation": 1000, "test": 1000}
    assert bundle.source == f"kaggle dogs-vs-cats folder: {kaggle_train}"
    expected = {"train": range(0, 1000), "validation": range(1000, 1500), "test": range(1500, 2000)}
    for split, wanted in expected.items():
        x, y = collect(getattr(bundle, f"{split}_dataset"))
        assert sorted(numbers(x)) == sorted([*wanted, *wanted]), split
        assert np.array_equal(x[:, 0, 0, 2] == 255, y == 1) and y.sum() == len(wanted)
    (kaggle_train / "dog.1234.jpg").unlink()
    with pytest.raises(ConfigError, match=r"dog\.1234\.jpg") as error:
        build_data("cats_dogs", root=str(kaggle_train), image_size=[2, 2])
    assert "data.root" in str(error.value)


@pytest.mark.skipif(not CATS_AND_DOGS.is_dir(), reason="shared cats_and_dogs_filtered is absent")
def test_cats_dogs_on_real_photos(tmp_path):
    # The whole real folder: the split sizes of the book (listing only, no decoding).
    bundle = build_data("cats_dogs", root=str(CATS_AND_DOGS), seed=0)
    assert bundle.sizes == {"train": 2000, "validation": 500, "test": 500}
    # A slice of symlinks in the same layout, decoded at the book's 150x150.
    root = tmp_path / "cats_and_dogs_filtered"
    for split, count in (("train", 20), ("validation", 10)):
        for name in ("cats", "dogs"):
            (root / split / name).mkdir(parents=True)
            for src in sorted((CATS_AND_DOGS / split / name).iterdir())[:count]:
                (root / split / name / src.name).symlink_to(src)
    bundle = build_data("cats_dogs", root=str(root), augment={"flip": "horizontal"}, seed=0)
    assert bundle.sizes == {"train": 40, "validation": 10, "test": 10}
    images, labels = next(iter(bundle.train_dataset))
    assert images.shape == (32, 150, 150, 3) and images.dtype == "float32"
    assert labels.dtype == "int32" and set(labels.numpy()) <= {0, 1}
    x, y = collect(bundle.test_dataset)
    assert x.shape == (10, 150, 150, 3) and y.tolist() == [0] * 5 + [1] * 5
    assert 0 <= x.min() and x.max() <= 255 and x.std() > 10  # real photos, not blank


class _Server:
    """http.server in a thread serving one folder on 127.0.0.1; counts the requests."""

    def __init__(self, folder):
        handler = functools.partial(_QuietHandler, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.requests = 0
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        self.server.requests += 1
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def served_zip(tmp_path, cats_dogs_filtered, monkeypatch):
    """A `cats_and_dogs_filtered.zip` of the tiny fixture, served over HTTP on 127.0.0.1."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")  # never through a proxy
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    site = tmp_path / "site"
    site.mkdir()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(cats_dogs_filtered.rglob("*.jpg")):
            archive.write(path, path.relative_to(cats_dogs_filtered.parent))
    (site / "cats_and_dogs_filtered.zip").write_bytes(buffer.getvalue())
    (site / "not_a_dataset.zip").write_bytes(_zip_of({"readme.txt": b"hello"}))
    server = _Server(site)
    server.size = len(buffer.getvalue())
    yield server, hashlib.sha256(buffer.getvalue()).hexdigest()
    server.close()


def _zip_of(files):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_cats_dogs_download(tmp_path, served_zip):
    server, sha256 = served_zip
    url = f"{server.url}/cats_and_dogs_filtered.zip"
    cache = tmp_path / "keras_home"
    for _ in range(2):  # the second build uses the cached zip and extraction
        bundle = build_data(
            "cats_dogs",
            url=url,
            sha256=sha256,
            size=server.size,
            cache_dir=str(cache),
            image_size=[8, 8],
            seed=0,
        )
        assert bundle.sizes == {"train": 32, "validation": 8, "test": 8}
    assert server.httpd.requests == 1
    extracted = cache / "datasets" / "cats_and_dogs_filtered_extracted" / "cats_and_dogs_filtered"
    assert bundle.source == f"download: {url} -> {extracted}"
    assert (cache / "datasets" / "cats_and_dogs_filtered.zip").is_file()
    assert len(collect(bundle.validation_dataset)[1]) == 8


def test_cats_dogs_train_fraction_keeps_a_seeded_quarter_of_each_class(cats_dogs_filtered):
    quarter = build_data(
        "cats_dogs", root=str(cats_dogs_filtered), image_size=[8, 8], train_fraction=0.25, seed=3
    )
    assert quarter.sizes == {"train": 8, "validation": 8, "test": 8}
    labels = collect(quarter.train_dataset)[1]
    assert sorted(labels.tolist()) == [0] * 4 + [1] * 4
    with pytest.raises(ConfigError, match="data.train_fraction"):
        build_data("cats_dogs", root=str(cats_dogs_filtered), train_fraction=0)


def test_a_partial_download_in_the_cache_is_downloaded_again(tmp_path, served_zip):
    server, _ = served_zip
    cache = tmp_path / "keras_home"
    (cache / "datasets").mkdir(parents=True)
    (cache / "datasets" / "cats_and_dogs_filtered.zip").write_bytes(b"PK\x03\x04 cut short")
    url = f"{server.url}/cats_and_dogs_filtered.zip"
    bundle = build_data(
        "cats_dogs", url=url, size=server.size, cache_dir=str(cache), image_size=[8, 8]
    )
    assert bundle.sizes["train"] == 32 and server.httpd.requests == 1


def test_cats_dogs_download_errors(tmp_path, served_zip):
    server, sha256 = served_zip
    cache = tmp_path / "keras_home"
    url = f"{server.url}/cats_and_dogs_filtered.zip"
    with pytest.raises(ConfigError, match="data.size") as error:
        build_data("cats_dogs", url=url, size=server.size + 1, cache_dir=str(cache))
    assert f"{server.size:,} bytes" in str(error.value)
    assert not (cache / "datasets" / "cats_and_dogs_filtered.zip").exists()

    with pytest.raises(ConfigError, match="data.sha256") as error:
        build_data("cats_dogs", url=url, sha256="0" * 64, size=None, cache_dir=str(cache))
    assert sha256 in str(error.value)  # tells the actual hash
    assert not (cache / "datasets" / "cats_and_dogs_filtered.zip").exists()

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = f"http://127.0.0.1:{port}/cats_and_dogs_filtered.zip"
    with pytest.raises(ConfigError) as error:
        build_data("cats_dogs", url=dead, size=None, cache_dir=str(cache))
    message = str(error.value)
    assert dead in message and "data.root=" in message
    assert str(cache / "datasets" / "cats_and_dogs_filtered.zip") in message

    with pytest.raises(ConfigError, match="cats_and_dogs_filtered layout"):
        build_data(
            "cats_dogs", url=f"{server.url}/not_a_dataset.zip", size=None, cache_dir=str(cache)
        )


# --- config errors ---------------------------------------------------------------------------


def _bad_roots(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    one_class = make_class_folder(tmp_path / "one", classes=("cats",), per_class=2)
    no_images = make_class_folder(tmp_path / "no_images", per_class=2)
    for f in (no_images / "dogs").iterdir():
        f.unlink()
    return {"missing": tmp_path / "nope", "empty": empty, "one": one_class, "none": no_images}


@pytest.mark.parametrize(
    "name, kwargs, expected",
    [
        ("digits", {"batch_size": 0}, "data.batch_size=0"),
        ("digits", {"batch_size": 2.5}, "data.batch_size=2.5"),
        ("digits", {"image_size": [8]}, "data.image_size=[8]"),
        ("digits", {"validation_split": 1.5}, "data.validation_split=1.5"),
        ("digits", {"validation_split": 0.6, "test_split": 0.5}, "data.test_split=0.5"),
        ("digits", {"augment": {"blur": 1}}, "Allowed keys: flip, rotation"),
        ("digits", {"augment": {"flip": "diagonal"}}, "data.augment.flip='diagonal'"),
        ("digits", {"augment": {"rotation": -1}}, "data.augment.rotation=-1"),
        ("digits", {"augment": "yes"}, "data.augment='yes'"),
        ("digits", {"nonsense": 1}, "data.nonsense"),
        ("mnist", {"path": "/nowhere/mnist.npz"}, "data.path='/nowhere/mnist.npz'"),
        ("cifar10", {"path": "/nowhere/cifar"}, "data.path='/nowhere/cifar'"),
        ("image_folder", {}, "data.root=None"),
        ("image_folder", {"root": "missing"}, "data.root="),
        ("image_folder", {"root": "empty"}, "at least 2 class sub-folders"),
        ("image_folder", {"root": "one"}, "with 1 (cats)"),
        ("image_folder", {"root": "none"}, "'dogs/' holds none"),
        ("image_folder", {"root": "empty", "image_size": [0, 9]}, "data.image_size"),
        ("image_folder", {"root": "empty", "on_bad_file": "ignore"}, "data.on_bad_file='ignore'"),
        ("cats_dogs", {"root": "missing"}, "data.root="),
        ("cats_dogs", {"root": "one"}, "Kaggle's flat dogs-vs-cats/train"),
    ],
)
def test_bad_config_is_one_config_error(tmp_path, name, kwargs, expected):
    roots = _bad_roots(tmp_path)
    if "root" in kwargs:
        kwargs = {**kwargs, "root": str(roots[kwargs["root"]])}
    with pytest.raises(ConfigError) as error:
        build_data(name, seed=0, **kwargs)
    message = str(error.value)
    assert expected in message and "\n" not in message
    assert "Received:" in message


def test_npz_without_the_keras_keys(tmp_path):
    np.savez(tmp_path / "mine.npz", images=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(ConfigError, match="lacks x_train, y_train, x_test, y_test"):
        build_data("mnist", path=str(tmp_path / "mine.npz"))
