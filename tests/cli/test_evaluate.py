"""`evaluate`: the real console script in subprocesses, on a real trained run (conftest's
`trained_image_run`: reddish "cats" and bluish "dogs", 32×32), checked against Keras itself."""

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from helpers import command_runtime, help_output, scalars

# The in-process model.evaluate on a split of unknown length (skipped bad files) warns at its end.
pytestmark = pytest.mark.filterwarnings("ignore:Your input ran out of data")
EVALUATE = str(Path(sys.executable).with_name("evaluate"))


def run_evaluate(*overrides, cwd, timeout=300):
    """`evaluate <overrides>` in `cwd`; returns the CompletedProcess."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [EVALUATE, *overrides], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


def copy_run(trained_image_run, tmp_path):
    """A writable copy of the shared trained run."""
    run_dir, _ = trained_image_run
    return Path(shutil.copytree(run_dir, tmp_path / run_dir.name))


def eval_metrics(run_dir, split):
    return json.loads((run_dir / "eval" / split / "metrics.json").read_text())


def keras_results(run_dir, split, model_file, **data_overrides):
    """What Keras itself says in this process: `model.evaluate` on the run's rebuilt split,
    with the labels and the predicted classes of that split."""
    from kerasrun.models import load_model
    from kerasrun.rundir.run import open_run

    data = open_run(run_dir).build_data(**data_overrides)
    dataset = getattr(data, f"{split}_dataset")
    model = load_model(run_dir / model_file)
    scores = model.evaluate(dataset, verbose=0, return_dict=True)
    labels = np.concatenate([np.asarray(y) for _, y in dataset])
    predicted = (model.predict(dataset, verbose=0).reshape(-1) > 0.5).astype(int)  # binary
    return scores, labels, predicted


def confusion(labels, predicted, k=2):
    matrix = np.zeros((k, k), int)
    for true, pred in zip(labels, predicted, strict=True):
        matrix[true, pred] += 1
    return matrix.tolist()


def assert_png(path, min_size):
    """A real PNG file Pillow opens, at least `min_size` (width, height) and not huge."""
    from PIL import Image

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert min_size[0] <= image.width <= 4000 and min_size[1] <= image.height <= 4000
        return image.size


def tensorboard_images(event_dir):
    """`{tag: [(step, (width, height)), ...]}` of the images in `event_dir`, read back by
    TensorBoard's own reader."""
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    acc = EventAccumulator(str(event_dir), size_guidance={"tensors": 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags()["tensors"]:
        if acc.SummaryMetadata(tag).plugin_data.plugin_name == "images":
            for event in acc.Tensors(tag):
                width, height, png = tensor_util.make_ndarray(event.tensor_proto)[:3]
                with Image.open(io.BytesIO(png)) as image:
                    assert image.size == (int(width), int(height))
                    out.setdefault(tag, []).append((event.step, image.size))
    return out


def error_line(result):
    """The one `Error:` line of a failed command (and nothing that looks like a traceback)."""
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, output
    return errors[0]


@pytest.fixture(scope="module")
def evaluated(trained_image_run, tmp_path_factory):
    """A copy of the trained run after a plain `evaluate run=<it>` (the test split, best)."""
    run_dir = copy_run(trained_image_run, tmp_path_factory.mktemp("evaluated"))
    result = run_evaluate(f"run={run_dir}", cwd=run_dir.parent)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return run_dir, result


@pytest.mark.slow
def test_metrics_are_those_of_model_evaluate(evaluated):
    run_dir, result = evaluated
    metrics = eval_metrics(run_dir, "test")
    scores, labels, _ = keras_results(run_dir, "test", "checkpoints/best.keras")
    assert metrics["accuracy"] == pytest.approx(scores["accuracy"], rel=1e-6)
    assert metrics["loss"] == pytest.approx(scores["loss"], rel=1e-4, abs=1e-6)
    assert metrics["split"] == "test"
    assert metrics["checkpoint"] == "best"
    assert Path(metrics["checkpoint_file"]) == run_dir / "checkpoints" / "best.keras"
    assert metrics["examples"] == len(labels) == 16  # 20% of 80 photos
    assert 0 < metrics["wall_time_s"] < 300
    # The table the user reads shows the same numbers.
    assert "Evaluation: test split, 16 examples, checkpoints/best.keras" in result.stdout
    # train's runtime set-up, the run's precision and seed (training.runtime.set_up_command).
    assert command_runtime(result.stdout) == ("CPU", "float32", "the run's", 42)
    assert re.search(rf"accuracy\W+{metrics['accuracy']:.4f}", result.stdout)


@pytest.mark.slow
def test_confusion_matrix_and_report_match_the_predictions(evaluated):
    run_dir, result = evaluated
    metrics = eval_metrics(run_dir, "test")
    _, labels, predicted = keras_results(run_dir, "test", "checkpoints/best.keras")
    counts = metrics["confusion_matrix"]["counts"]
    assert metrics["confusion_matrix"]["class_names"] == ["cats", "dogs"]
    assert sum(map(sum, counts)) == metrics["examples"] == len(labels)
    assert counts == confusion(labels, predicted)
    report = metrics["classification_report"]
    assert [report["per_class"][c]["support"] for c in ("cats", "dogs")] == list(
        np.bincount(labels, minlength=2)
    )
    assert report["accuracy"] == pytest.approx(metrics["accuracy"])
    assert metrics["misclassified"] == 0  # a separable problem the run learned
    # Printed as tables; nothing misclassified: said, and no image.
    assert "Confusion matrix" in result.stdout and "Per-class report" in result.stdout
    assert "macro avg" in result.stdout
    assert "Nothing misclassified in 16 examples" in result.stdout
    assert not (run_dir / "eval" / "test" / "misclassified.png").exists()


@pytest.mark.slow
def test_confusion_matrix_png_and_tensorboard_images(evaluated):
    run_dir, _ = evaluated
    width, height = assert_png(run_dir / "eval" / "test" / "confusion_matrix.png", (120, 120))
    images = tensorboard_images(run_dir / "tensorboard" / "eval")
    run_metrics = json.loads((run_dir / "metrics.json").read_text())
    # Stepped at the epoch the best checkpoint comes from, beside the run's curves.
    assert images == {"eval/test/confusion_matrix": [(run_metrics["best_epoch"], (width, height))]}
    curves = scalars(run_dir / "tensorboard" / "eval")
    assert curves["eval/test/accuracy"][0][1] == pytest.approx(
        eval_metrics(run_dir, "test")["accuracy"]
    )


@pytest.mark.slow
def test_validation_split_with_the_last_model(trained_image_run, tmp_path):
    run_dir = copy_run(trained_image_run, tmp_path)
    result = run_evaluate(f"run={run_dir}", "split=validation", "checkpoint=last", cwd=tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    metrics = eval_metrics(run_dir, "validation")
    scores, labels, predicted = keras_results(run_dir, "validation", "model.keras")
    assert metrics["split"] == "validation"
    assert Path(metrics["checkpoint_file"]) == run_dir / "model.keras"
    assert metrics["accuracy"] == pytest.approx(scores["accuracy"], rel=1e-6)
    assert metrics["loss"] == pytest.approx(scores["loss"], rel=1e-4, abs=1e-6)
    assert metrics["confusion_matrix"]["counts"] == confusion(labels, predicted)
    assert sorted(p.name for p in (run_dir / "eval").iterdir()) == ["validation"]
    assert "eval/validation/confusion_matrix" in tensorboard_images(run_dir / "tensorboard/eval")


@pytest.fixture
def mislabelled_photos(trained_image_run, tmp_path):
    """The run's photos as train/ and test/ folders, where 3 cats sit in test/dogs/ and
    1 dog in test/cats/: the model (right about every colour) gets exactly those 4 wrong."""
    _, photos = trained_image_run
    root = tmp_path / "mislabelled"
    shutil.copytree(photos, root / "train")
    shutil.copytree(photos, root / "test")
    for i in range(3):
        shutil.move(root / "test" / "cats" / f"cat.{i}.jpg", root / "test" / "dogs")
    shutil.move(root / "test" / "dogs" / "dog.5.jpg", root / "test" / "cats")
    return root


@pytest.mark.slow
def test_misclassified_examples_are_drawn(trained_image_run, mislabelled_photos, tmp_path):
    run_dir = copy_run(trained_image_run, tmp_path)
    result = run_evaluate(f"run={run_dir}", f"data.root={mislabelled_photos}", cwd=tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    metrics = eval_metrics(run_dir, "test")
    # Metrics on the data given with data.root, as Keras computes them there.
    scores, labels, predicted = keras_results(
        run_dir, "test", "checkpoints/best.keras", root=str(mislabelled_photos)
    )
    assert metrics["loss"] == pytest.approx(scores["loss"], rel=1e-4)
    assert metrics["accuracy"] == pytest.approx(scores["accuracy"]) == pytest.approx(76 / 80)
    # rows: true, columns: predicted. The 3 "dogs" that are cats, the 1 "cat" that is a dog.
    assert metrics["confusion_matrix"]["counts"] == [[37, 1], [3, 39]]
    assert metrics["confusion_matrix"]["counts"] == confusion(labels, predicted)
    report = metrics["classification_report"]
    assert report["per_class"]["cats"]["precision"] == pytest.approx(37 / 40)
    assert report["per_class"]["dogs"]["recall"] == pytest.approx(39 / 42)
    assert report["macro_avg"]["f1"] == pytest.approx(
        (report["per_class"]["cats"]["f1"] + report["per_class"]["dogs"]["f1"]) / 2
    )
    assert metrics["misclassified"] == 4
    assert "Misclassified: 4 of 80" in result.stdout
    # 4 tiles in one row, each at least 112 pixels; also in TensorBoard.
    size = assert_png(run_dir / "eval" / "test" / "misclassified.png", (4 * 112, 112))
    images = tensorboard_images(run_dir / "tensorboard" / "eval")
    assert [s for _, s in images["eval/test/misclassified"]] == [size]


def test_help_is_fast_and_lists_the_keys():
    stdout, tensorflow = help_output("evaluate", "kerasrun.evaluate", cwd=None)
    assert not tensorflow
    for key in ("run: ???", "split: test", "checkpoint: best", "root: null", "batch_size: null"):
        assert key in stdout
    assert "evaluate run=" in stdout  # the usage examples


def test_missing_run_directory(tmp_path):
    line = error_line(run_evaluate(f"run={tmp_path / 'nope'}", cwd=tmp_path))
    assert "run=" in line and "does not exist" in line


def test_run_without_config(tmp_path):
    line = error_line(run_evaluate(f"run={tmp_path}", cwd=tmp_path))
    assert "has no config.yaml" in line


def test_no_run_given(tmp_path):
    assert "run=" in error_line(run_evaluate(cwd=tmp_path))


def test_unknown_split(trained_image_run, tmp_path):
    run_dir, _ = trained_image_run
    line = error_line(run_evaluate(f"run={run_dir}", "split=train", cwd=tmp_path))
    assert "split=" in line and "test, validation" in line


def test_split_the_data_does_not_have(trained_image_run, tmp_path):
    # A run trained without a test split, as train records it: test_split 0, no test images.
    run_dir = copy_run(trained_image_run, tmp_path)
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config["data"]["test_split"] = 0.0
    config["data_info"]["sizes"]["test"] = 0
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    line = error_line(run_evaluate(f"run={run_dir}", cwd=tmp_path))
    assert "split='test'" in line and "only validation" in line and "split=validation" in line


def test_data_root_of_the_run_missing(trained_image_run, tmp_path):
    run_dir = copy_run(trained_image_run, tmp_path)
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config["data"]["root"] = str(tmp_path / "elsewhere" / "photos")
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    line = error_line(run_evaluate(f"run={run_dir}", cwd=tmp_path))
    assert "data.root" in line and "elsewhere" in line
    assert not (run_dir / "eval").exists()


@pytest.mark.parametrize("override", ["batch_size=0", "misclassified=-1", "checkpoint=foo"])
def test_bad_values(trained_image_run, tmp_path, override):
    run_dir, _ = trained_image_run
    line = error_line(run_evaluate(f"run={run_dir}", override, cwd=tmp_path))
    assert f"{override.split('=')[0]}=" in line
