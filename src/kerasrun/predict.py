"""`predict`: a finished run's model on your own images or texts, one line per input.

predict run=outputs/runs/<run> inputs=[cat.jpg,photos/]          # files, folders (recursive)
predict run=<run> inputs=[photos/] top_k=1 output=predictions.csv
predict run=<imdb_raw run> 'inputs=[review.txt,"A wonderful film."]'
predict backbone=ResNet50 inputs=[cat.jpg]                       # keras.applications, ImageNet

Each input gets one line, its `top_k` most probable classes first:

    photos/cat.1.jpg  cats 97% | dogs 3%

A file that is not an image is reported on its line (`error: not an image`) and the others
are still predicted; only when no input at all can be read is it an `Error:` (exit code 2).
Images are read exactly as training read them (`kerasrun.rundir.load_images`); the model does
its own preprocessing. A `data=imdb_raw` run reads `<run>/vocabulary.txt`, the vocabulary its
`TextVectorization` was adapted to (see `rundir/vocabulary.py`).

Each batch of `batch_size` inputs is one `model.predict_on_batch` call: the same outputs as
`model.predict`, without the data iterator `predict` builds on every call (on two CPU cores
that costs over 100 ms for a single image, against 2-3 ms: docs/predict.md).
"""

import csv
import json
import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import hydra

from kerasrun.config.compose import conf_dir, plain
from kerasrun.config.hydra_errors import one_line_errors
from kerasrun.errors import ConfigError, require
from kerasrun.rundir.layout import VOCABULARY
from kerasrun.rundir.run import (
    exit_on_user_error,
    image_files,
    load_images,
    open_run,
    require_classifier,
)
from kerasrun.rundir.vocabulary import load_vocabulary
from kerasrun.training import runtime

log = logging.getLogger("kerasrun")

# Data whose model takes word indices from a TextVectorization adapted on the training texts.
TEXT_DATA = ("imdb_raw",)
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
TEXT_LABEL_WIDTH = 40  # a literal text is shown quoted, cut to this many characters


@one_line_errors
@hydra.main(config_path=str(conf_dir()), config_name="predict", version_base="1.3")
@exit_on_user_error
def main(cfg):
    """Prints one line per input; with `output=`, writes every class's probability to a CSV.

    A user mistake (no run, no inputs, a bad key, no readable input) is one `Error:` line and
    exit code 2, before the model is loaded.
    """
    options = check_options(plain(cfg))
    predictor, items = prepare(options)
    start = time.perf_counter()
    log.info(predictor.description)
    top_k = options["top_k"] or min(3, len(predictor.class_names))
    width = min(max(len(item.label) for item in items), 60)
    rows = []
    for row in predict_items(predictor, items, options["batch_size"]):
        print_row(row, predictor.class_names, top_k, width)
        rows.append(row)
    predicted = sum(row.error is None for row in rows)
    require(
        predicted,
        f"inputs must hold at least one readable {predictor.kind}. Received: {len(rows)} "
        f"input{'s' if len(rows) > 1 else ''}, none readable ({rows[0].label}: {rows[0].error}). "
        "Check the files (inputs=[cat.jpg,photos/]).",
    )
    errors = len(rows) - predicted
    log.info(
        f"{predicted} prediction{'s' if predicted != 1 else ''}"
        + (f", {errors} input{'s' if errors != 1 else ''} not read" if errors else "")
        + f" in {time.perf_counter() - start:.1f} s"
    )
    if options["output"]:
        write_csv(options["output"], rows, predictor)
        log.info(f"Predictions written to {options['output']}")


# --- options --------------------------------------------------------------------------------------


def check_options(config):
    """The plain config of conf/predict.yaml, checked: one clear line per mistake."""
    options = dict(config)
    run, backbone = options["run"], options["backbone"]
    require(
        (run is None) != (backbone is None),
        "predict needs either run (a run directory written by train) or backbone (an ImageNet "
        f"classifier), not {'both' if run is not None else 'neither'}. Received: run={run!r}, "
        f"backbone={backbone!r}. Set e.g. run=outputs/runs/<run> (`runs` lists them) or "
        "backbone=ResNet50.",
    )
    require(
        backbone is not None or options["weights"] == "imagenet",
        "weights applies to backbone= only: a run's model has its own weights. Received: "
        f"weights={options['weights']!r}. Remove weights=, or choose the .keras file with "
        "checkpoint=.",
    )
    inputs = options["inputs"]
    options["inputs"] = [inputs] if isinstance(inputs, (str, int, float)) else list(inputs or [])
    for key, example in (("top_k", 3), ("batch_size", 32)):
        value = options[key]
        if value is None and key == "top_k":
            continue
        require(
            isinstance(value, int) and not isinstance(value, bool) and value >= 1,
            f"{key} must be a positive integer{' or null' if key == 'top_k' else ''}. "
            f"Received: {key}={value!r}. Set e.g. {key}={example}.",
        )
    output = options["output"]
    if output is not None:
        path = Path(os.path.expanduser(str(output)))
        require(
            path.suffix.lower() == ".csv" and not path.is_dir(),
            f"output must be the path of a .csv file to write. Received: output={output!r}. "
            "Set e.g. output=predictions.csv, or leave it out to print only.",
        )
        options["output"] = path
    return options


def _check_top_k(top_k, class_names):
    if top_k is None or not class_names:  # regression: one value, no classes to rank
        return
    require(
        top_k <= len(class_names),
        f"top_k must be at most the number of classes ({len(class_names)}). Received: "
        f"top_k={top_k}. Set e.g. top_k={min(3, len(class_names))}, or leave it out.",
    )


# --- what to predict with -------------------------------------------------------------------------


@dataclass
class Item:
    """One input: `label` as the user sees it, `source` a file (`Path`) or a literal text.

    `error` says why it cannot be predicted, when that is known before the model runs.
    """

    label: str
    source: object
    error: str = None


@dataclass
class Predictor:
    """A model, how to read one input for it, and what its outputs mean.

    Attributes:
        description: the line printed before the predictions.
        kind: what one input is, in words ("image", "text").
        task: "binary", "multiclass" or "regression".
        class_names: one name per class (empty for regression).
        read: `read(item) -> example`; raises `UnreadableInput`.
        predict: `predict(list of examples) -> probabilities (n, classes)`, or values `(n,)`
            for regression.
    """

    description: str
    kind: str
    task: str
    class_names: list
    read: object
    predict: object


class UnreadableInput(Exception):
    """An input that cannot be predicted; its message is shown on the input's line."""


def prepare(options):
    """`(Predictor, items)`: everything checked before the model is loaded (the slow part)."""
    if options["backbone"] is not None:
        return imagenet_predictor(options)
    run = open_run(options["run"], options["checkpoint"])
    require_classifier(run, "predict")
    info = run.config.get("data_info")
    data_name = (run.config.get("data") or {}).get("name")
    require(
        isinstance(info, dict) and info.get("task"),
        f"{run.path / 'config.yaml'} has no data_info (the task and class names): the run "
        "was made by an older train. Train it again to predict with it.",
    )
    _check_top_k(options["top_k"], run.class_names)
    if data_name in TEXT_DATA:
        return text_predictor(run, info, options)
    shape = info.get("input_shape") or []
    require(
        len(shape) == 3,
        f"predict is not supported yet for data={data_name}: it predicts on image files "
        f"(image runs) and on texts (data={' or '.join(TEXT_DATA)} runs). Received: "
        f"run='{run.path}', whose model takes inputs of shape {tuple(shape)}. Use `evaluate` "
        "to score it on its own data.",
    )
    return image_predictor(run, info, options)


def _load(run):
    runtime.import_tensorflow_quietly()
    log.info(f"Loading {run.model_path}")
    try:
        return run.load_model()
    except Exception as e:  # a truncated or foreign .keras file: the user picks another
        raise ConfigError(
            f"{run.model_path} cannot be loaded ({type(e).__name__}: {str(e).splitlines()[0]}). "
            "Choose another checkpoint (checkpoint=last, or checkpoint=<file.keras>)."
        ) from None


def _probabilities(outputs, task):
    """`(n, classes)` float64 probabilities; a binary model's sigmoid p becomes `[1 - p, p]`."""
    import numpy as np

    outputs = np.asarray(outputs, "float64").reshape(len(outputs), -1)
    if task == "regression":
        return outputs[:, 0]
    if outputs.shape[1] == 1:
        return np.concatenate([1.0 - outputs, outputs], axis=1)
    return outputs


def image_predictor(run, info, options):
    """The run's model on image files, read as its training pipeline read them."""
    import numpy as np

    items = image_items(options["inputs"])
    model = _load(run)
    known = model.input_shape[1:]
    shape = tuple(known) if None not in known else tuple(info["input_shape"])

    def predict(images):
        return _probabilities(model.predict_on_batch(np.stack(images)), info["task"])

    names = run.class_names
    return (
        Predictor(
            description=_describe(run.model_path, info["task"], names, shape),
            kind="image",
            task=info["task"],
            class_names=names,
            read=lambda item: read_image(item.source, shape),
            predict=predict,
        ),
        items,
    )


def _describe(model_path, task, class_names, shape):
    classes = f"{len(class_names)} classes ({', '.join(class_names[:10])}" + (
        ", ...)" if len(class_names) > 10 else ")"
    )
    what = "regression" if task == "regression" else classes
    return f"Model: {model_path} · {what} · input {'x'.join(map(str, shape))}"


def image_items(inputs):
    """An `Item` per image file of `inputs`; those Pillow cannot identify carry their error.

    Opening a file reads only its header: a folder holding a stray text file costs nothing,
    and when no input is an image the user hears it before the model loads.
    """
    from PIL import Image, UnidentifiedImageError

    items = []
    for path in image_files(inputs):
        error = None
        try:
            with Image.open(path):
                pass
        except UnidentifiedImageError:
            error = "not an image"
        except OSError as e:
            error = f"cannot be read ({e.strerror or e})"
        items.append(Item(str(path), path, error))
    if not any(item.error is None for item in items):
        first = items[0]
        raise ConfigError(
            f"inputs must hold at least one image that can be read. Received: {len(items)} "
            f"file{'s' if len(items) > 1 else ''}, none an image ({first.label}: {first.error})."
            " Check the files (inputs=[cat.jpg,photos/])."
        )
    return items


def read_image(path, shape):
    """One image as `load_images` reads it for training, or `UnreadableInput`."""
    try:
        return load_images([path], shape)[0]
    except ConfigError as e:  # e.g. a truncated JPEG: the header was fine, the pixels are not
        reason = str(e).split("(", 1)[-1].rsplit(")", 1)[0]
        raise UnreadableInput(f"cannot be read ({reason})") from None


# --- texts ----------------------------------------------------------------------------------------


def text_items(inputs):
    """An `Item` per text: a file, each .txt file of a folder (recursively), or the text itself.

    Raises:
        ConfigError: no input, or an input that looks like a path (a .txt name, a "/") but
            does not exist.
    """
    require(
        inputs,
        "inputs must name at least one text: .txt files, folders of them, or the texts "
        "themselves. Received: inputs=[]. Set e.g. 'inputs=[review.txt,\"A wonderful film.\"]'.",
    )
    items = []
    for value in inputs:
        text = str(value)
        path = Path(os.path.expanduser(text))
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.txt") if not p.name.startswith("."))
            require(
                found,
                f"inputs: the folder {text} holds no .txt file. Received: inputs={inputs}. "
                "Name .txt files, folders of them, or the texts themselves.",
            )
            items += [Item(str(p), p) for p in found]
        elif path.is_file():
            items.append(Item(text, path))
        else:
            require(
                not (text.lower().endswith(".txt") or os.sep in text) or " " in text.strip(),
                f"inputs: {text} does not exist. Received: inputs={inputs}. Fix the path, or "
                "pass the text itself (e.g. 'inputs=[\"A wonderful film.\"]').",
            )
            short = text if len(text) <= TEXT_LABEL_WIDTH else text[: TEXT_LABEL_WIDTH - 3] + "..."
            items.append(Item(json.dumps(short, ensure_ascii=False), text))
    return items


def read_text(item):
    """The text of `item` as training read reviews: UTF-8 or UTF-16 by its byte-order mark
    (bad bytes replaced, the mark dropped), no `<br />`."""
    from kerasrun.data.raw_text import decode_review

    if isinstance(item.source, str):
        text = item.source
    else:
        try:
            text, _ = decode_review(item.source.read_bytes())
        except OSError as e:
            raise UnreadableInput(f"cannot be read ({e.strerror or e})") from None
    return text.replace("<br />", " ")  # as kerasrun.data.raw_text.read_reviews


def text_predictor(run, info, options):
    """The run's model on texts, vectorized with the run's own vocabulary."""
    import numpy as np

    items = text_items(options["inputs"])
    vocabulary = load_vocabulary(run.path)
    data = run.config["data"]
    model = _load(run)
    import keras

    vectorizer = keras.layers.TextVectorization(
        max_tokens=data["max_tokens"],
        output_sequence_length=data["output_sequence_length"],
        output_mode="int",
        vocabulary=vocabulary,
    )

    def predict(texts):
        indices = np.asarray(vectorizer(np.asarray(texts, dtype=object)), "int32")
        return _probabilities(model.predict_on_batch(indices), info["task"])

    shape = info.get("input_shape") or [data["output_sequence_length"]]
    return (
        Predictor(
            description=_describe(run.model_path, info["task"], run.class_names, shape)
            + f" word indices · vocabulary {run.path / VOCABULARY} ({len(vocabulary):,})",
            kind="text",
            task=info["task"],
            class_names=run.class_names,
            read=read_text,
            predict=predict,
        ),
        items,
    )


# --- ImageNet classifiers -------------------------------------------------------------------------


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


def _check_backbone(backbone, weights):
    from kerasrun.models.pretrained import backbone_key

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


def _build_classifier(key, weights):
    import keras

    from kerasrun.models.pretrained import BACKBONES

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
        if weights == "imagenet" and ("URL fetch failure" in message or "corrupted" in message):
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


def imagenet_predictor(options):
    """A `keras.applications` ImageNet classifier, with its own `preprocess_input`."""
    import numpy as np

    key, weights = _check_backbone(options["backbone"], options["weights"])
    items = image_items(options["inputs"])
    class_names = imagenet_class_names()
    _check_top_k(options["top_k"], class_names)
    runtime.import_tensorflow_quietly()
    import keras

    log.info(f"Loading {key} ({'ImageNet weights' if weights == 'imagenet' else weights})")
    model = _build_classifier(key, weights)
    preprocess_input = getattr(keras.applications, PREPROCESS_MODULES[key]).preprocess_input
    shape = tuple(model.input_shape[1:])

    def predict(images):
        batch = preprocess_input(np.stack(images))  # modifies its own copy of the pixels
        return _probabilities(model.predict_on_batch(batch), "multiclass")

    source = "ImageNet weights" if weights == "imagenet" else weights
    return (
        Predictor(
            description=f"Model: keras.applications.{key} ({source}) · 1000 ImageNet classes · "
            f"input {'x'.join(map(str, shape))}",
            kind="image",
            task="multiclass",
            class_names=class_names,
            read=lambda item: read_image(item.source, shape),
            predict=predict,
        ),
        items,
    )


# --- predicting and showing -----------------------------------------------------------------------


@dataclass
class Row:
    """One input's result: `probabilities` (classification) or `value` (regression), or `error`.

    `label` is what the console shows; `input` what the CSV holds (the path, or the whole text).
    """

    label: str
    input: str = ""
    probabilities: object = None
    value: float = None
    error: str = None


def predict_items(predictor, items, batch_size):
    """Yields a `Row` per item, in order, predicting `batch_size` readable inputs at a time."""
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        examples, errors = [], {}
        for i, item in enumerate(chunk):
            if item.error is not None:
                errors[i] = item.error
                continue
            try:
                examples.append(predictor.read(item))
            except UnreadableInput as e:
                errors[i] = str(e)
        outputs = iter(predictor.predict(examples) if examples else ())
        for i, item in enumerate(chunk):
            row = Row(item.label, str(item.source))
            if i in errors:
                row.error = errors[i]
            elif predictor.task == "regression":
                row.value = float(next(outputs))
            else:
                row.probabilities = next(outputs)
            yield row


def format_row(row, class_names, top_k):
    """`cats 97% | dogs 3%` (the `top_k` most probable), the predicted value, or the error."""
    if row.error is not None:
        return f"error: {row.error}"
    if row.probabilities is None:
        return f"{row.value:.4g}"
    order = sorted(range(len(class_names)), key=lambda i: -row.probabilities[i])[:top_k]
    return " | ".join(f"{class_names[i]} {_percent(row.probabilities[i])}" for i in order)


def _percent(p):
    """`97%`; near 0 or 1 one decimal (`0.4%`, `99.6%`, `<0.1%`): a doubt never reads as none."""
    if p in (0, 1) or 0.01 <= p <= 0.99:
        return f"{p:.0%}"
    if p < 0.001 or p > 0.999:
        return "<0.1%" if p < 0.5 else ">99.9%"
    return f"{p:.1%}"


def print_row(row, class_names, top_k, width):
    from kerasrun.console import console

    console.print(
        f"{row.label:<{width}}  {format_row(row, class_names, top_k)}",
        markup=False,
        highlight=False,
        soft_wrap=True,
        style="yellow" if row.error else None,
    )


def write_csv(path, rows, predictor):
    """`file, predicted, <one probability column per class>, error` (regression: `value`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    first = "file" if predictor.kind == "image" else "input"
    regression = predictor.task == "regression"
    names = predictor.class_names
    columns = ["prediction"] if regression else ["predicted", *_unique(names)]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([first, *columns, "error"])
        for row in rows:
            if row.error is not None:
                cells = [""] * len(columns)
            elif regression:
                cells = [repr(row.value)]
            else:
                best = max(range(len(names)), key=lambda i: row.probabilities[i])
                cells = [names[best], *(f"{p:.6g}" for p in row.probabilities)]
            writer.writerow([row.input, *cells, row.error or ""])


def _unique(names):
    """Column names: a repeated class name (ImageNet has two "crane"s) gets `_<index>`."""
    from collections import Counter

    repeated = {name for name, n in Counter(names).items() if n > 1}
    return [f"{name}_{i}" if name in repeated else name for i, name in enumerate(names)]


if __name__ == "__main__":
    main()
