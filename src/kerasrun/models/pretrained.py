"""Transfer learning on a `keras.applications` conv base: the book's 5.3 (VGG16) and friends.

The model is `inputs → [gray to RGB] → preprocessing → conv_base → Flatten → Dense → Dropout →
head`. It takes raw float32 images in [0, 255]: each backbone's own `preprocess_input` is a
serializable layer inside the model, so a saved `.keras` file predicts on raw images. Before
`keras.models.load_model` in a fresh process, call `custom_objects()` once (or pass its result
as `custom_objects=`) so Keras knows the preprocessing layer.

Fine-tuning is the book's two phases: train the head on a frozen `conv_base`, then
`unfreeze_from(model, "block5_conv1")`, recompile with a low learning rate and train on.
"""

import functools
import os
from collections import namedtuple

from kerasrun.errors import ConfigError, check_int, check_rate, download_failed, require

Backbone = namedtuple("Backbone", ["constructor", "preprocess", "min_size"])
Backbone.__doc__ = """A `keras.applications` constructor, its `preprocess_input` mode
("caffe", "tf", "torch", or None when the model preprocesses itself) and its smallest image side."""

# Modes copied from each module's `preprocess_input` in keras/src/applications/; minimum sizes
# from their `obtain_input_shape(min_size=...)`.
BACKBONES = {
    "VGG16": Backbone("VGG16", "caffe", 32),
    "VGG19": Backbone("VGG19", "caffe", 32),
    "ResNet50": Backbone("ResNet50", "caffe", 32),
    "ResNet50V2": Backbone("ResNet50V2", "tf", 32),
    "MobileNetV2": Backbone("MobileNetV2", "tf", 32),
    "Xception": Backbone("Xception", "tf", 71),
    "InceptionV3": Backbone("InceptionV3", "tf", 75),
    "EfficientNetB0": Backbone("EfficientNetB0", None, 32),
    "DenseNet121": Backbone("DenseNet121", "torch", 32),
    "ConvNeXtTiny": Backbone("ConvNeXtTiny", None, 32),
}

# imagenet_utils' constants: caffe subtracts the BGR mean; torch scales to [0, 1] then normalizes.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


@functools.cache
def preprocessing_class():
    """The `ImageNetPreprocessing` layer class: a backbone's `preprocess_input` as a layer.

    Defined on first use: importing this module must not import TensorFlow.
    """
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="kerasrun")
    class ImageNetPreprocessing(keras.layers.Layer):
        """`keras.applications.<module>.preprocess_input` as a layer, for raw [0, 255] RGB.

        Args:
            mode: `"caffe"` (RGB→BGR, subtract the ImageNet mean), `"tf"` (scale to [-1, 1]) or
                `"torch"` (scale to [0, 1], normalize with the ImageNet mean and std).
        """

        def __init__(self, mode, **kwargs):
            super().__init__(**kwargs)
            if mode not in ("caffe", "tf", "torch"):
                raise ValueError(f"mode must be 'caffe', 'tf' or 'torch'. Received: mode={mode}")
            self.mode = mode

        def call(self, inputs):
            x = ops.cast(inputs, self.compute_dtype)
            if self.mode == "tf":
                return x / 127.5 - 1.0
            if self.mode == "torch":
                mean, std = ops.array(_TORCH_MEAN, x.dtype), ops.array(_TORCH_STD, x.dtype)
                return (x / 255.0 - mean) / std
            return ops.flip(x, axis=-1) - ops.array(_CAFFE_MEAN_BGR, x.dtype)

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self):
            return {**super().get_config(), "mode": self.mode}

    return ImageNetPreprocessing


def custom_objects():
    """The custom layers of pretrained models, registered with Keras on first call.

    Returns:
        A dict for `keras.models.load_model(path, custom_objects=...)`.
    """
    cls = preprocessing_class()
    return {"kerasrun>ImageNetPreprocessing": cls}


def check_weights(weights, key="model.weights"):
    """`imagenet`, `None`, or the expanded path of an existing weights file.

    Raises:
        ConfigError: anything else; `key` is the config key it came from (`model.weights`,
            or `weights` for visualize).
    """
    if weights in ("imagenet", None):
        return weights
    require(
        isinstance(weights, str) and os.path.isfile(os.path.expanduser(weights)),
        f"`{key}` must be 'imagenet', null (random initialization) or the path of an "
        f"existing weights file. Received: {key}={weights!r}. Check the path, or set "
        f"{key}=imagenet or {key}=null.",
    )
    return os.path.expanduser(weights)


def _download_error(backbone, error, key="model.weights"):
    # Keras's get_file says "URL fetch failure on <url>: <errno> -- <reason>".
    message = str(error)
    urls = [w.rstrip(":") for w in message.split() if w.startswith(("http://", "https://"))]
    fname = os.path.basename(urls[0]) if urls else f"the {backbone} no-top weights file"
    cache = os.path.join(os.environ.get("KERAS_HOME", "~/.keras"), "models/")
    return ConfigError(
        f"The ImageNet weights of {backbone} could not be downloaded "
        f"({message.split(' -- ')[-1]}). Received: {key}='imagenet'. Put {fname} "
        f"under {cache} (where Keras caches it once downloaded), or set {key}=/path/to/file "
        f"or {key}=null."
    )


def build_conv_base(spec, weights, input_shape, key="model.weights"):
    """The `keras.applications` model of `spec` without its top, named `conv_base`.

    Raises:
        ConfigError: the ImageNet weights cannot be downloaded (one line: where to put them).
    """
    import keras

    constructor = getattr(keras.applications, spec.constructor)
    try:
        return constructor(
            include_top=False, weights=weights, input_shape=input_shape, name="conv_base"
        )
    except Exception as error:
        if weights == "imagenet" and download_failed(error):
            raise _download_error(spec.constructor, error, key) from error
        raise


def _set_trainable_from(conv_base, layer_name, key):
    """The book's loop: layers before `layer_name` stay frozen, it and all after it train."""
    names = [layer.name for layer in conv_base.layers]
    if layer_name not in names:
        # Block starts (VGG's block5_conv1, ...) are the useful choices; else the top layers.
        starts = [n for n in names if n.endswith("_conv1")]
        hints = starts[-8:] if len(starts) >= 3 else names[-5:]
        raise ConfigError(
            f"`{layer_name}` is not a layer of the conv base ({len(names)} layers). Valid "
            f"names include: {', '.join(hints)}. Received: {key}={layer_name!r}. Choose a "
            "name from model.get_layer('conv_base').summary(), e.g. the first of its last block."
        )
    conv_base.trainable = True
    set_trainable = False
    for layer in conv_base.layers:
        if layer.name == layer_name:
            set_trainable = True
        layer.trainable = set_trainable


def unfreeze_from(model, layer_name):
    """Unfreezes `model`'s conv base from `layer_name` on, as in the book's listing 5-22.

    Recompile the model afterwards: `trainable` is read when the train step is compiled.

    Args:
        model: a model built by `pretrained` (it holds a nested model named `"conv_base"`).
        layer_name: the first layer to train, e.g. `"block5_conv1"` for VGG16.

    Returns:
        The number of trainable weight tensors of the whole model.
    """
    try:
        conv_base = model.get_layer("conv_base")
    except ValueError as error:
        raise ConfigError(
            f"model.unfreeze_from needs a pretrained model with a `conv_base`; {model.name} has "
            f"none. Received: model.unfreeze_from={layer_name!r}. Set model.unfreeze_from=null."
        ) from error
    _set_trainable_from(conv_base, layer_name, key="model.unfreeze_from")
    return len(model.trainable_weights)


def backbone_key(backbone, *, key="model.backbone", hint="Pick one of these names."):
    """The `BACKBONES` name of `backbone`, whatever its case (`resnet50` is `ResNet50`).

    Raises:
        ConfigError: an unknown name, listing the known ones; `key` is the config key it came
            from (`model.backbone`, or `backbone` for predict and visualize).
    """
    by_lower = {name.lower(): name for name in BACKBONES}
    found = by_lower.get(str(backbone).lower())
    require(
        found is not None,
        f"Unknown backbone. Available: {', '.join(BACKBONES)}. "
        f"Received: {key}={backbone!r}. {hint}",
    )
    return found


def pretrained(
    *,
    input_shape,
    task,
    backbone="VGG16",
    weights="imagenet",
    units=256,
    dropout=0.5,
    pooling="flatten",
    trainable_from=None,
):
    """A classifier on a frozen `keras.applications` conv base (the book's feature extraction).

    Args:
        backbone: a key of `BACKBONES`, e.g. `"VGG16"` (case-insensitive).
        weights: `"imagenet"`, `None` (random initialization) or the path of a weights file.
        units: the width of the Dense layer on top of the conv base.
        dropout: the rate of the Dropout after that Dense layer; 0 leaves it out.
        pooling: `"flatten"` (the book) or `"avg"` (GlobalAveragePooling2D: far fewer weights).
        trainable_from: `None` freezes the whole conv base; a layer name trains that layer and
            all after it from the start (the lecture deck's VGG16 trains `block5_conv1` on).
    """
    import keras
    from keras import layers

    key = backbone_key(backbone)
    spec = BACKBONES[key]
    height, width, channels = (int(d) for d in input_shape)
    require(
        min(height, width) >= spec.min_size,
        f"{key} needs images of at least {spec.min_size}x{spec.min_size} pixels. "
        f"Received: data.image_size={[height, width]}. Set data.image_size to at least "
        f"[{spec.min_size}, {spec.min_size}] (the book uses [150, 150]).",
    )
    require(
        channels in (1, 3),
        f"{key} takes RGB images (grayscale ones are repeated to 3 channels). "
        f"Received: input_shape={(height, width, channels)}. Load the images as RGB.",
    )
    check_int("model.units", units, example=256, why="the book's 256")
    check_rate("model.dropout", dropout)
    require(
        pooling in ("flatten", "avg"),
        "`model.pooling` must be 'flatten' (the book) or 'avg' (GlobalAveragePooling2D). "
        f"Received: model.pooling={pooling!r}.",
    )
    weights = check_weights(weights)

    conv_base = build_conv_base(spec, weights, (height, width, 3))
    if trainable_from is None:
        conv_base.trainable = False
    else:
        _set_trainable_from(conv_base, trainable_from, key="model.trainable_from")

    inputs = keras.Input(shape=(height, width, channels))
    x = inputs
    if channels == 1:
        x = layers.Concatenate(name="gray_to_rgb")([x, x, x])
    if spec.preprocess:
        x = preprocessing_class()(spec.preprocess, name="preprocess_input")(x)
    # Always inference mode, as in Keras's transfer-learning guide: BatchNormalization layers
    # keep their ImageNet statistics, even after unfreeze_from() for fine-tuning.
    x = conv_base(x, training=False)
    x = layers.Flatten()(x) if pooling == "flatten" else layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(units, activation="relu")(x)
    if dropout > 0:
        x = layers.Dropout(dropout)(x)
    outputs = task.head()(x)
    return keras.Model(inputs, outputs, name=f"pretrained_{key.lower()}")


def vgg16(
    *,
    input_shape,
    task,
    weights="imagenet",
    units=256,
    dropout=0.5,
    pooling="flatten",
    trainable_from=None,
):
    """The book's 5.3 model: VGG16 conv base → Flatten → Dense(256) → Dropout(0.5) → head.

    Registered as `vgg16_feature_extraction` and `vgg16_finetune`; the arguments are those of
    `pretrained`, with `backbone="VGG16"`.
    """
    return pretrained(
        input_shape=input_shape,
        task=task,
        backbone="VGG16",
        weights=weights,
        units=units,
        dropout=dropout,
        pooling=pooling,
        trainable_from=trainable_from,
    )
