"""A `keras.applications` backbone as a feature extractor on raw pixels, for DeepDream and style
transfer (the book's 8.2 and 8.3): no run, just a pretrained convnet and some of its layers.

The backbone is one of `kerasrun.models.pretrained.BACKBONES` (their preprocessing mode is
known, so the result can be turned back into pixels), built by the same code as `train
model=pretrained`: `weights` is `imagenet` (Keras's download, cached under ~/.keras/models),
a local weights file, or null (random weights: for tests; the pictures are then meaningless).
"""

import logging
import os
import warnings
from datetime import datetime
from pathlib import Path

from kerasrun.errors import ConfigError, require
from kerasrun.models import pretrained
from kerasrun.vision.layers import name_list

log = logging.getLogger("kerasrun")

# Results of the kinds that need no run: a new folder per call, as train's runs.
OUTPUT_ROOT = Path("outputs") / "visualize"


def check_backbone(backbone):
    """The `BACKBONES` key for `backbone` (case-insensitive); else a `ConfigError` listing them."""
    return pretrained.backbone_key(
        backbone,
        key="backbone",
        hint="Pick one of these names (the book's: InceptionV3 for DeepDream, VGG19 for style "
        "transfer).",
    )


def check_weights(weights):
    """`imagenet`, `None` or the expanded path of an existing file (`pretrained`'s check)."""
    return pretrained.check_weights(weights, key="weights")


def min_size(key):
    """The smallest image side `key` takes (InceptionV3: 75 pixels)."""
    return pretrained.BACKBONES[key].min_size


def feature_extractor(key, weights, names, option):
    """A `(model, preprocess)` pair: `model(preprocess(raw))` is `{name: layer output}`.

    Args:
        key: a `BACKBONES` key.
        weights: see `check_weights`.
        names: the layers to return.
        option: the config key that named them, for the error message.

    Returns:
        `model`, a `keras.Model` of any image size (`include_top=False`) returning a dict of
        the named layers' outputs, and `preprocess`, the backbone's own `preprocess_input` on
        raw RGB pixels in [0, 255] (the identity when the model preprocesses itself).

    Raises:
        ConfigError: a name is not a layer of the backbone (the message lists them); the
            ImageNet weights cannot be downloaded (one line: where to put them).
    """
    import keras

    spec = pretrained.BACKBONES[key]
    if weights is None:
        log.warning(
            f"{key} with random weights (weights=null): for tests, the pictures mean nothing."
        )
    else:
        log.info(f"Loading {key} ({'ImageNet weights' if weights == 'imagenet' else weights})")
    try:
        # A file of another model makes Keras warn about each part before it fails: show
        # the warnings (once each) only when the weights did load.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            base = pretrained.build_conv_base(spec, weights, (None, None, 3), key="weights")
        for message in dict.fromkeys(str(w.message).splitlines()[0] for w in caught):
            log.warning(message)
    except ConfigError:
        raise
    except Exception as e:
        if weights in ("imagenet", None):
            raise
        message = str(e).splitlines()[0] if str(e) else ""
        raise ConfigError(
            f"weights must be a weights file of {key} without its top (include_top=False). "
            f"Received: weights='{weights}', which does not fit ({type(e).__name__}: "
            f"{message}). Use the no-top file Keras downloads for {key}."
        ) from None
    available = [layer.name for layer in base.layers if type(layer).__name__ != "InputLayer"]
    unknown = [n for n in names if n not in available]
    verb = "is not one" if len(unknown) == 1 else "are not"
    require(
        not unknown,
        f"{option} must name layers of {key}: {name_list(available)}. Received: "
        f"{option}={names} ({', '.join(unknown)} {verb}). Choose from these names.",
    )
    model = keras.Model(base.inputs, {n: base.get_layer(n).output for n in names})
    if spec.preprocess is None:  # the model preprocesses itself
        return model, lambda x: x
    return model, pretrained.preprocessing_class()(spec.preprocess)


def output_folder(output, kind):
    """`output`, or a new `outputs/visualize/<date>_<time>_<kind>/` (never an existing one)."""
    if output:
        return Path(os.path.expanduser(str(output)))
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    base = OUTPUT_ROOT / f"{stamp}_{kind}"
    path, n = base, 1
    while True:  # created here, atomically: a second call in the same second gets `_2`
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            n += 1
            path = base.with_name(f"{base.name}_{n}")
        except OSError as e:
            raise ConfigError(
                f"Cannot create {path} ({type(e).__name__}: {e}). Set output=<a writable folder>."
            ) from None


def image_size(path, height=None):
    """`(height, width)` of the image at `path` once resized to `height` (see `read_photo`)."""
    from PIL import Image

    with Image.open(path) as opened:
        w, h = opened.size
    return (h, w) if height is None else (int(height), max(1, int(w * height / h)))


def read_photo(path, height=None):
    """The image at `path` as float32 RGB `(h, w, 3)` in [0, 255], resized to `height` (the
    width keeps the aspect ratio, as the book's `img_width = int(width * height / h)`)."""
    import numpy as np
    from PIL import Image

    h, w = image_size(path, height)
    with Image.open(path) as opened:
        image = opened.convert("RGB")
        if (image.height, image.width) != (h, w):
            image = image.resize((w, h), Image.Resampling.BILINEAR)
        return np.asarray(image, dtype="float32")


def write_scalars(log_dir, tag, values, start=0):
    """`values` as the TensorBoard scalar `tag`, at steps `start`, `start + 1`, ..."""
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        for i, value in enumerate(values):
            tf.summary.scalar(tag, float(value), step=start + i)
    writer.close()
