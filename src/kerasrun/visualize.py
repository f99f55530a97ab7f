"""`visualize`: what a finished run's convnet sees, the book's 5.4, as one command.

visualize run=<run> kind=activations image=cat.jpg   # 5.4.1: each conv/pool layer's channels
visualize run=<run> kind=filters                     # 5.4.2: what each filter responds to most
visualize run=<run> kind=gradcam image=cat.jpg       # 5.4.3: where the evidence for a class is

The image is read exactly as training read its images (`kerasrun.rundir.load_images`: any
format and size, resized to the run's input), and fed to the run's own model, which does its
own preprocessing (`Rescaling(1/255)` or a pretrained backbone's `preprocess_input` layer).
So the filters' gradient ascent starts from the book's gray noise in *raw* [0, 255] pixels,
where its step of 1.0 means one pixel level whatever the model's preprocessing.

Pretrained runs hold their backbone as a nested model (`conv_base`): its conv layers are found
inside it, and the model's graph is traced again with the backbone's call replaced by one that
also returns those layers, so gradients flow from the prediction to a layer inside it.

PNGs go to `<run>/visualize/<kind>/`, the same images to TensorBoard under
`<run>/tensorboard/visualize/` (or both under `output=`).

Two kinds need no run, only a pretrained backbone (the book's chapter 8), and live in their
own modules; this one checks their options and dispatches:

visualize kind=deepdream image=photo.jpg                              # kerasrun.dream
visualize kind=style_transfer image=photo.jpg style_image=painting.jpg # kerasrun.style

They write into a new `outputs/visualize/<date>_<time>_<kind>/` (or `output=`). And
`kind=gradcam frames=<folder>` explains every frame of a video (`kerasrun.gradcam_frames`).
"""

import logging
import os
from pathlib import Path

import hydra

from kerasrun.config.compose import conf_dir, plain
from kerasrun.config.hydra_errors import one_line_errors
from kerasrun.errors import ConfigError, require
from kerasrun.pictures import (
    JET,
    channel_grid,
    colorize,
    deprocess_image,
    overlay_heatmap,
    save_png,
    tile,
    write_tensorboard_images,
)
from kerasrun.rundir.run import exit_on_user_error, load_images, open_run, require_classifier

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
# Layer classes by name, so that the checks need no Keras import. Conv layers are what
# `filters` and `gradcam` use; `activations` also shows the pooling layers, as the book does.
CONV_LAYERS = ("Conv2D", "SeparableConv2D", "DepthwiseConv2D")
POOL_LAYERS = ("MaxPooling2D", "AveragePooling2D")
MAX_ACTIVATION_LAYERS = 8  # the book's `model.layers[:8]`: 4 conv and 4 pool layers
FILTER_MARGIN = 5  # filters: pixels between patterns (the book's `margin = 5`)


@one_line_errors
@hydra.main(config_path=str(conf_dir()), config_name="visualize", version_base="1.3")
@exit_on_user_error
def main(cfg):
    """Checks every key, then writes the images of `kind` and says where they are."""
    config = plain(cfg)
    kind = check_kind(config["kind"])
    if kind in BACKBONE_KINDS:
        return generate(kind, config)
    options = check_options(kind, config)
    frames = check_frames(kind, config)
    run = open_run(config["run"], config["checkpoint"])
    require_classifier(run, f"visualize kind={kind}")
    input_shape = image_input_shape(run)
    if kind == "gradcam" and run.class_names:  # else checked once the model is loaded
        check_class_index(options["class_index"], len(run.class_names))
    image = None if frames else check_image(config["image"], kind)
    output = config["output"]
    out_dir = Path(os.path.expanduser(str(output))) if output else run.path / "visualize"
    tensorboard_dir = (out_dir if output else run.path) / "tensorboard" / "visualize"

    from kerasrun.training import runtime

    runtime.import_tensorflow_quietly()
    model = run.load_model()
    if frames:
        from kerasrun.vision.gradcam_frames import gradcam_frames

        where = out_dir / kind / frames.name
        images = gradcam_frames(model, run, frames, input_shape, where, **options)
    else:
        options.pop("batch_size", None)
        images = VISUALIZERS[kind](model, run, image, input_shape, out_dir / kind, **options)
    write_tensorboard_images(tensorboard_dir, images)
    log.info(f"Model:        {run.model_path}")
    log.info(f"TensorBoard:  tensorboard --logdir {tensorboard_dir.parent}  (tab Images)")


# --- checks: every user mistake is one line, before TensorFlow is imported -----------------


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
        class_index = config["class_index"]
        require(
            class_index is None or _is_int(class_index) and class_index >= 0,
            "class_index must be a class number (0, 1, ...) or null for the predicted class. "
            f"Received: class_index={class_index}.",
        )
        batch_size = config["batch_size"]
        require(
            _is_int(batch_size) and batch_size > 0,
            f"batch_size must be a positive integer (frames per Grad-CAM pass). Received: "
            f"batch_size={batch_size}. Set e.g. batch_size=32.",
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
    steps, step_size, max_filters = config["steps"], config["step_size"], config["max_filters"]
    for key, value in (("steps", steps), ("max_filters", max_filters)):
        require(
            _is_int(value) and value > 0,
            f"{key} must be a positive integer. Received: {key}={value}. Set e.g. {key}=40.",
        )
    require(
        isinstance(step_size, (int, float)) and not isinstance(step_size, bool) and step_size > 0,
        "step_size must be a positive number (pixel levels per step; the book's is 1.0). "
        f"Received: step_size={step_size}.",
    )
    return dict(layers=layers, steps=steps, step_size=float(step_size), max_filters=max_filters)


def check_class_index(class_index, num_classes):
    """Raises a `ConfigError` unless `class_index` is `None` or below `num_classes`."""
    require(
        class_index is None or class_index < num_classes,
        f"class_index must be below the run's {num_classes} classes. "
        f"Received: class_index={class_index}. Set a class number from 0 to {num_classes - 1}.",
    )


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


def generate(kind, config):
    """DeepDream or style transfer: checks their options, runs them, writes TensorBoard.

    Returns:
        `(out_dir, losses)`: where the PNGs and tensorboard/ are, and the loss at each step.
    """
    options = check_backbone_options(kind, config)
    from kerasrun.training import runtime
    from kerasrun.vision import backbones as backbone_features

    out_dir = backbone_features.output_folder(config["output"], kind)
    runtime.import_tensorflow_quietly()
    try:
        if kind == "deepdream":
            from kerasrun.vision.dream import deepdream

            images, losses = deepdream(options.pop("image"), out_dir, **options)
            losses = [loss for octave in losses for loss in octave]
        else:
            from kerasrun.vision.style import style_transfer

            images, losses = style_transfer(options.pop("image"), out_dir, **options)
    except ConfigError:  # e.g. offline ImageNet weights: leave no empty folder behind
        if not config["output"] and out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise
    tensorboard_dir = out_dir / "tensorboard"
    write_tensorboard_images(tensorboard_dir, images)
    backbone_features.write_scalars(tensorboard_dir, f"{kind}/loss", losses)
    log.info(f"Results:      {out_dir}")
    log.info(f"TensorBoard:  tensorboard --logdir {tensorboard_dir}  (tabs Images, Scalars)")
    return out_dir, losses


def check_backbone_options(kind, config):
    """The keyword arguments of `deepdream` or `style_transfer`, checked before TensorFlow."""
    from kerasrun.vision import backbones as backbone_features
    from kerasrun.vision import dream, style

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
    backbone = backbone_features.check_backbone(config["backbone"] or BACKBONE_KINDS[kind])
    weights = backbone_features.check_weights(config["weights"])
    height = config["height"]
    require(
        height is None or _is_int(height) and height > 0,
        f"height must be a positive number of pixels, or null for the kind's default. "
        f"Received: height={height}. Set e.g. height=400 (the book's).",
    )
    _positive_int(config, "iterations", 20)
    options = dict(image=image, backbone=backbone, weights=weights, iterations=config["iterations"])
    if kind == "deepdream":
        layers = config["layers"]
        layers = dream.LAYERS if layers is None else layers
        require(
            isinstance(layers, dict)
            and layers
            and all(isinstance(k, str) and _is_number(v) for k, v in layers.items()),
            "layers must map layer names to their weight in the loss for kind=deepdream. "
            f"Received: layers={config['layers']}. Set e.g. layers={{mixed2:0.2,mixed3:3.0}} "
            "(null = the book's mixed2 0.2, mixed3 3.0, mixed4 2.0, mixed5 1.5).",
        )
        _positive_int(config, "octaves", 3)
        for key, example in (("octave_scale", 1.4), ("step", 0.01), ("max_loss", 10.0)):
            value = config[key]
            require(
                (value is None and key == "max_loss")
                or _is_number(value)
                and value > (1 if key == "octave_scale" else 0),
                f"{key} must be a number above {1 if key == 'octave_scale' else 0}"
                f"{' or null (no limit)' if key == 'max_loss' else ''}. Received: {key}={value}. "
                f"Set e.g. {key}={example} (the book's).",
            )
        dream.check_sizes(
            backbone_features.image_size(image, height),
            config["octaves"],
            config["octave_scale"],
            backbone_features.min_size(backbone),
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
    style.check_size(backbone_features.image_size(image, height), backbone, height)
    for key in ("content_weight", "style_weight", "total_variation_weight"):
        require(
            _is_number(config[key]) and config[key] >= 0,
            f"{key} must be a number >= 0. Received: {key}={config[key]}. "
            "The book's: content_weight=0.025 style_weight=1.0 total_variation_weight=1e-4.",
        )
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


def _positive_int(config, key, example):
    require(
        _is_int(config[key]) and config[key] > 0,
        f"{key} must be a positive integer. Received: {key}={config[key]}. "
        f"Set e.g. {key}={example} (the book's).",
    )


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


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


# --- layers and sub-models -------------------------------------------------------------


def conv_pool_layers(model):
    """`[(layer, owner), ...]`: the model's conv and pooling layers, in order.

    `owner` is the model that holds the layer: `model` itself, or a nested model such as a
    pretrained run's `conv_base` (searched at any depth).
    """
    found = []
    for layer in model.layers:
        if type(layer).__name__ in CONV_LAYERS + POOL_LAYERS:
            found.append((layer, model))
        elif _is_model(layer):
            found += conv_pool_layers(layer)
    return found


def _is_model(layer):
    return hasattr(layer, "layers") and hasattr(layer, "inputs")


def _holds(container, model):
    """Whether `model` is `container` or nested (at any depth) inside it."""
    return container is model or any(
        _holds(layer, model) for layer in container.layers if _is_model(layer)
    )


def _is_conv(layer):
    return type(layer).__name__ in CONV_LAYERS


def choose_layers(model, names, *, kind):
    """The `(layer, owner)` pairs `kind` shows: `names` checked, or the book's defaults.

    Raises:
        ConfigError: a name is not a conv (or, for activations, pooling) layer of the model;
            the message lists the ones there are.
    """
    candidates = conv_pool_layers(model)
    if kind != "activations":
        candidates = [(layer, owner) for layer, owner in candidates if _is_conv(layer)]
    what = "conv/pool" if kind == "activations" else "conv"
    require(
        candidates,
        f"kind={kind} needs a model with {what} layers; {model.name} has none. Choose a run "
        "with a convnet.",
    )
    if names is None:
        return _default_layers(candidates, kind)
    by_name = {layer.name: (layer, owner) for layer, owner in candidates}
    unknown = [n for n in names if n not in by_name]
    key, received = ("layer", names[0]) if kind == "gradcam" else ("layers", names)
    require(
        not unknown,
        f"{key} must name {what} layers of the model: {_name_list(list(by_name))}. "
        f"Received: {key}={received} ({', '.join(unknown)} is not one). Choose from these names.",
    )
    return [by_name[n] for n in names]


def _name_list(names, most=24):
    """`a, b, c`; a long list (a backbone's) as its first and last names around a count."""
    if len(names) <= most:
        return ", ".join(names)
    half = most // 2
    hidden = len(names) - 2 * half
    return f"{', '.join(names[:half])}, ... ({hidden} more), {', '.join(names[-half:])}"


def _default_layers(candidates, kind):
    if kind == "activations":
        return candidates[:MAX_ACTIVATION_LAYERS]
    if kind == "gradcam":  # the last conv layer: the most abstract one that still has a map
        return candidates[-1:]
    # filters: the first conv layer at each resolution, i.e. the first of each block
    # (VGG16: block1_conv1 ... block5_conv1, the layers the book shows).
    chosen, sizes = [], set()
    for layer, owner in candidates:
        size = tuple(layer.output.shape[1:3])
        if size not in sizes:
            sizes.add(size)
            chosen.append((layer, owner))
    return chosen[:MAX_ACTIVATION_LAYERS]


def feature_model(model, chosen):
    """A `keras.Model`: raw images → `[outputs of the chosen layers..., head input, predictions]`.

    Like the book's activation model, but built on a fresh trace of `model`'s graph: a
    `Sequential` re-adds its layers on every `add()`, so `layer.output` is often a tensor of an
    older graph, from which the predictions cannot be reached (and Grad-CAM's gradient would
    be `None`). Layers of a nested backbone are reached by replacing its call in the trace with
    a backbone that also returns them, so one differentiable model goes from the raw image to
    the layer outputs and the predictions. The head's input is there for Grad-CAM's logits.
    """
    import keras

    owners = {id(owner): owner for _, owner in chosen}
    require(
        len(owners) == 1,
        "visualize shows layers of one model at a time (the model or its backbone). "
        f"Received: layers={[layer.name for layer, _ in chosen]}. Choose layers of one of them.",
    )
    (owner,) = owners.values()
    wanted = [layer for layer, _ in chosen]
    child = None
    if owner is not model:  # the layer of `model` that holds the backbone
        child = next(layer for layer in model.layers if _is_model(layer) and _holds(layer, owner))
        inner = feature_model(child, chosen)
    found = {}

    def call(layer, *args, **kwargs):
        if layer is child:
            *features, _, output = inner(*args, **kwargs)
            found.update(zip(map(id, wanted), features, strict=True))
            return output
        if layer is model.layers[-1]:
            found["head_input"] = args[0]
        output = layer(*args, **kwargs)
        if any(layer is w for w in wanted):
            found[id(layer)] = output
        return output

    inputs, outputs = _trace(model, call)
    features = [found[id(layer)] for layer in wanted]
    return keras.Model(inputs, features + [found["head_input"], outputs])


def _trace(model, call):
    """`model`'s graph rebuilt on a new input, each layer applied with `call(layer, x, ...)`.

    Returns:
        `(inputs, output)`, for models of one input and one output (all of kerasrun's).
    """
    import keras

    if isinstance(model, keras.Sequential):
        inputs = keras.Input(batch_shape=model.inputs[0].shape, dtype=model.inputs[0].dtype)
        x = inputs
        for layer in model.layers:
            x = call(layer, x)
        return inputs, x
    # The layers themselves (not copies), called through `call`: the same weights.
    clone = keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call)
    return clone.input, clone.output


def head_logits(model, head_input):
    """The model's class scores before its sigmoid or softmax, or `None` for another head.

    Grad-CAM differentiates these, as the Grad-CAM paper does: a confident sigmoid or
    softmax output (0.9999) is flat, its gradient almost zero, and the heatmap blank.
    """
    from keras import ops

    head = model.layers[-1]
    config = head.get_config()
    if type(head).__name__ != "Dense" or config.get("activation") not in ("sigmoid", "softmax"):
        return None
    # The head computes in float32 (also under mixed precision): so do its logits.
    return ops.matmul(ops.cast(head_input, head.kernel.dtype), head.kernel) + head.bias


# --- the three kinds -------------------------------------------------------------------


def activations(model, run, image, input_shape, out_dir, *, layers):
    """The book's 5.4.1: each chosen layer's output for `image`, one grid PNG per layer."""
    chosen = choose_layers(model, layers, kind="activations")
    pixels = load_images([image], input_shape)
    *features, _, _ = feature_model(model, chosen)(pixels, training=False)
    images = {}
    for (layer, _), feature in zip(chosen, features, strict=True):
        grid = channel_grid(feature.numpy()[0])
        path = save_png(grid, out_dir / image.stem / f"{layer.name}.png")
        h, w, c = feature.shape[1:]
        log.info(f"{layer.name}: {c} channels of {h}x{w} → {path}")
        images[f"activations/{image.stem}/{layer.name}"] = grid
    return images


def filters(model, run, image, input_shape, out_dir, *, layers, steps, step_size, max_filters):
    """The book's 5.4.2: per conv layer, the input patterns that maximise its filters."""
    chosen = choose_layers(model, layers, kind="filters")
    seed = int(run.config.get("seed") or 0)
    images = {}
    for layer, owner in chosen:
        extract = feature_model(model, [(layer, owner)])
        count = min(max_filters, layer.output.shape[-1])
        patterns, before, after, stuck = filter_patterns(
            extract, input_shape, count, steps=steps, step_size=step_size, seed=seed
        )
        grid = tile([deprocess_image(p) for p in patterns], margin=FILTER_MARGIN)
        path = save_png(grid, out_dir / f"{layer.name}.png")
        log.info(
            f"{layer.name}: {count} of {layer.output.shape[-1]} filters, {steps} steps: mean "
            f"activation {before:.3g} → {after:.3g} → {path}"
        )
        if stuck:
            log.info(
                f"  {stuck} of them had no gradient from the gray noise (a ReLU filter silent "
                "there): their patterns are that noise."
            )
        images[f"filters/{layer.name}"] = grid
    return images


def gradcam(model, run, image, input_shape, out_dir, *, layer, class_index):
    """The book's 5.4.3: the Grad-CAM heatmap of a class over `image`, and its overlay."""
    import numpy as np
    from PIL import Image

    ((conv, owner),) = choose_layers(model, None if layer is None else [layer], kind="gradcam")
    extract = feature_model(model, [(conv, owner)])
    class_names = run.class_names or [str(i) for i in range(max(2, model.outputs[0].shape[-1]))]
    check_class_index(class_index, len(class_names))
    heatmap, probabilities = grad_cam(
        model, extract, load_images([image], input_shape), class_index
    )
    predicted = int(np.argmax(probabilities))
    target = predicted if class_index is None else class_index
    log.info(
        f"Predicted: {class_names[predicted]} ({probabilities[predicted]:.4f}) for {image.name}"
    )
    if target != predicted:
        log.info(
            f"Explaining class_index={target}: {class_names[target]} ({probabilities[target]:.4f})"
        )
    if not heatmap.any():
        log.warning(
            f"The Grad-CAM heatmap of {class_names[target]} on {conv.name} is zero everywhere: "
            "nothing this layer sees raises that class's score."
        )
    height, width = input_shape[:2]
    colored = colorize(heatmap, JET)
    heatmap_image = np.asarray(
        Image.fromarray(colored).resize((width, height), Image.Resampling.NEAREST)
    )
    with Image.open(image) as opened:
        original = np.asarray(opened.convert("RGB"))
    overlay = overlay_heatmap(original, heatmap)
    path = save_png(overlay, out_dir / f"{image.stem}.png")
    save_png(heatmap_image, out_dir / f"{image.stem}_heatmap.png")
    log.info(
        f"Grad-CAM of {class_names[target]} on {conv.name} ({heatmap.shape[0]}x"
        f"{heatmap.shape[1]}) → {path} (+ {image.stem}_heatmap.png)"
    )
    return {f"gradcam/{image.stem}": overlay, f"gradcam/{image.stem}_heatmap": heatmap_image}


VISUALIZERS = {"activations": activations, "filters": filters, "gradcam": gradcam}


# --- the computations ------------------------------------------------------------------


def filter_patterns(extract, input_shape, count, *, steps, step_size, seed=0):
    """Gradient ascent on the input: patterns that maximise the first `count` filters.

    The book's `generate_pattern`, for `count` filters at once (one image each, independent
    in the batch): from gray noise `random * 20 + 128` in raw pixels, `steps` steps of
    `step_size` along the gradient of the filter's mean activation, divided by its RMS: each
    step moves the pixels by `step_size` levels (RMS), whatever the model's preprocessing.

    Returns:
        `(patterns, mean activation before, mean activation after, stuck)`: the patterns as
        floats `(count, height, width, channels)` in raw pixel units, and how many of them
        never moved (a filter with no gradient at the start keeps its noise).
    """
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    images = tf.Variable(rng.random((count, *input_shape)) * 20 + 128, dtype="float32")
    # Image i maximises filter i: its own channel's mean activation.
    pick = tf.one_hot(tf.range(count), count, dtype="float32")

    def losses():
        features, _, _ = extract(images, training=False)
        means = tf.reduce_mean(features[..., :count], axis=(1, 2))  # (count, count)
        return tf.reduce_sum(means * pick, axis=1)

    @tf.function
    def ascent_step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(losses())
        grads = tape.gradient(loss, images)
        rms = tf.sqrt(tf.reduce_mean(tf.square(grads), axis=(1, 2, 3), keepdims=True))
        # The book adds 1e-5 to the RMS; raw-pixel gradients through Rescaling(1/255) and a
        # mean over a 148x148 map are ~1e-7, so that 1e-5 would shrink every step 100-fold.
        grads /= tf.maximum(rms, 1e-20)
        images.assign_add(grads * step_size)

    start = images.numpy()
    before = float(tf.reduce_mean(losses()))
    for _ in range(steps):
        ascent_step()
    patterns = images.numpy()
    stuck = int(np.all(patterns == start, axis=(1, 2, 3)).sum())
    return patterns, before, float(tf.reduce_mean(losses())), stuck


def grad_cam(model, extract, images, class_index):
    """The book's Grad-CAM: the conv layer's channels weighted by the mean gradient of a class.

    The class score is the head's logit (`-logit` for class 0 of a sigmoid), as in the
    Grad-CAM paper; the book differentiates the softmax output, which saturates.

    Args:
        model: the run's model (its last layer is the head).
        extract: `feature_model(model, [the conv layer])`.
        images: one image, `(1, height, width, channels)` in raw pixels.
        class_index: the class to explain (see `check_class_index`); `None` for the
            predicted one.

    Returns:
        `(heatmap, probabilities)`: the heatmap `(h, w)` in [0, 1] at the layer's resolution
        (`max(heatmap, 0) / max(heatmap)`), and the model's probability of each class.
    """
    heatmaps, probabilities = grad_cams(model, extract, images, class_index)
    return heatmaps[0], probabilities[0]


def grad_cams(model, extract, images, class_index):
    """`grad_cam` for a batch of images `(n, height, width, channels)` in one pass.

    Each image's class score depends on that image only (the model runs in inference mode),
    so the gradient of their sum gives every image its own gradient.

    Returns:
        `(heatmaps, probabilities)`: `(n, h, w)`, each in [0, 1], and `(n, classes)`.
    """
    import numpy as np
    import tensorflow as tf

    with tf.GradientTape() as tape:
        conv_output, head_input, predictions = extract(tf.constant(images), training=False)
        probabilities = _class_probabilities(predictions)
        if class_index is None:
            targets = tf.argmax(probabilities, axis=-1, output_type="int32")
        else:
            targets = tf.fill([tf.shape(probabilities)[0]], class_index)
        logits = head_logits(model, head_input)
        if logits is None:  # not a sigmoid/softmax Dense head: the book's probability
            scores = tf.gather(probabilities, targets, batch_dims=1)
        elif logits.shape[-1] == 1:  # sigmoid: the logit argues for class 1, against class 0
            scores = tf.where(targets == 1, logits[:, 0], -logits[:, 0])
        else:
            scores = tf.gather(logits, targets, batch_dims=1)
        score = tf.reduce_sum(scores)
    grads = tape.gradient(score, conv_output)
    pooled_grads = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)  # a weight per channel
    heatmaps = np.maximum(tf.reduce_mean(conv_output * pooled_grads, axis=-1).numpy(), 0)
    peaks = heatmaps.max(axis=(1, 2), keepdims=True)
    heatmaps = np.divide(heatmaps, peaks, out=np.zeros_like(heatmaps), where=peaks > 0)
    return heatmaps, probabilities.numpy()


def _class_probabilities(prediction):
    """A model's output as one probability per class: a sigmoid's `p` is `[1 - p, p]`."""
    import tensorflow as tf

    if prediction.shape[-1] == 1:
        return tf.concat([1 - prediction, prediction], axis=-1)
    return prediction


if __name__ == "__main__":
    main()
