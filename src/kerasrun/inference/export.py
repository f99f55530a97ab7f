"""Exporting a Keras model for serving, and checking the export with its own runtime.

    record = export_and_check(model, "tflite", "export/tflite", inputs, atol=1e-4)

Each format has an exporter (`EXPORTERS`: model, path → the file or folder written) and a
predictor (`PREDICTORS`: path, inputs → what the format's own runtime predicts): the Keras
model and the export predict on the same inputs, and `compare` gives the largest absolute
difference. Above `atol` the export is renamed `*.mismatch`, never left where a server would
pick it up.
"""

import contextlib
import importlib.util
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

from kerasrun.console import one_line
from kerasrun.errors import ConfigError, require
from kerasrun.inference.precision import compute_dtype, float32_copy
from kerasrun.models import load_model
from kerasrun.models.pretrained import custom_objects
from kerasrun.rundir.layout import EXPORT_RECORD, EXPORTS
from kerasrun.rundir.results import write_json
from kerasrun.training import runtime

log = logging.getLogger("kerasrun")

# format → (the file or folder written, the runtime that loads it back for the check)
FORMATS = {
    "keras": ("model.keras", "keras.models.load_model (safe mode)"),
    "saved_model": ("model", "tf.saved_model.load (serving_default signature)"),
    "tflite": ("model.tflite", "tf.lite.Interpreter"),
    "onnx": ("model.onnx", "onnxruntime.InferenceSession"),
}
# Formats written from a float32 copy of a mixed precision model (same weights): TFLite's
# built-in kernels have no float16 MatMul or Conv (the converter stops: "needs flex ops"), and
# ONNX Runtime's float16 kernels round differently from TensorFlow's (2e-3 on a regression).
# keras and saved_model run on TensorFlow, as the model trained: they keep its policies.
FLOAT32_FORMATS = ("tflite", "onnx")
# The Python packages format=onnx needs beyond TensorFlow (the `onnx` extra of pyproject.toml).
ONNX_PACKAGES = ("tf2onnx", "onnxruntime")
MISMATCH_SUFFIX = ".mismatch"
# export.json's `inputs` when the check did not use the run's data.
RANDOM_SOURCE = "random in [0, 255] (random_inputs=true), not the run's data"
# <output>/export.json: what was exported and how close it came (rundir/layout.py does not name
# it: an export may go anywhere); <run>/export/<format>/ is where it goes by default.


def export_dir(run_dir, fmt):
    """`<run>/export/<format>/`: where `export-model` writes unless given `output=`."""
    return Path(run_dir) / EXPORTS / fmt


def check_format(fmt):
    """`fmt` if it is a known format whose packages are installed; else a `ConfigError`."""
    require(
        fmt in FORMATS,
        f"format must be one of {', '.join(FORMATS)}. Received: format={fmt}. "
        "Set e.g. format=tflite (format=??? means it was not given).",
    )
    missing = [p for p in ONNX_PACKAGES if importlib.util.find_spec(p) is None]
    require(
        fmt != "onnx" or not missing,
        f"format=onnx needs the packages {' and '.join(ONNX_PACKAGES)} (TensorFlow → ONNX, and "
        f"the runtime that checks the export); {', '.join(missing)} is not installed. Received: "
        'format=onnx. Install them with pip install -e ".[onnx]", or choose another format.',
    )
    return fmt


def export_model(
    run, fmt, output_dir, *, samples=8, atol=1e-4, data_overrides=None, random_inputs=False
):
    """Exports `run`'s model as `fmt` into `output_dir`, loads it back and compares predictions.

    Args:
        run: a `kerasrun.rundir.run.Run` (see `open_run`).
        fmt: a key of `FORMATS`.
        output_dir: where the model file (or SavedModel folder) and `export.json` go.
        samples: how many examples of the run's data both models predict on.
        atol: the largest allowed absolute difference between the two predictions.
        data_overrides: `{"root": ..., "path": ...}` for the run's data on this machine.
        random_inputs: compare on random inputs instead of the run's data (see
            `sample_inputs`).

    Returns:
        The record written to `output_dir/export.json` (see `export_and_check`), with the
        `checkpoint` exported and where the `inputs` came from.

    Raises:
        ConfigError: the run's data cannot be built here and `random_inputs` is false.
    """
    runtime.set_up_command(run.config)
    model = load_for_inference(run.model_path)
    log.info(f"Model: {model.name} · {model.count_params():,} parameters · from {run.model_path}")
    inputs, source = sample_inputs(run, model, samples, data_overrides or {}, random_inputs)
    log.info(f"Check inputs: {len(inputs)} examples, {source}")
    about = {"inputs": source, "checkpoint": str(Path(run.model_path).resolve())}
    return export_and_check(model, fmt, output_dir, inputs, atol=atol, about=about)


def export_and_check(model, fmt, output_dir, inputs, *, atol=1e-4, about=None):
    """Writes `model` as `fmt` into `output_dir`, loads it back, compares it on `inputs`.

    Args:
        model: a Keras model (raw inputs in, as `train` saves it).
        fmt: a key of `FORMATS`.
        output_dir: the folder of the model file (or SavedModel folder) and `export.json`.
        inputs: a batch both models predict on.
        atol: the largest allowed absolute difference; above it the export is renamed
            `*.mismatch` and its status is `"mismatch"`.
        about: more keys for `export.json` (where the inputs came from, ...).

    Returns:
        The record written to `output_dir/export.json`: `format`, `path`, `size_bytes`,
        `max_abs_diff`, `atol`, `samples`, `runtime`, `wall_time_s` (writing the export),
        `check_time_s` (loading it back and predicting), `versions`, `status` (`"ok"` or
        `"mismatch"`), and `about`.
    """
    import keras
    import tensorflow as tf

    name, checker = FORMATS[fmt]
    output_dir = Path(output_dir).resolve()
    path = output_dir / name
    _clear_previous(output_dir, path)
    trained = model
    if fmt in FLOAT32_FORMATS:
        model = float32_copy(model)
    expected = model.predict(inputs, verbose=0)

    start = time.perf_counter()
    EXPORTERS[fmt](model, path)
    wall_time_s = time.perf_counter() - start
    size = size_bytes(path)
    log.info(f"Exported {fmt}: {path} · {size:,} bytes · {wall_time_s:.1f} s")

    start = time.perf_counter()
    actual = PREDICTORS[fmt](path, inputs)
    check_time_s = time.perf_counter() - start
    diff, ok = compare(expected, actual, atol)
    log.info(
        f"Loaded back with {checker}: max |{fmt} - keras| = {diff:.3g} on {len(inputs)} "
        f"examples (atol {atol:g}): {'ok' if ok else 'MISMATCH'}"
    )
    if not ok:  # never leave a wrong model where a server would pick it up
        path = _set_aside(path)
    precision = {"compute_dtype": compute_dtype(model)}
    if model is not trained:
        # What float32 changes, for the record: float16's rounding in the trained model.
        rounding, _ = compare(trained.predict(inputs, verbose=0), expected, atol)
        precision["max_abs_diff_to_trained"] = rounding
        log.info(
            f"The {fmt} export computes in float32, with the weights of the model, which "
            f"computes in {compute_dtype(trained)}: the check compares it with Keras in float32. "
            f"Keras float32 vs {compute_dtype(trained)}: max diff {rounding:.3g} (rounding)"
        )
    record = {
        "format": fmt,
        "path": str(path),
        "size_bytes": size,
        "max_abs_diff": diff,
        "atol": atol,
        "samples": len(inputs),
        **precision,
        **(about or {}),
        "runtime": checker,
        "wall_time_s": round(wall_time_s, 3),
        "check_time_s": round(check_time_s, 3),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
        "status": "ok" if ok else "mismatch",
    }
    write_json(output_dir / EXPORT_RECORD, record)
    log.info(f"Wrote {output_dir / EXPORT_RECORD}")
    return record


def load_for_inference(path):
    """The `.keras` file at `path` in safe mode, uncompiled: no optimizer state to carry along.

    Exports serve predictions; the optimizer's slots (two per weight with Adam) would triple the
    size of the `.keras` copy for nothing.
    """
    import keras

    return keras.models.load_model(
        path, custom_objects=custom_objects(), safe_mode=True, compile=False
    )


def sample_inputs(run, model, samples, data_overrides, random=False):
    """`(inputs, description)`: the first `samples` inputs of the run's test split.

    The validation, then the training split stand in when there is no test split. With
    `random`, random inputs of the model's input shape in [0, 255] instead (for a run whose
    data is not on this machine): they check the arithmetic of the export, not its behaviour
    on real examples, and the log and `export.json` say so.

    Raises:
        ConfigError: without `random`, the run's data cannot be built here, or is empty.
    """
    import numpy as np

    overrides = {k: v for k, v in data_overrides.items() if v is not None}
    if random:
        log.warning(
            "random_inputs=true: the check compares the export on random inputs in [0, 255], "
            "not on the run's data. It shows the export's arithmetic, not its predictions."
        )
        return random_inputs(model, samples), RANDOM_SOURCE
    try:
        data = run.build_data(**overrides)
    except ConfigError as e:  # not here, or an offline download: a bug keeps its traceback
        raise no_data_error(e) from None
    for split in ("test", "validation", "train"):
        dataset = getattr(data, f"{split}_dataset", None)
        if dataset is None:
            continue
        batches, count = [], 0
        for element in dataset:
            x = element[0] if isinstance(element, tuple) else element
            batches.append(np.asarray(x))
            count += len(batches[-1])
            if count >= samples:
                break
        if count:
            return np.concatenate(batches)[:samples], f"the {split} split of the run's data"
    raise ConfigError(
        f"The export is checked on the run's data, and the run's data has no examples here "
        f"({data.source}). Received: random_inputs=false. Point data.root=/path (or "
        "data.path=) at the run's data, or set random_inputs=true to check on random inputs."
    )


def check_inputs(run, data_overrides, random):
    """Before TensorFlow: the run's data paths exist here (unless `random`), and `random` is
    not given with a data path it would leave unused.

    Raises:
        ConfigError: one line naming `random_inputs` and what to do.
    """
    require(
        random in (True, False),
        f"random_inputs must be true or false. Received: random_inputs={random!r}. Set "
        "random_inputs=true to check the export on random inputs instead of the run's data.",
    )
    given = {k: v for k, v in data_overrides.items() if v is not None}
    received = ", ".join(f"data.{k}={v}" for k, v in given.items())
    require(
        not (random and given),
        "random_inputs=true checks the export on random inputs, so the run's data is not "
        f"read. Received: random_inputs=true and {received}. Remove one of them.",
    )
    if not random:
        try:
            run.check_paths(**given)
        except ConfigError as e:
            raise no_data_error(e) from None


def no_data_error(error):
    """The `ConfigError` of an export whose check cannot read the run's data."""
    return ConfigError(
        f"export-model checks the export on the run's data: {one_line(error, with_type=False)} "
        "Or set random_inputs=true to check it on random inputs instead (the export's "
        "arithmetic only, not its predictions)."
    )


def random_inputs(model, samples, seed=0):
    """`samples` random inputs for `model`: floats in [0, 255], or 0/1 for integer inputs."""
    import numpy as np

    rng = np.random.default_rng(seed)
    spec = model.inputs[0]
    shape = (samples, *(1 if d is None else d for d in spec.shape[1:]))
    if "int" in str(spec.dtype):  # token ids: 0 and 1 exist in every vocabulary
        return rng.integers(0, 2, size=shape).astype(str(spec.dtype))
    return rng.uniform(0, 255, size=shape).astype("float32")


def compare(expected, actual, atol):
    """`(max_abs_diff, ok)` between two predictions (arrays, or lists/dicts of arrays).

    Outputs of a different shape, or NaN anywhere, count as an infinite difference.
    """
    import numpy as np

    expected, actual = _flat(expected), _flat(actual)
    if expected.shape != actual.shape:
        return float("inf"), False
    diff = float(np.max(np.abs(expected - actual))) if expected.size else 0.0
    if not np.isfinite(diff):
        return float("inf"), False
    return diff, diff <= atol


def _flat(outputs):
    # Every output of every example, side by side, in float64: (examples, values).
    import numpy as np

    if isinstance(outputs, dict):
        outputs = [outputs[k] for k in sorted(outputs)]
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    arrays = [np.asarray(o, dtype="float64") for o in outputs]
    return np.concatenate([a.reshape(len(a), -1) for a in arrays], axis=1)


def size_bytes(path):
    """The size of a file, or of every file under a folder (a SavedModel)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _clear_previous(output_dir, path):
    # A previous export (good or set aside) must not survive next to a new, failed one.
    for old in (path, path.with_name(path.name + MISMATCH_SUFFIX)):
        if old.is_dir():
            require(
                not any(old.iterdir()) or (old / "saved_model.pb").is_file(),
                f"{old} exists and is not a SavedModel written by export-model; it is left "
                f"alone. Received: output='{output_dir}'. Choose another output folder.",
            )
            shutil.rmtree(old)
        elif old.exists():
            old.unlink()
    (output_dir / EXPORT_RECORD).unlink(missing_ok=True)
    output_dir.mkdir(parents=True, exist_ok=True)


def _set_aside(path):
    aside = path.with_name(path.name + MISMATCH_SUFFIX)
    os.replace(path, aside)
    return aside


# Exporters: (keras model, path) → writes path.


def _export_keras(model, path):
    model.save(path)


def _export_saved_model(model, path):
    model.export(str(path), format="tf_saved_model", verbose=False)


def _export_tflite(model, path):
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        saved_model = Path(tmp) / "saved_model"
        model.export(str(saved_model), format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
        Path(path).write_bytes(converter.convert())


def _export_onnx(model, path):
    # Keras's own ONNX export: tf2onnx on the model's serving function, patched for NumPy 2.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # tf2onnx's np.object probe
        model.export(str(path), format="onnx", verbose=False)


EXPORTERS = {
    "keras": _export_keras,
    "saved_model": _export_saved_model,
    "tflite": _export_tflite,
    "onnx": _export_onnx,
}


# Predictors: (path, inputs) → the export's predictions, each with the format's own runtime.


def _predict_keras(path, inputs):
    # kerasrun.models.load_model: keras.models.load_model in safe mode, kerasrun's layers known.
    return load_model(path).predict(inputs, verbose=0)


def _predict_saved_model(path, inputs):
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))  # keep it referenced: it owns the variables
    serving = loaded.signatures["serving_default"]
    (input_name,) = serving.structured_input_signature[1]
    return {k: v.numpy() for k, v in serving(**{input_name: tf.constant(inputs)}).items()}


def _predict_tflite(path, inputs):
    import tensorflow as tf

    with warnings.catch_warnings(), _quiet_stderr():
        # "tf.lite.Interpreter is deprecated": it still ships with TensorFlow 2.21; LiteRT's
        # ai_edge_litert is the same interpreter, as a separate package.
        warnings.simplefilter("ignore", UserWarning)
        interpreter = tf.lite.Interpreter(model_path=str(path))
        (input_detail,) = interpreter.get_input_details()
        interpreter.resize_tensor_input(input_detail["index"], inputs.shape)
        interpreter.allocate_tensors()  # prints "INFO: Created TensorFlow Lite XNNPACK delegate"
        interpreter.set_tensor(input_detail["index"], inputs.astype(input_detail["dtype"]))
        interpreter.invoke()
    outputs = sorted(interpreter.get_output_details(), key=lambda d: d["name"])
    return [interpreter.get_tensor(d["index"]) for d in outputs]


@contextlib.contextmanager
def _quiet_stderr():
    # The TFLite runtime's C++ INFO lines bypass Python's logging; errors still raise.
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _predict_onnx(path, inputs):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (input_meta,) = session.get_inputs()
    return session.run(None, {input_meta.name: inputs})


PREDICTORS = {
    "keras": _predict_keras,
    "saved_model": _predict_saved_model,
    "tflite": _predict_tflite,
    "onnx": _predict_onnx,
}
