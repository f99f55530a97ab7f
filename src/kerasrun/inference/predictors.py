"""A run's model ready to predict on new inputs: how to read one input, what its outputs mean.

    predictor = image_predictor(run, run.config["data_info"])
    for row in predict_items(predictor, image_items(["photos/"]), batch_size=32):
        print(row.label, format_row(row, predictor.class_names, top_k=3))

Each batch of `batch_size` inputs is one `model.predict_on_batch` call: the same outputs as
`model.predict`, without the data iterator `predict` builds on every call (on two CPU cores
that costs over 100 ms for a single image, against 2-3 ms: docs/predict.md).
"""

import logging
from dataclasses import dataclass

from kerasrun.errors import ConfigError, require
from kerasrun.inference.inputs import UnreadableInput, read_image, read_text
from kerasrun.inference.rows import Row
from kerasrun.rundir.layout import VOCABULARY
from kerasrun.rundir.vocabulary import load_vocabulary
from kerasrun.training import runtime

log = logging.getLogger("kerasrun")

# Data whose model takes word indices from a TextVectorization adapted on the training texts.
TEXT_DATA = ("imdb_raw",)


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


def check_top_k(top_k, class_names):
    """A `ConfigError` when `top_k` asks for more classes than the model has."""
    if top_k is None or not class_names:  # regression: one value, no classes to rank
        return
    require(
        top_k <= len(class_names),
        f"top_k must be at most the number of classes ({len(class_names)}). Received: "
        f"top_k={top_k}. Set e.g. top_k={min(3, len(class_names))}, or leave it out.",
    )


def load_run_model(run):
    """The run's model; a file Keras cannot load is a `ConfigError` naming another choice."""
    runtime.set_up_command(run.config)
    log.info(f"Loading {run.model_path}")
    try:
        return run.load_model()
    except Exception as e:  # a truncated or foreign .keras file: the user picks another
        raise ConfigError(
            f"{run.model_path} cannot be loaded ({type(e).__name__}: {str(e).splitlines()[0]}). "
            "Choose another checkpoint (checkpoint=last, or checkpoint=<file.keras>)."
        ) from None


def probabilities(outputs, task):
    """`(n, classes)` float64 probabilities; a binary model's sigmoid p becomes `[1 - p, p]`.

    Regression: the `(n,)` predicted values.
    """
    import numpy as np

    outputs = np.asarray(outputs, "float64").reshape(len(outputs), -1)
    if task == "regression":
        return outputs[:, 0]
    if outputs.shape[1] == 1:
        return np.concatenate([1.0 - outputs, outputs], axis=1)
    return outputs


def describe(model_path, task, class_names, shape):
    """`Model: <file> · 2 classes (cats, dogs) · input 32x32x3`."""
    classes = f"{len(class_names)} classes ({', '.join(class_names[:10])}" + (
        ", ...)" if len(class_names) > 10 else ")"
    )
    what = "regression" if task == "regression" else classes
    return f"Model: {model_path} · {what} · input {'x'.join(map(str, shape))}"


def image_predictor(run, info):
    """The run's model on image files, read as its training pipeline read them.

    Args:
        run: an opened run (`kerasrun.rundir.run.open_run`).
        info: its config's `data_info` (the task, the input shape).
    """
    import numpy as np

    model = load_run_model(run)
    known = model.input_shape[1:]
    shape = tuple(known) if None not in known else tuple(info["input_shape"])

    def predict(images):
        return probabilities(model.predict_on_batch(np.stack(images)), info["task"])

    names = run.class_names
    return Predictor(
        description=describe(run.model_path, info["task"], names, shape),
        kind="image",
        task=info["task"],
        class_names=names,
        read=lambda item: read_image(item.source, shape),
        predict=predict,
    )


def text_predictor(run, info):
    """The run's model on texts, vectorized with the run's own vocabulary (vocabulary.txt).

    Raises:
        ConfigError: the run has no vocabulary.txt.
    """
    import numpy as np

    vocabulary = load_vocabulary(run.path)
    data = run.config["data"]
    model = load_run_model(run)
    import keras

    vectorizer = keras.layers.TextVectorization(
        max_tokens=data["max_tokens"],
        output_sequence_length=data["output_sequence_length"],
        output_mode="int",
        vocabulary=vocabulary,
    )

    def predict(texts):
        indices = np.asarray(vectorizer(np.asarray(texts, dtype=object)), "int32")
        return probabilities(model.predict_on_batch(indices), info["task"])

    shape = info.get("input_shape") or [data["output_sequence_length"]]
    return Predictor(
        description=describe(run.model_path, info["task"], run.class_names, shape)
        + f" word indices · vocabulary {run.path / VOCABULARY} ({len(vocabulary):,})",
        kind="text",
        task=info["task"],
        class_names=run.class_names,
        read=read_text,
        predict=predict,
    )


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
