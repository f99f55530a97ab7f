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
