"""`predict backbone=`: ImageNet's preprocessing per backbone, and its class index read
from Keras's cache."""

import pytest

from kerasrun.errors import ConfigError
from kerasrun.inference.imagenet import PREPROCESS_MODULES, imagenet_class_names


def test_every_backbone_has_its_own_preprocess_input():
    import keras

    from kerasrun.models.pretrained import BACKBONES

    assert set(PREPROCESS_MODULES) == set(BACKBONES)
    for key, module in PREPROCESS_MODULES.items():
        assert callable(getattr(keras.applications, module).preprocess_input), key


def test_a_broken_class_index_is_a_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "models" / "imagenet_class_index.json"
    path.parent.mkdir()
    path.write_text('{"0": ["n01440764", "tench"]}')  # 1 class, not 1,000
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(ConfigError, match="must be Keras's ImageNet class index") as error:
        imagenet_class_names()
    assert str(path) in str(error.value)


def test_the_class_index_offline_is_one_line_and_a_bug_keeps_its_traceback(tmp_path, monkeypatch):
    import socket

    import keras

    from kerasrun.inference import imagenet

    with socket.socket() as s:  # a port nothing listens on: the connection is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setattr(imagenet, "CLASS_INDEX_URL", f"http://127.0.0.1:{port}/index.json")
    with pytest.raises(ConfigError, match="could not be downloaded") as error:
        imagenet_class_names()
    assert "\n" not in str(error.value) and "Connection refused" in str(error.value)

    def broken(*args, **kwargs):
        raise TypeError("a bug in the download code")

    monkeypatch.setattr(keras.utils, "get_file", broken)
    with pytest.raises(TypeError, match="a bug in the download code"):
        imagenet_class_names()
