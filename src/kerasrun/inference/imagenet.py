"""`predict backbone=ResNet50`: a `keras.applications` ImageNet classifier, with its own
`preprocess_input` and ImageNet's 1,000 class names, read from Keras's cache.
"""

import json
import logging
import os
import warnings
from pathlib import Path

from kerasrun.errors import ConfigError, download_failed, require
from kerasrun.inference.inputs import read_image
from kerasrun.inference.predictors import Predictor, check_top_k, probabilities
from kerasrun.models.pretrained import BACKBONES, backbone_key
from kerasrun.training import runtime

log = logging.getLogger("kerasrun")

WEIGHTS_SUFFIXES = (".weights.h5", ".h5", ".hdf5", ".keras")  # what Model.load_weights reads
# keras.applications' ImageNet class names, as `imagenet_utils.decode_predictions` fetches them.
CLASS_INDEX_FILE = "imagenet_class_index.json"
CLASS_INDEX_URL = (
    "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json"
)
CLASS_INDEX_MD5 = "c2c37ea517e94d9795004a39431a14cb"
# The keras.applications module holding each backbone's own preprocess_input.
PREPROCESS_MODULES = {
    "VGG16": "vgg16",
    "VGG19": "vgg19",
    "ResNet50": "resnet50",
    "ResNet50V2": "resnet_v2",
    "MobileNetV2": "mobilenet_v2",
    "Xception": "xception",
    "InceptionV3": "inception_v3",
    "EfficientNetB0": "efficientnet",
    "DenseNet121": "densenet",
    "ConvNeXtTiny": "convnext",
}


def keras_home():
    """Keras's cache folder: `$KERAS_HOME`, else `~/.keras` (as keras.utils.get_file)."""
    return Path(os.environ.get("KERAS_HOME") or os.path.expanduser("~/.keras"))


def imagenet_class_names():
    """ImageNet's 1,000 class names, from `<KERAS_HOME>/models/imagenet_class_index.json`.

    The file is the one `keras.applications.imagenet_utils.decode_predictions` reads (then
    downloaded once, with its checksum checked); it is read here directly, so that a copy put
    there by hand on a machine without internet works as well. The top classes are then
    picked from the probabilities as `decode_predictions` picks them.

    Raises:
        ConfigError: the file is missing and cannot be downloaded, or is not a class index.
    """
    path = keras_home() / "models" / CLASS_INDEX_FILE
    if not path.is_file():
        # Only Keras's downloader, no model: the set-up (imagenet_predictor's) comes after.
        runtime.import_tensorflow_quietly()
        import keras

        try:
            keras.utils.get_file(
                CLASS_INDEX_FILE,
                CLASS_INDEX_URL,
                cache_subdir="models",
                file_hash=CLASS_INDEX_MD5,
                cache_dir=str(keras_home()),  # where it is looked for above, whatever Keras read
            )
        except Exception as e:
            if not download_failed(e):
                raise
            reason = str(e).split(" -- ")[-1].splitlines()[0] if str(e) else type(e).__name__
            raise ConfigError(
                f"ImageNet's class names ({CLASS_INDEX_FILE}) are missing and could not be "
                f"downloaded ({reason}). Received: backbone=... without {path}. Copy "
                f"{CLASS_INDEX_FILE} (from {CLASS_INDEX_URL}) to {path}."
            ) from None
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
        names = [str(index[str(i)][1]) for i in range(1000)]
    except (ValueError, KeyError, IndexError, TypeError, OSError) as e:
        raise ConfigError(
            f'{path} must be Keras\'s ImageNet class index ({{"0": ["n01440764", "tench"], '
            f'...}} up to "999"). Received: a file that is not ({type(e).__name__}: {e}). '
            f"Delete it to download it again, or copy it from {CLASS_INDEX_URL}."
        ) from None
    return names


def check_backbone(backbone, weights):
    """`(key, weights)`: the `BACKBONES` key of `backbone`, and `"imagenet"` or the path of an
    existing weights file of the whole classifier; else a `ConfigError`."""
    key = backbone_key(backbone, key="backbone")
    if weights != "imagenet":
        path = Path(os.path.expanduser(str(weights)))
        require(
            weights is not None and path.is_file() and str(path).endswith(WEIGHTS_SUFFIXES),
            "weights must be imagenet or an existing weights file of the whole classifier "
            f"({', '.join(WEIGHTS_SUFFIXES)}). Received: weights={weights!r}"
            f"{', which does not exist' if weights is not None and not path.is_file() else ''}."
            " Set weights=imagenet, or fix the path.",
        )
        weights = str(path)
    return key, weights


def build_classifier(key, weights):
    """`keras.applications.<key>(weights=weights, include_top=True)`; a download that fails
    offline, or a weights file of another model, is a `ConfigError` saying what to do."""
    import keras

    constructor = getattr(keras.applications, BACKBONES[key].constructor)
    try:
        # A file of another model makes Keras warn once per layer before it fails: keep the
        # warnings, and show them (once each) only when the weights did load.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = constructor(weights=weights, include_top=True)
        for message in dict.fromkeys(str(w.message).splitlines()[0] for w in caught):
            log.warning(message)
        return model
    except Exception as e:
        message = str(e)
        if weights == "imagenet" and download_failed(e):
            urls = [w.rstrip(":") for w in message.split() if w.startswith(("http", "https"))]
            name = os.path.basename(urls[0]) if urls else f"the {key} ImageNet weights file"
            raise ConfigError(
                f"The ImageNet weights of {key} could not be downloaded "
                f"({message.split(' -- ')[-1].splitlines()[0]}). Received: weights=imagenet. "
                f"Put {name} under {keras_home() / 'models'}/, or set weights=/path/to/{name}."
            ) from None
        if weights != "imagenet":  # a file of another model, or not a weights file at all
            raise ConfigError(
                f"weights must be a weights file of {key}'s ImageNet classifier (include_top, "
                f"1,000 classes). Received: weights='{weights}', which does not fit "
                f"({type(e).__name__}: {message.splitlines()[0] if message else ''}). Use the "
                f"file Keras downloads for {key}, or one saved from "
                f"keras.applications.{key}().save_weights(...)."
            ) from None
        raise


def imagenet_predictor(key, weights, top_k=None):
    """A `keras.applications` ImageNet classifier, with its own `preprocess_input`.

    Args:
        key: a key of `BACKBONES` (see `check_backbone`).
        weights: `"imagenet"` or the path of a weights file of the whole classifier.
        top_k: the classes to show per input, checked against ImageNet's 1,000.
    """
    import numpy as np

    class_names = imagenet_class_names()
    check_top_k(top_k, class_names)
    runtime.set_up_command()
    import keras  # lazy: TensorFlow, after the set-up

    log.info(f"Loading {key} ({'ImageNet weights' if weights == 'imagenet' else weights})")
    model = build_classifier(key, weights)
    preprocess_input = getattr(keras.applications, PREPROCESS_MODULES[key]).preprocess_input
    shape = tuple(model.input_shape[1:])

    def predict(images):
        batch = preprocess_input(np.stack(images))  # modifies its own copy of the pixels
        return probabilities(model.predict_on_batch(batch), "multiclass")

    source = "ImageNet weights" if weights == "imagenet" else weights
    return Predictor(
        description=f"Model: keras.applications.{key} ({source}) · 1000 ImageNet classes · "
        f"input {'x'.join(map(str, shape))}",
        kind="image",
        task="multiclass",
        class_names=class_names,
        read=lambda item: read_image(item.source, shape),
        predict=predict,
    )
