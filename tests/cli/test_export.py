"""`export-model`: the real console script in subprocesses, on a real trained run (conftest's
`trained_image_run`: reddish "cats" and bluish "dogs", 32×32). Each export is loaded back here
with its own runtime, independently of kerasrun, and compared with the Keras model."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

from helpers import (
    command_runtime,
    help_output,
    make_class_folder,
    only_run_dir,
    run_train,
    write_jena_csv,
)

EXPORT_MODEL = str(Path(sys.executable).with_name("export-model"))
HAS_ONNX = all(importlib.util.find_spec(p) for p in ("tf2onnx", "onnxruntime"))
FORMATS = [
    "keras",
    "saved_model",
    "tflite",
    pytest.param(
        "onnx",
        marks=pytest.mark.skipif(not HAS_ONNX, reason='needs pip install -e ".[onnx]"'),
    ),
]
ARTIFACT = {
    "keras": "model.keras",
    "saved_model": "model",
    "tflite": "model.tflite",
    "onnx": "model.onnx",
}


def run_export(*overrides, cwd, timeout=300):
    """`export-model <overrides>` in `cwd`; returns the CompletedProcess."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [EXPORT_MODEL, *overrides],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def run_python(code, cwd, timeout=300):
    """`python -c code` (to call `kerasrun.export.main` with something changed first)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def copy_run(trained_image_run, tmp_path):
    """A writable copy of the shared trained run."""
    run_dir, _ = trained_image_run
    return Path(shutil.copytree(run_dir, tmp_path / run_dir.name))


def error_line(result, code=2):
    """The one `Error:` line of a failed command; asserts there is no traceback."""
    output = result.stdout + result.stderr
    assert result.returncode == code, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    (line,) = [line for line in output.splitlines() if line.startswith("Error:")]
    return line


def read_record(folder):
    return json.loads((Path(folder) / "export.json").read_text())


def keras_predictions_on_test_images(run_dir):
    """The run's test images and what its best checkpoint predicts for them, in this process."""
    import keras

    from kerasrun.rundir.run import open_run

    data = open_run(run_dir).build_data()
    images = np.concatenate([np.asarray(x) for x, _ in data.test_dataset])
    model = keras.models.load_model(run_dir / "checkpoints" / "best.keras", safe_mode=True)
    return images, model.predict(images, verbose=0)


def predict_with_own_runtime(fmt, path, images):
    """What a server of format `fmt` predicts, loaded the way its own documentation loads it."""
    if fmt == "keras":
        import keras

        return keras.models.load_model(path, safe_mode=True).predict(images, verbose=0)
    if fmt == "saved_model":
        import tensorflow as tf

        loaded = tf.saved_model.load(str(path))  # kept: it owns the variables
        return loaded.serve(tf.constant(images)).numpy()
    if fmt == "tflite":
        import tensorflow as tf

        assert path.read_bytes()[4:8] == b"TFL3"  # the flatbuffer's file identifier
        with warnings.catch_warnings():  # "deprecated": LiteRT is the same interpreter
            warnings.simplefilter("ignore", UserWarning)
            interpreter = tf.lite.Interpreter(model_path=str(path))
        runner = interpreter.get_signature_runner("serving_default")
        (output,) = runner(
            **{interpreter.get_signature_list()["serving_default"]["inputs"][0]: images}
        ).values()
        return output
    import onnx
    import onnxruntime

    onnx.checker.check_model(str(path))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {session.get_inputs()[0].name: images})
    return output


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_round_trips_and_agrees_with_keras(trained_image_run, tmp_path, fmt):
    run_dir = copy_run(trained_image_run, tmp_path)
    result = run_export(f"run={run_dir}", f"format={fmt}", cwd=tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]

    folder = run_dir / "export" / fmt
    path = folder / ARTIFACT[fmt]
    record = read_record(folder)
    size = (
        path.stat().st_size
        if path.is_file()
        else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    )
    assert record["format"] == fmt and record["status"] == "ok"
    assert Path(record["path"]) == path and record["size_bytes"] == size > 100_000
    assert record["samples"] == 8 and record["inputs"] == "the test split of the run's data"
    assert 0 <= record["max_abs_diff"] <= record["atol"] == 1e-4
    assert record["wall_time_s"] > 0
    assert Path(record["checkpoint"]) == run_dir / "checkpoints" / "best.keras"
    assert f"max |{fmt} - keras| = " in result.stdout and ": ok" in result.stdout

    # Loaded back here, independently, on all 16 test images: the same predictions.
    images, expected = keras_predictions_on_test_images(run_dir)
    actual = predict_with_own_runtime(fmt, path, images)
    assert actual.shape == expected.shape == (16, 1)
    np.testing.assert_allclose(actual, expected, atol=1e-4)
    assert ((actual > 0.5) == (expected > 0.5)).all()


@pytest.mark.slow
def test_output_and_checkpoint_keys(trained_image_run, tmp_path):
    run_dir = copy_run(trained_image_run, tmp_path)
    served = tmp_path / "served" / "catsdogs"
    result = run_export(
        f"run={run_dir}", "format=saved_model", "checkpoint=last", f"output={served}", cwd=tmp_path
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert (served / "model" / "saved_model.pb").is_file()
    record = read_record(served)
    assert record["status"] == "ok" and Path(record["checkpoint"]) == run_dir / "model.keras"
    assert not (run_dir / "export").exists()  # output= means nothing inside the run


@pytest.mark.slow
def test_a_mismatch_fails_loudly_and_sets_the_export_aside(trained_image_run, tmp_path):
    run_dir = copy_run(trained_image_run, tmp_path)
    # A broken exporter (real Keras, real file): it writes the head with its sign flipped, so
    # the export predicts 1 - p where Keras predicts p.
    code = (
        "import sys\n"
        f"sys.argv = ['export-model', 'run={run_dir}', 'format=keras']\n"
        "import kerasrun.inference.export as exporting\n"
        "from kerasrun.export import main\n"
        "def broken(model, path):\n"
        "    head = model.layers[-1]\n"
        "    head.set_weights([-w for w in head.get_weights()])\n"
        "    model.save(path)\n"
        "exporting.EXPORTERS['keras'] = broken\n"
        "main()\n"
    )
    line = error_line(run_python(code, cwd=tmp_path), code=1)
    assert "max abs diff" in line and "> atol=0.0001 on 8 examples" in line
    assert "model.keras.mismatch" in line

    folder = run_dir / "export" / "keras"
    assert not (folder / "model.keras").exists()  # nothing that looks servable
    assert (folder / "model.keras.mismatch").is_file()
    record = read_record(folder)
    assert record["status"] == "mismatch" and record["max_abs_diff"] > 0.5
    assert record["path"].endswith("model.keras.mismatch")

    # Exporting again with the real exporter replaces the set-aside file.
    result = run_export(f"run={run_dir}", "format=keras", cwd=tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert sorted(p.name for p in folder.iterdir()) == ["export.json", "model.keras"]
    assert read_record(folder)["status"] == "ok"


@pytest.mark.slow
def test_without_the_runs_data_the_check_needs_random_inputs_asked_for(trained_image_run, tmp_path):
    run_dir = copy_run(trained_image_run, tmp_path)
    _, photos = trained_image_run
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config["data"]["root"] = str(tmp_path / "photos_on_another_machine")
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))

    # Not an `ok` on random inputs: one line, before anything is written.
    line = error_line(run_export(f"run={run_dir}", "format=tflite", cwd=tmp_path))
    assert "export-model checks the export on the run's data: data.root does not exist" in line
    assert "Or set random_inputs=true to check it on random inputs instead" in line
    assert not (run_dir / "export").exists()

    # Asked for: random inputs, and the log and export.json say that the data was not used.
    result = run_export(f"run={run_dir}", "format=tflite", "random_inputs=true", cwd=tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "random_inputs=true: the check compares the export on random inputs" in result.stdout
    record = read_record(run_dir / "export" / "tflite")
    assert record["inputs"] == "random in [0, 255] (random_inputs=true), not the run's data"
    assert record["status"] == "ok"

    # random_inputs=true would leave a data.root unused; a value that is not a boolean.
    line = error_line(
        run_export(
            f"run={run_dir}",
            "format=tflite",
            "random_inputs=true",
            f"data.root={photos}",
            cwd=tmp_path,
        )
    )
    assert f"Received: random_inputs=true and data.root={photos}. Remove one of them." in line
    line = error_line(run_export(f"run={run_dir}", "format=keras", "random_inputs=2", cwd=tmp_path))
    assert "random_inputs must be true or false. Received: random_inputs=2." in line

    # Pointing data.root at the photos here: real examples again.
    result = run_export(f"run={run_dir}", "format=tflite", f"data.root={photos}", cwd=tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert read_record(run_dir / "export" / "tflite")["inputs"] == (
        "the test split of the run's data"
    )


# --- a model trained under mixed_float16, whose outputs are not saturated -----------------------


@pytest.fixture(scope="module")
def mixed_regression_run(tmp_path_factory):
    """A real `train` run under `trainer.precision=mixed_float16`: `dense_timeseries` on a small
    CSV series. A regression: its outputs are plain numbers, where a sigmoid near 0 or 1 would
    hide a difference of 1e-3 (the image fixture's predictions are saturated)."""
    cwd = tmp_path_factory.mktemp("mixed")
    series = write_jena_csv(cwd / "series.csv", rows=600)
    result = run_train(
        "data=csv_timeseries",
        f"data.path={series}",
        'data.target="T (degC)"',
        "data.lookback=24",
        "data.step=2",
        "data.delay=6",
        "data.train_rows=300",
        "data.validation_rows=150",
        "data.batch_size=32",
        "model=dense_timeseries",
        "trainer.precision=mixed_float16",
        "trainer.epochs=2",
        cwd=cwd,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return only_run_dir(cwd)


def windows_and_float64_predictions(run_dir):
    """The run's test windows, and what its best checkpoint computes for them in float64, in
    numpy from its weights (Flatten → Dense(relu) → Dense): a reference no runtime rounds."""
    import keras

    from kerasrun.rundir.run import open_run

    data = open_run(run_dir).build_data()
    windows = np.concatenate([np.asarray(x) for x, _ in data.test_dataset])
    model = keras.models.load_model(
        run_dir / "checkpoints" / "best.keras", safe_mode=True, compile=False
    )
    hidden, head = [layer for layer in model.layers if layer.weights]
    assert hidden.compute_dtype == "float16"  # really trained under mixed precision
    (w1, b1), (w2, b2) = hidden.get_weights(), head.get_weights()
    h = np.maximum(windows.reshape(len(windows), -1).astype("float64") @ w1 + b1, 0)
    return windows, h @ w2 + b2, model.predict(windows, verbose=0)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_mixed_precision_model_exports_to_every_format(mixed_regression_run, tmp_path, fmt):
    run_dir = Path(shutil.copytree(mixed_regression_run, tmp_path / "run"))
    result = run_export(f"run={run_dir}", f"format={fmt}", cwd=tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    # train's runtime set-up, with the run's precision (training.runtime.set_up_command).
    assert command_runtime(result.stdout) == ("CPU", "mixed_float16", "the run's", 42)

    folder = run_dir / "export" / fmt
    record = read_record(folder)
    assert record["status"] == "ok" and record["inputs"] == "the test split of the run's data"
    assert 0 <= record["max_abs_diff"] <= record["atol"] == 1e-4
    windows, reference, mixed = windows_and_float64_predictions(run_dir)
    assert np.ptp(reference) > 1  # degrees, spread out: no sigmoid squashes them to 0 or 1
    actual = predict_with_own_runtime(fmt, folder / ARTIFACT[fmt], windows)
    assert actual.shape == reference.shape == (len(windows), 1)
    if fmt in ("tflite", "onnx"):
        # Written in float32 from the same weights (TFLite has no float16 MatMul; ONNX
        # Runtime rounds float16 differently): float64's numbers to float32's precision.
        assert record["compute_dtype"] == "float32"
        np.testing.assert_allclose(actual, reference, rtol=1e-5, atol=1e-5)
        # The trained model's float16 rounding, recorded: float32 is not what it computed.
        assert 1e-5 < record["max_abs_diff_to_trained"] < 0.1
    else:
        # Served by TensorFlow as it trained: float16 inside, what Keras computes exactly.
        assert record["compute_dtype"] == "float16"
        np.testing.assert_allclose(actual, mixed, rtol=0, atol=1e-6)
        assert 1e-5 < np.abs(actual - reference).max() < 0.1


@pytest.mark.slow
def test_the_check_finds_a_small_error_of_a_mixed_precision_export(mixed_regression_run, tmp_path):
    run_dir = Path(shutil.copytree(mixed_regression_run, tmp_path / "run"))
    # A converter error of 1e-3 on the output (its bias moved): on a regression it shows.
    code = (
        "import sys\n"
        f"sys.argv = ['export-model', 'run={run_dir}', 'format=tflite']\n"
        "import kerasrun.inference.export as exporting\n"
        "from kerasrun.export import main\n"
        "convert = exporting.EXPORTERS['tflite']\n"
        "def off_by_a_little(model, path):\n"
        "    kernel, bias = model.get_layer('predictions').get_weights()\n"
        "    model.get_layer('predictions').set_weights([kernel, bias + 1e-3])\n"
        "    convert(model, path)\n"
        "exporting.EXPORTERS['tflite'] = off_by_a_little\n"
        "main()\n"
    )
    line = error_line(run_python(code, cwd=tmp_path), code=1)
    assert "> atol=0.0001 on 8 examples" in line and "model.tflite.mismatch" in line
    record = read_record(run_dir / "export" / "tflite")
    assert record["status"] == "mismatch"
    assert record["max_abs_diff"] == pytest.approx(1e-3, rel=0.01)


@pytest.mark.slow
def test_pretrained_model_with_its_preprocessing_layer_exports(tmp_path):
    """MobileNetV2 (random weights, 32×32) with kerasrun's ImageNetPreprocessing layer inside."""
    from kerasrun.inference.export import (
        export_and_check,
        export_model,
        load_for_inference,
        sample_inputs,
    )
    from kerasrun.rundir.run import open_run

    photos = make_class_folder(tmp_path / "photos", per_class=8, size=(40, 36))
    result = run_train(
        "model=pretrained",
        "model.backbone=MobileNetV2",
        "model.weights=null",
        "model.units=8",
        "model.pooling=avg",
        "data=image_folder",
        f"data.root={photos}",
        "data.image_size=[32,32]",
        "data.test_split=0.25",
        "data.batch_size=4",
        "trainer.epochs=0",  # an untrained model is as good a test of the export
        cwd=tmp_path,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    run = open_run(only_run_dir(tmp_path))

    record = export_model(run, "keras", run.path / "export" / "keras", samples=4)
    assert record["status"] == "ok" and record["inputs"] == "the test split of the run's data"
    keras_copy = load_for_inference(run.path / "export" / "keras" / "model.keras")
    assert keras_copy.get_layer("preprocess_input").mode == "tf"  # MobileNetV2's [-1, 1]

    # The other runtimes, on the same model and examples (loaded once: MobileNetV2 is slow to
    # rebuild). saved_model is tflite's first step, and is checked on the convnet above.
    model = load_for_inference(run.model_path)
    inputs, _ = sample_inputs(run, model, 4, {})
    for fmt in ("tflite", "onnx") if HAS_ONNX else ("tflite",):
        record = export_and_check(model, fmt, run.path / "export" / fmt, inputs)
        assert record["status"] == "ok" and record["size_bytes"] > 1_000_000, record


def test_help_lists_the_keys_without_importing_tensorflow(tmp_path):
    stdout, tensorflow = help_output("export-model", "kerasrun.export", cwd=tmp_path)
    assert not tensorflow
    for key in ("run: ???", "format: ???", "checkpoint: best", "output: null", "samples: 8"):
        assert key in stdout, key
    assert "atol: 0.0001" in stdout
    assert "export-model run=" in stdout  # the usage examples
    # And the real console script.
    result = run_export("--help", cwd=tmp_path, timeout=60)
    assert result.returncode == 0 and "format=keras | saved_model | tflite | onnx" in result.stdout


def test_unknown_format_lists_the_formats(tmp_path):
    # Checked before the run is even opened.
    line = error_line(run_export(f"run={tmp_path}", "format=pb", cwd=tmp_path))
    assert "keras, saved_model, tflite, onnx" in line and "Received: format=pb" in line
    line = error_line(run_export(f"run={tmp_path}", cwd=tmp_path))  # format not given
    assert "format must be one of" in line


def test_missing_run(tmp_path):
    line = error_line(run_export(f"run={tmp_path / 'nope'}", "format=keras", cwd=tmp_path))
    assert "run=" in line and "does not exist" in line
    line = error_line(run_export("format=tflite", cwd=tmp_path))
    assert "run must be a run directory" in line


def test_bad_samples_and_atol(tmp_path):
    line = error_line(run_export(f"run={tmp_path}", "format=keras", "samples=0", cwd=tmp_path))
    assert "Received: samples=0" in line
    line = error_line(run_export(f"run={tmp_path}", "format=keras", "atol=-1", cwd=tmp_path))
    assert "Received: atol=-1" in line


def test_output_that_is_a_file(trained_image_run, tmp_path):
    run_dir, _ = trained_image_run
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    result = run_export(f"run={run_dir}", "format=keras", f"output={a_file}", cwd=tmp_path)
    assert "output must be a folder" in error_line(result)
    assert a_file.read_text() == "not a folder"


def test_onnx_without_its_packages_says_what_to_install(tmp_path):
    code = (
        "import sys\n"
        "sys.modules['tf2onnx'] = None  # as if it were not installed\n"
        f"sys.argv = ['export-model', 'run={tmp_path}', 'format=onnx']\n"
        "from kerasrun.export import main\n"
        "main()\n"
    )
    line = error_line(run_python(code, cwd=tmp_path))
    assert "tf2onnx is not installed" in line and 'pip install -e ".[onnx]"' in line
