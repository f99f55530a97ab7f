"""The book's generative recipes (chapter 8) through the real `train`: a digits VAE, a
one-folder DCGAN and a character-level text generator. What they make each epoch is read back
from TensorBoard's event files with TensorBoard's own reader, and from <run>/samples/."""

import io
import math
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from helpers import (
    SHORT_TEXT,
    make_class_folder,
    only_run_dir,
    read_metrics,
    run_train,
    write_text_file,
)
from kerasrun.evaluate import evaluate
from kerasrun.pictures import GRID_MARGIN
from kerasrun.training.text_samples import (
    from_code_block,
)


def tensorboard_images(event_dir):
    """`{tag: [(step, PIL image), ...]}` of the `tf.summary.image`s (TensorBoard's reader)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    acc = EventAccumulator(str(event_dir), size_guidance={"tensors": 0})
    acc.Reload()
    images = {}
    for tag in acc.Tags()["tensors"]:
        if acc.SummaryMetadata(tag).plugin_data.plugin_name != "images":
            continue
        for event in acc.Tensors(tag):
            width, height, png = tensor_util.make_ndarray(event.tensor_proto)[:3]
            image = Image.open(io.BytesIO(png))
            assert image.size == (int(width), int(height))
            images.setdefault(tag, []).append((event.step, image))
    return images


# --- a VAE and a DCGAN ------------------------------------------------------------------------


def test_train_vae_on_digits_logs_the_latent_grid_each_epoch(tmp_path):
    result = run_train(
        "model=vae", "data=digits", "trainer.epochs=2", "model.samples.grid_size=5", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = only_run_dir(tmp_path)
    metrics = read_metrics(run)
    for key in ("loss", "val_loss", "best_val_loss", "test_loss", "test_kl_loss"):
        assert math.isfinite(metrics[key]), key
    assert metrics["val_loss"] < 0.69  # below a blank decoder's ln 2: it reconstructs something
    grids = tensorboard_images(run / "tensorboard" / "samples")["latent_grid"]
    assert [step for step, _ in grids] == [0, 1]  # each epoch, as Keras's scalars
    assert all(image.size == (5 * 8, 5 * 8) for _, image in grids)
    pngs = sorted(p.name for p in (run / "samples").iterdir())
    assert pngs == ["epoch_001.png", "epoch_002.png"]
    # `evaluate` scores its own losses: no confusion matrix of labels it never learnt.
    results = evaluate(str(run), split="test", checkpoint="last")
    assert results["loss"] == pytest.approx(metrics["test_loss"], rel=0.02)  # z is sampled
    assert "confusion_matrix" not in results
    # `predict` and `visualize` have no labels to show for it: one line that says where its
    # images are, before the model is loaded.
    Image.new("L", (8, 8)).save(tmp_path / "digit.png")
    for command in (
        ["predict", f"run={run}", f"inputs=[{tmp_path / 'digit.png'}]"],
        ["visualize", "kind=filters", f"run={run}"],
    ):
        result = subprocess.run(
            [str(Path(sys.executable).with_name(command[0])), *command[1:]],
            capture_output=True, text=True, cwd=tmp_path, timeout=120,
        )  # fmt: skip
        assert result.returncode == 2, result.stdout + result.stderr
        (error,) = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
        assert "model=vae run, which generates images" in error and str(run / "samples") in error
        assert "Traceback" not in result.stdout + result.stderr


def test_train_dcgan_on_one_image_folder(tmp_path):
    make_class_folder(tmp_path / "photos", classes=("frogs",), per_class=12, size=(40, 36))
    result = run_train(
        "model=dcgan",
        "data=image_folder",
        f"data.root={tmp_path / 'photos'}",
        "data.classes=[frogs]",  # one folder alone: a GAN needs no second class
        "data.image_size=[24,24]",
        "data.batch_size=4",
        "data.validation_split=0",  # as the book's (and dcgan_frogs): no validation
        "trainer.epochs=2",
        "trainer.steps_per_epoch=2",
        "model.generator_filters=8",
        "model.discriminator_filters=8",
        "model.samples.count=4",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "monitor" not in result.stderr  # g_loss exists: no Keras warning about it
    run = only_run_dir(tmp_path)
    metrics = read_metrics(run)
    assert math.isfinite(metrics["d_loss"]) and math.isfinite(metrics["g_loss"])
    assert metrics["epochs"] == 2 and "best_epoch" in metrics  # monitor: g_loss
    assert (run / "checkpoints" / "best.keras").is_file()
    generated = tensorboard_images(run / "tensorboard" / "samples")["generated"]
    side = 2 * 24 + GRID_MARGIN
    assert [(step, image.size, image.mode) for step, image in generated] == [
        (0, (side, side), "RGB"),
        (1, (side, side), "RGB"),
    ]
    assert (run / "samples" / "epoch_002.png").is_file()


@pytest.mark.slow
def test_a_dcgan_whose_g_loss_diverges_ends_failed(tmp_path):
    # Absurd learning rates, no clipping: the generator's loss becomes NaN in epoch 1 while
    # the discriminator's stays finite. A GAN has no `loss`: its run fails all the same.
    make_class_folder(tmp_path / "photos", classes=("frogs",), per_class=12, size=(40, 36))
    result = run_train(
        "model=dcgan",
        "data=image_folder",
        f"data.root={tmp_path / 'photos'}",
        "data.classes=[frogs]",
        "data.image_size=[24,24]",
        "data.batch_size=4",
        "data.validation_split=0",
        "trainer.epochs=2",
        "trainer.steps_per_epoch=2",
        "model.generator_filters=8",
        "model.discriminator_filters=8",
        "model.samples.count=4",
        "model.discriminator_learning_rate=1e30",
        "model.generator_learning_rate=1e30",
        "model.clipvalue=null",
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in output, output[-3000:]
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert error.startswith("Error: Training diverged: g_loss became nan in epoch 1;"), error
    run = only_run_dir(tmp_path)
    metrics = read_metrics(run)
    assert (metrics["status"], metrics["diverged"], metrics["epochs"]) == ("failed", True, 1)
    assert math.isnan(metrics["g_loss"]) and math.isfinite(metrics["d_loss"])
    assert metrics["error"] == error.removeprefix("Error: ")
    assert not (run / "model.keras").exists()  # a NaN generator is not the run's result


# --- a character-level text generator ---------------------------------------------------------


def tensorboard_texts(event_dir):
    """`{tag: [(step, text), ...]}` of the text summaries in `event_dir` (TensorBoard's reader)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    acc = EventAccumulator(str(event_dir), size_guidance={"tensors": 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags()["tensors"]:
        assert acc.SummaryMetadata(tag).plugin_data.plugin_name == "text"
        for event in acc.Tensors(tag):
            value = tensor_util.make_ndarray(event.tensor_proto).item().decode("utf-8")
            out.setdefault(tag, []).append((event.step, from_code_block(value)))
    return out


def test_train_writes_samples_per_temperature_each_epoch(tmp_path):
    text = write_text_file(tmp_path, SHORT_TEXT * 6)
    result = run_train(
        "model=text_generation",
        "data=text_file",
        f"data.path={text}",
        "data.maxlen=10",
        "data.batch_size=32",
        "trainer.epochs=2",
        "optimizer.learning_rate=0.01",
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    run = only_run_dir(tmp_path)
    metrics = read_metrics(run)
    assert metrics["epochs"] == 2 and math.isfinite(metrics["loss"])
    assert math.isfinite(metrics["val_loss"]) and metrics["loss"] < math.log(
        len(set(SHORT_TEXT.lower()))
    )

    chars = set(SHORT_TEXT.lower())
    texts = tensorboard_texts(run / "tensorboard" / "samples")
    temperatures = ["temperature_0.2", "temperature_0.5", "temperature_1", "temperature_1.2"]
    assert sorted(texts) == ["seed", *temperatures]
    for tag, values in texts.items():
        assert [step for step, _ in values] == [0, 1]  # the epochs, as TensorBoard's scalars
        for _, sample_text in values:
            assert len(sample_text) == (10 if tag == "seed" else 400)
            assert set(sample_text) <= chars
    # The files hold the same texts in full; the console one truncated line per temperature.
    for epoch in (1, 2):
        saved = (run / "samples" / f"epoch_{epoch:03d}.txt").read_text(encoding="utf-8")
        seed = texts["seed"][epoch - 1][1]
        for tag in temperatures:
            assert seed + texts[tag][epoch - 1][1] in saved
    log = (run / "train.log").read_text(encoding="utf-8")
    lines = [line for line in log.splitlines() if "  temperature " in line]
    assert len(lines) == 8 and all(len(line) < 200 for line in lines)
    assert log.count("Samples after epoch") == 2
