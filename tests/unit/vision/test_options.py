"""The options of DeepDream and style transfer (conf/visualize.yaml composed with Hydra):
each mistake is a `ConfigError` that says what to set."""

import re

import pytest

from helpers import photo
from kerasrun.errors import ConfigError


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["kind=deepdream"], "kind=deepdream needs an image"),
        (["kind=style_transfer", "image=p.jpg"], "kind=style_transfer needs a style_image"),
        (
            ["kind=deepdream", "image=p.jpg", "backbone=AlexNet"],
            "Unknown backbone. Available: VGG16",
        ),
        (["kind=deepdream", "image=p.jpg", "layers=[mixed3]"], "layers must map layer names"),
        (["kind=deepdream", "image=p.jpg", "octaves=4"], "shrink the 90x90 image to 32x32"),
        (["kind=deepdream", "image=p.jpg", "weights=no.h5"], "`weights` must be 'imagenet'"),
        (["kind=deepdream", "image=p.jpg", "frames=."], "frames is for kind=gradcam"),
    ],
)
def test_option_mistakes_are_config_errors(visualize_config, tmp_path, overrides, message):
    from kerasrun.vision.options import check_backbone_options

    photo(tmp_path / "p.jpg", (90, 90))
    config = visualize_config(*overrides)
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_backbone_options(config["kind"], config)
