"""The options of `visualize` (conf/visualize.yaml), checked before TensorFlow is imported.

Every user mistake is one line: what is allowed, `Received: key=value`, what to do. Each kind
takes its own keys; a key of another kind is refused with the one to use instead.
"""

import logging
import os
from pathlib import Path

from kerasrun.errors import (
    ConfigError,
    check_int,
    check_number,
    is_number,
    require,
)
from kerasrun.vision import backbones, dream, style

log = logging.getLogger("kerasrun")

KINDS = {
    "activations": "each conv/pool layer's output for `image`, a grid of its channels",
    "filters": "the input pattern each filter of a conv layer responds to most",
    "gradcam": "a Grad-CAM heatmap of the predicted class (or class_index) over `image`",
    "deepdream": "DeepDream (the book's 8.2) of `image` on a pretrained backbone; no run",
    "style_transfer": "`image` in the style of `style_image` (the book's 8.3); no run",
}
# The kinds that take a backbone, not a run, and their default one (the book's).
BACKBONE_KINDS = {"deepdream": "InceptionV3", "style_transfer": "VGG19"}


def check_kind(kind):
    """`kind` if it is one of `KINDS`; else a `ConfigError` listing them."""
    require(
        kind in KINDS,
        f"kind must be one of {', '.join(KINDS)}. Received: kind={kind}. Set e.g. "
        "kind=gradcam image=cat.jpg.",
    )
    return kind


def check_options(kind, config):
    """The keys `kind` uses, checked; keys of another kind are refused with the right one."""
    layers, layer = config["layers"], config["layer"]
    if kind == "gradcam":
        require(
            layers is None,
            "kind=gradcam explains one layer: set layer=<name> (not layers). "
            f"Received: layers={layers}.",
        )
        require(
            layer is None or isinstance(layer, str),
            f"layer must be one layer name. Received: layer={layer}. Set e.g. layer=conv2d_1.",
        )
        class_index = check_int(
            "class_index",
            config["class_index"],
            minimum=0,
            allow_none=True,
            example=1,
            why="a class number, null for the predicted class",
        )
        batch_size = check_int(
            "batch_size", config["batch_size"], example=32, why="frames per Grad-CAM pass"
        )
        return dict(layer=layer, class_index=class_index, batch_size=batch_size)
    require(
        layer is None,
        f"layer is for kind=gradcam; kind={kind} takes layers=[name,...]. "
        f"Received: layer={layer}. Set layers=[{layer}].",
    )
    layers = [layers] if isinstance(layers, str) else layers
    require(
        layers is None
        or isinstance(layers, list)
        and layers
        and all(isinstance(n, str) for n in layers),
        "layers must be a list of layer names, or null for the default layers. "
        f"Received: layers={layers}. Set e.g. layers=[conv2d,max_pooling2d].",
    )
    if kind == "activations":
        return dict(layers=layers)
    steps = check_int("steps", config["steps"], example=40, why="gradient-ascent steps")
    max_filters = check_int(
        "max_filters", config["max_filters"], example=16, why="the first N filters of each layer"
    )
    step_size = check_number(
        "step_size",
        config["step_size"],
        above=0,
        example=1.0,
        why="pixel levels per step; the book's is 1.0",
    )
    return dict(layers=layers, steps=steps, step_size=float(step_size), max_filters=max_filters)


def check_frames(kind, config):
    """The folder of video frames for kind=gradcam (`frames=`, or `image=` a folder), or None."""
    frames, image = config["frames"], config["image"]
    require(
        frames is None or kind == "gradcam",
        f"frames is for kind=gradcam (a heatmap per video frame). Received: kind={kind}, "
        f"frames={frames}. Set kind=gradcam, or remove frames=.",
    )
    if frames is None and kind == "gradcam" and image is not None:
        if Path(os.path.expanduser(str(image))).is_dir():
            frames = image
    if frames is None:
        return None
    require(
        image is None or image == frames,
        f"kind=gradcam takes image= (one file) or frames= (a folder), not both. Received: "
        f"image={image}, frames={frames}. Remove one.",
    )
    path = Path(os.path.expanduser(str(frames)))
    require(
        path.is_dir(),
        f"frames must be a folder of video frames (jpg/png). Received: frames={frames}, which "
        f"{'is a file: set image= for one image' if path.is_file() else 'does not exist'}.",
    )
    return path


def image_input_shape(run):
    """The run's `(height, width, channels)`; a `ConfigError` for runs that are not on images."""
    info = run.config.get("data_info") or {}
    shape = list(info.get("input_shape") or [])
    require(
        len(shape) == 3 and info.get("task") in ("binary", "multiclass"),
        "visualize needs a run that classifies images (data_info.input_shape [height, width, "
        f"channels], task binary or multiclass). Received: run={run.path}, with input_shape "
        f"{shape} and task {info.get('task')}. Choose a run trained on image data.",
    )
    return tuple(int(d) for d in shape)


def check_image(image, kind, key="image"):
    """The path of `image`, checked to be readable by Pillow; `None` for kind=filters."""
    if kind == "filters":
        if image is not None:
            log.info("kind=filters starts from noise: image is not used.")
        return None
    require(
        image is not None,
        f"kind={kind} needs an image. Received: image=null. Set image=path/to/cat.jpg.",
    )
    path = Path(os.path.expanduser(str(image)))
    require(
        path.is_file(),
        f"{key} must be an image file. Received: {key}={image}, which "
        f"{'is a folder' if path.is_dir() else 'does not exist'}. Fix the path.",
    )
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            opened.load()
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise ConfigError(
            f"{key} must be an image file Pillow can read (JPEG, PNG, ...). Received: "
            f"{key}={image} ({type(e).__name__}: {e}). Choose another file."
        ) from None
    return path


def check_backbone_options(kind, config):
    """The keyword arguments of `deepdream` or `style_transfer`, checked before TensorFlow."""
    check_frames(kind, config)
    for key in ("layer", "class_index"):
        require(
            config[key] is None,
            f"{key} is for the kinds that look at a run; kind={kind} takes a backbone. "
            f"Received: {key}={config[key]}. Remove {key}=.",
        )
    if config["run"] is not None:
        log.info(f"kind={kind} uses a pretrained backbone, not a run: run= is not used.")
    image = check_image(config["image"], kind)
    backbone = backbones.check_backbone(config["backbone"] or BACKBONE_KINDS[kind])
    weights = backbones.check_weights(config["weights"])
    height = check_int(
        "height",
        config["height"],
        allow_none=True,
        example=400,
        why="the image's height in pixels, null for the kind's default",
    )
    check_int(
        "iterations", config["iterations"], example=20, why="steps per octave, or L-BFGS rounds"
    )
    options = dict(image=image, backbone=backbone, weights=weights, iterations=config["iterations"])
    if kind == "deepdream":
        layers = config["layers"]
        layers = dream.LAYERS if layers is None else layers
        require(
            isinstance(layers, dict)
            and layers
            and all(isinstance(k, str) and is_number(v) for k, v in layers.items()),
            "layers must map layer names to their weight in the loss for kind=deepdream. "
            f"Received: layers={config['layers']}. Set e.g. layers={{mixed2:0.2,mixed3:3.0}} "
            "(null = the book's mixed2 0.2, mixed3 3.0, mixed4 2.0, mixed5 1.5).",
        )
        check_int("octaves", config["octaves"], example=3, why="scales, the smallest first")
        check_number(
            "octave_scale", config["octave_scale"], above=1, example=1.4, why="each octave's zoom"
        )
        check_number("step", config["step"], above=0, example=0.01, why="in [-1, 1] image units")
        check_number(
            "max_loss",
            config["max_loss"],
            above=0,
            allow_none=True,
            example=10.0,
            why="an octave stops above it, null: never",
        )
        dream.check_sizes(
            backbones.image_size(image, height),
            config["octaves"],
            config["octave_scale"],
            backbones.min_size(backbone),
        )
        return dict(
            options,
            layers=layers,
            octaves=config["octaves"],
            octave_scale=float(config["octave_scale"]),
            step=float(config["step"]),
            max_loss=None if config["max_loss"] is None else float(config["max_loss"]),
            height=height,
        )
    require(
        config["layers"] is None,
        "kind=style_transfer names its layers with content_layer= and style_layers=. "
        f"Received: layers={config['layers']}. Remove layers=.",
    )
    style_image = config["style_image"]
    require(
        style_image is not None,
        "kind=style_transfer needs a style_image (a painting). Received: style_image=null. "
        "Set style_image=path/to/starry_night.jpg.",
    )
    style_image = check_image(style_image, kind, key="style_image")
    content_layer = config["content_layer"] or style.CONTENT_LAYER
    style_layers = config["style_layers"] or style.STYLE_LAYERS
    style_layers = [style_layers] if isinstance(style_layers, str) else style_layers
    require(
        isinstance(content_layer, str)
        and isinstance(style_layers, list)
        and all(isinstance(n, str) for n in style_layers),
        "content_layer must be a layer name and style_layers a list of them. Received: "
        f"content_layer={content_layer}, style_layers={style_layers}. Set e.g. "
        "content_layer=block5_conv2 style_layers=[block1_conv1,block2_conv1].",
    )
    height = 400 if height is None else height
    style.check_size(backbones.image_size(image, height), backbone, height)
    book = {"content_weight": 0.025, "style_weight": 1.0, "total_variation_weight": 1e-4}
    for key, example in book.items():
        check_number(key, config[key], minimum=0, example=example, why="a weight of the loss")
    return dict(
        options,
        style_image=style_image,
        height=height,
        content_layer=content_layer,
        style_layers=style_layers,
        content_weight=float(config["content_weight"]),
        style_weight=float(config["style_weight"]),
        total_variation_weight=float(config["total_variation_weight"]),
    )
