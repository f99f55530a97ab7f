"""The real `train` command, end to end, in subprocesses on tiny real data: the run directory,
TensorBoard, fine-tuning, sweeps, a CIFAR-10 preset on an image folder, the "First step after"
line, and the one-line errors before training."""

import math
import re

import keras
import numpy as np
import pytest
import yaml

from helpers import (
    CATS_AND_DOGS,
    help_output,
    hparams,
    make_class_folder,
    only_run_dir,
    read_metrics,
    run_train,
    scalars,
    tiny_vgg16_finetune,
)
from kerasrun.models import load_model

FAST = ["trainer.epochs=2"]


def test_help_lists_groups_without_importing_tensorflow(tmp_path):
    out, tensorflow = help_output("train", "kerasrun.train", cwd=tmp_path)
    assert not tensorflow
    for option in (
        "vgg16_finetune",
        "small_convnet",
        "cats_dogs",
        "image_folder",
        "early_stopping",
        "cats_dogs_aug_dropout",
        "rmsprop",
    ):
        assert option in out, option
    assert "tensorboard --logdir outputs" in out


def test_fast_help_prints_exactly_hydras_help(tmp_path):
    """`--help` reuses Hydra's config repository (hydra_help.py): the same text, faster."""
    import subprocess
    import sys

    code = (
        "import sys; sys.argv = ['train', '--help']\n"
        "from kerasrun.train import main\n"
        "try:\n    main.__wrapped__()\nexcept SystemExit:\n    pass\n"  # Hydra's own
    )
    hydras = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    ours, _ = help_output("train", "kerasrun.train", cwd=tmp_path)
    assert hydras.returncode == 0, hydras.stderr[-2000:]
    assert "model: " in hydras.stdout and "data: " in hydras.stdout
    assert ours.replace("tensorflow imported: False\n", "") == hydras.stdout


@pytest.mark.slow
def test_default_run_writes_a_complete_run_directory(tmp_path):
    result = run_train(*FAST, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run = only_run_dir(tmp_path)
    assert run.name.endswith("_digits-convnet")
    for name in (
        "config.yaml",
        "train.log",
        "model.keras",
        "metrics.json",
        "history.csv",
        "checkpoints/best.keras",
        ".hydra/config.yaml",
        ".hydra/overrides.yaml",
    ):
        assert (run / name).is_file(), name

    metrics = read_metrics(run)
    assert metrics["status"] == "finished" and metrics["epochs"] == 2
    assert metrics["test_accuracy"] > 0.5  # ten classes: chance is 0.1
    for key in (
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "best_val_accuracy",
        "test_loss",
        "wall_time_s",
        "best_epoch",
    ):
        assert key in metrics, key

    # What `auto` resolved to is saved; on this CPU: float32, no XLA.
    config = (run / "config.yaml").read_text()
    assert "precision: float32" in config and "jit_compile: false" in config

    # One readable line per epoch on stdout (not a TTY) and in train.log, plus the summary.
    log = (run / "train.log").read_text()
    assert log.count("Epoch 1/2") == 1 and log.count("Epoch 2/2") == 1
    assert "Epoch 2/2" in result.stdout and "tensorboard --logdir" in result.stdout
    assert "\r" not in result.stdout  # no progress-bar spam when not a terminal

    # TensorBoard: per-epoch train and validation curves with the learning rate; HParams.
    train = scalars(run / "tensorboard" / "train")
    validation = scalars(run / "tensorboard" / "validation")
    assert [step for step, _ in train["epoch_loss"]] == [0, 1]
    assert [step for step, _ in validation["epoch_accuracy"]] == [0, 1]
    assert train["epoch_learning_rate"][0][1] == pytest.approx(0.001)
    assert validation["epoch_accuracy"][-1][1] == pytest.approx(metrics["val_accuracy"], abs=1e-6)
    root = scalars(run / "tensorboard")
    assert root["test_accuracy"][0][1] == pytest.approx(metrics["test_accuracy"], abs=1e-6)
    hp = hparams(run / "tensorboard")
    assert hp["data.name"] == "digits" and hp["model.name"] == "convnet"
    assert hp["optimizer.learning_rate"] == pytest.approx(0.001)


@pytest.mark.slow
def test_default_run_reaches_the_promised_accuracy(tmp_path):
    """`train` with no arguments: the README's promise (test accuracy >= 0.95)."""
    result = run_train(cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = read_metrics(only_run_dir(tmp_path))
    assert metrics["test_accuracy"] >= 0.95, metrics


@pytest.mark.slow
def test_image_folder_learns_a_separable_problem(tmp_path):
    make_class_folder(tmp_path / "photos", per_class=30, suffix=".png")
    result = run_train(
        "data=image_folder",
        f"data.root={tmp_path / 'photos'}",
        "data.image_size=[16,16]",
        "data.batch_size=8",
        "data.validation_split=0.2",
        "data.test_split=0.2",
        "trainer.epochs=8",
        "optimizer=adam",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = read_metrics(only_run_dir(tmp_path))
    assert metrics["best_val_accuracy"] >= 0.9 and metrics["test_accuracy"] >= 0.9, metrics


@pytest.mark.slow
def test_vgg16_finetune_runs_both_phases_as_one_curve(tmp_path, cats_dogs_filtered):
    # Early stopping that must fire after epoch 2 of phase 1 (no val_loss gain of 10):
    # phase 2 still runs, and its epochs follow on from where phase 1 stopped.
    result = run_train(
        *tiny_vgg16_finetune(cats_dogs_filtered),
        "trainer.epochs=4",
        "model.fine_tune_epochs=1",
        "callbacks=[model_checkpoint,early_stopping]",
        "callbacks.early_stopping.patience=0",
        "+callbacks.early_stopping.min_delta=10",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = only_run_dir(tmp_path)
    assert read_metrics(run)["epochs"] == 3
    assert "Fine-tuning from block5_conv1" in result.stdout
    assert "fine-tune Epoch 3/3" in result.stdout
    # One continuous curve: epochs 0-1 from phase 1, epoch 2 from phase 2.
    train_scalars = scalars(run / "tensorboard" / "train")
    assert [step for step, _ in train_scalars["epoch_loss"]] == [0, 1, 2]
    lrs = [value for _, value in train_scalars["epoch_learning_rate"]]
    # The book's 2e-5 while the head trains on the frozen base, then 1e-5 for fine-tuning.
    assert lrs == [pytest.approx(2e-5), pytest.approx(2e-5), pytest.approx(1e-5)]

    from kerasrun.models import load_model

    model = load_model(run / "model.keras")
    conv_base = model.get_layer("conv_base")
    trainable = [layer.name for layer in conv_base.layers if layer.trainable and layer.weights]
    assert trainable == ["block5_conv1", "block5_conv2", "block5_conv3"]
    assert len(model.trainable_weights) == 4 + 6  # the head's Dense kernels/biases + block5


@pytest.mark.slow
def test_sweep_gives_each_job_its_own_directory_and_a_fresh_keras_session(tmp_path):
    result = run_train("-m", "optimizer.learning_rate=1e-3,1e-4", "debug=default", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "outputs" / "sweeps").iterdir()
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert [j.name for j in jobs] == [
        "0_debug=default,optimizer.learning_rate=0.001",
        "1_debug=default,optimizer.learning_rate=0.0001",
    ]
    import keras

    names = []
    for job in jobs:
        assert read_metrics(job)["status"] == "finished"
        assert scalars(job / "tensorboard" / "train")["epoch_loss"]
        names.append([layer.name for layer in keras.models.load_model(job / "model.keras").layers])
    assert names[0] == names[1]  # no "conv2d_2" in the second job: the session was cleared


@pytest.mark.skipif(not CATS_AND_DOGS.is_dir(), reason="../shared/data is not here")
@pytest.mark.slow
def test_vgg16_on_the_real_cats_and_dogs_photos(tmp_path):
    """The real JPEGs through the cats_dogs loader and a VGG16 (random weights: no download)."""
    result = run_train(
        "data=cats_dogs",
        f"data.root={CATS_AND_DOGS}",
        "data.image_size=[32,32]",
        "model=vgg16_feature_extraction",
        "model.weights=null",
        "debug=default",
        "trainer.test_steps=null",  # the whole test split, to compare with evaluate's
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = only_run_dir(tmp_path)
    metrics = read_metrics(run)
    assert metrics["status"] == "finished"
    assert "train 2000 · validation 500 · test 500 · 2 classes" in result.stdout
    assert "Warning" not in result.stdout + result.stderr
    # The saved model, scored again on the test photos rebuilt from the run's config: every
    # one of the 500 decoded (none dropped), labelled by its folder (250 cats, 250 dogs), and
    # the same accuracy as train's own final evaluation.
    from kerasrun.evaluate import evaluate

    again = evaluate(str(run), split="test", checkpoint="last", misclassified=0)
    confusion = np.array(again["confusion_matrix"]["counts"])
    assert again["examples"] == 500 and confusion.sum(axis=1).tolist() == [250, 250]
    assert again["confusion_matrix"]["class_names"] == ["cats", "dogs"]
    assert np.trace(confusion) / 500 == pytest.approx(metrics["test_accuracy"], abs=1e-6)
    assert again["accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize(
    "setting, precision, xla",
    [
        ("trainer.precision=mixed_bfloat16", "mixed_bfloat16", False),
        ("trainer.jit_compile=true", "float32", True),
    ],
)
def test_explicit_precision_and_xla_are_applied_and_saved(tmp_path, setting, precision, xla):
    """`auto` is float32/no XLA here; asking explicitly must still work (what a GPU gets):
    the saved model's hidden layers compute in the asked precision, and XLA compiled the
    steps (its compiler's dump directory, asked of XLA itself, holds the modules) only
    when asked."""
    dump = tmp_path / "xla_dump"
    result = run_train(
        setting, "debug=default", cwd=tmp_path, env={"XLA_FLAGS": f"--xla_dump_to={dump}"}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = only_run_dir(tmp_path)
    saved = yaml.safe_load((run / "config.yaml").read_text())["runtime"]
    assert (saved["precision"], saved["jit_compile"]) == (precision, xla)
    compiled = [path.name for path in dump.glob("*one_step_on_data*")] if dump.exists() else []
    assert bool(compiled) is xla, compiled[:3]

    model = keras.models.load_model(run / "model.keras")
    hidden = [layer for layer in model.layers if layer.weights and layer.name != "predictions"]
    assert hidden and {layer.dtype_policy.name for layer in hidden} == {precision}
    compute = {"mixed_bfloat16": "bfloat16", "float32": "float32"}[precision]
    assert {keras.backend.standardize_dtype(layer.output.dtype) for layer in hidden} == {compute}
    predictions = model.predict(np.zeros((2, 8, 8, 1), "float32"), verbose=0)
    assert predictions.dtype == np.float32  # the head stays float32 under mixed precision


# early=True: refused from the config alone, before TensorFlow is even imported.
@pytest.mark.parametrize(
    "overrides, expected, early",
    [
        (["model=resnet"], "Available options in 'model'", True),
        (["trainer.epoch=3"], "trainer.epoch", True),
        (["data.batch_size=0"], "data.batch_size", True),
        (["optimizer.learning_rate=-1"], "optimizer.learning_rate", True),
        (["+callbacks.evil._target_=os.system"], "callbacks.evil._target_", True),
        (["+model.unknown_key=1"], "model.unknown_key", True),
        (["trainer.precision=float8"], "trainer.precision", False),
        (["trainer.loss=maee"], "trainer.loss", False),
        (["data=image_folder", "data.root=/nonexistent/photos"], "/nonexistent/photos", False),
        (
            ["model=pretrained", "model.backbone=ResNet9000", "model.weights=null"],
            "ResNet9000",
            False,
        ),
        (["model=vgg16_feature_extraction", "model.weights=null"], "data.image_size", False),
    ],
)
def test_bad_input_is_one_clear_line_before_training(tmp_path, overrides, expected, early):
    result = run_train(*overrides, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-2000:]  # Hydra's own errors too (hydra_errors.py)
    assert expected in output, output[-2000:]
    assert "Traceback" not in output
    assert "Epoch 1/" not in output  # nothing was trained
    if early:
        assert "Runtime:" not in output
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and expected in errors[0], output[-2000:]
    runs = tmp_path / "outputs" / "runs"
    for run in runs.iterdir() if runs.exists() else []:
        assert not (run / "model.keras").exists()


def test_offline_download_failure_says_where_to_put_the_file(tmp_path):
    """No network in tests: the proxy is a closed port on 127.0.0.1, so urllib fails at once."""
    proxy = "http://127.0.0.1:9"
    env = {
        "HTTP_PROXY": proxy,
        "HTTPS_PROXY": proxy,
        "http_proxy": proxy,
        "https_proxy": proxy,
        "KERAS_HOME": str(tmp_path / "keras_home"),
    }
    result = run_train(
        "data=cats_dogs", f"data.cache_dir={tmp_path / 'keras_home'}", cwd=tmp_path, env=env
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-2000:]
    (error,) = [line for line in output.splitlines() if line.startswith("Error:")]
    assert "cats_and_dogs_filtered.zip" in error and "data.root" in error
    assert "Traceback" not in output


def test_no_callbacks_and_no_loggers_is_a_plain_fit(tmp_path):
    # callbacks=[] / logger=[] drop the keys from Hydra's config: a run without any.
    result = run_train("callbacks=[]", "logger=[]", "debug=default", cwd=tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    run = only_run_dir(tmp_path)
    assert read_metrics(run)["status"] == "finished" and (run / "model.keras").is_file()
    assert not (run / "tensorboard").exists() and not (run / "checkpoints").exists()


# --- end to end: a CIFAR-10 preset on your own images ------------------------------------------


def test_cifar10_preset_trains_on_an_image_folder(tmp_path):
    """`train experiment=cifar10_separable data=image_folder`: a preset's model, optimizer,
    augmentation and callbacks on a folder of JPEGs at CIFAR-10's size (the real CLI)."""
    photos = make_class_folder(tmp_path / "photos", per_class=12, size=(40, 36))
    result = run_train(
        "experiment=cifar10_separable",
        "data=image_folder",
        f"data.root={photos}",
        "data.image_size=[32,32]",
        "data.batch_size=8",
        "trainer.epochs=1",
        cwd=tmp_path,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    run = only_run_dir(tmp_path)
    metrics = read_metrics(run)
    assert metrics["status"] == "finished" and math.isfinite(metrics["loss"]), metrics
    model = load_model(run / "model.keras")
    assert model.name == "separable_convnet" and model.output_shape == (None, 1)  # binary head
    assert any(isinstance(x, keras.layers.BatchNormalization) for x in model.layers)  # preset


def test_train_reports_the_time_to_its_first_step_once(tmp_path):
    """One line, on the console and in train.log, however many epochs (here 2)."""
    result = run_train("trainer.epochs=2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = re.findall(r"First step after \d+\.\d s", result.stdout)
    assert len(lines) == 1, result.stdout
    log = (only_run_dir(tmp_path) / "train.log").read_text()
    assert log.count("First step after") == 1
    assert log.index("First step after") < log.index("Epoch 1/2")
