"""The keys every data builder shares: a bad value is one `ConfigError` line with `Received:`."""

import pytest

from helpers import make_class_folder
from kerasrun.data import build_data
from kerasrun.errors import ConfigError

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
