"""A `keras.applications` backbone for DeepDream and style transfer: its layers, and a new
output folder for each call."""

import pytest

from kerasrun.errors import ConfigError


def test_each_call_gets_a_new_output_folder(tmp_path, monkeypatch):
    from kerasrun.vision.backbones import output_folder

    monkeypatch.chdir(tmp_path)
    first, second = output_folder(None, "deepdream"), output_folder(None, "deepdream")
    assert first != second and first.is_dir() and second.is_dir()  # even in the same second
    assert output_folder(str(tmp_path / "mine"), "deepdream") == tmp_path / "mine"


def test_a_backbone_without_the_layers_lists_its_layers():
    from kerasrun.vision.backbones import feature_extractor

    with pytest.raises(ConfigError) as error:
        feature_extractor("VGG16", None, ["mixed2", "block1_conv1"], "layers")
    assert "layers must name layers of VGG16: block1_conv1, block1_conv2," in str(error.value)
    assert "(mixed2 is not one)" in str(error.value)
