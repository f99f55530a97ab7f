"""Image folders (`image_folder` and the book's `cats_dogs`) on real files through real
tf.data: no mocks, no network.

Images are written into tmp_path; the download is served by an http.server on 127.0.0.1.
"""

import hashlib
import io
import socket
import zipfile

import numpy as np
import pytest

from helpers import CATS_AND_DOGS, Server, collect, make_class_folder
from kerasrun.data import build_data
from kerasrun.errors import ConfigError


def write_numbered(path, number, label, size=4):
    """A PNG (whatever the suffix) whose pixels encode `number` and `label` exactly."""
    from PIL import Image

    pixel = (number // 256, number % 256, 255 * label)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), pixel).save(path, format="PNG")


def numbers(images):
    """The numbers `write_numbered` encoded, back from a batch of float images."""
    return (images[:, 0, 0, 0] * 256 + images[:, 0, 0, 1]).astype(int).tolist()


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
        assert np.array_equal(reddish, y == 0)  # make_class_folder: cats are red, dogs blue


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
    server = Server(site)
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
