"""`debug=default` is small in every phase of a run, through the real `train`: fine-tuning,
K-fold (its folds and the final model) and a generative model's samples. What ran is read back
from history.csv, metrics.json, TensorBoard and the samples, not from the config."""

import pytest
from PIL import Image

from helpers import (
    only_run_dir,
    read_csv,
    read_metrics,
    run_train,
    scalars,
    tiny_vgg16_finetune,
)


@pytest.mark.slow
def test_debug_bounds_fine_tuning(tmp_path, cats_dogs_filtered):
    # vgg16_finetune's phase 2 is 100 epochs: debug=default trains it for 1.
    result = run_train(*tiny_vgg16_finetune(cats_dogs_filtered), "debug=default", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run = only_run_dir(tmp_path)
    assert read_metrics(run)["epochs"] == 2 and len(read_csv(run / "history.csv")) == 2
    # One epoch of each phase: the book's 2e-5 on the frozen base, then fine-tuning at 1e-5.
    lrs = [lr for _, lr in scalars(run / "tensorboard" / "train")["epoch_learning_rate"]]
    assert lrs == [pytest.approx(2e-5), pytest.approx(1e-5)]
    assert "model.fine_tune_epochs=100 lowered to 1 by trainer.limit.epochs=1" in result.stdout
    # The backup made at the phase boundary is not "resumed" in a fresh run.
    assert "Resumed" not in result.stdout + result.stderr


@pytest.mark.slow
def test_debug_bounds_the_folds_and_the_final_model(tmp_path):
    result = run_train("trainer.kfold=4", "trainer.final_epochs=50", "debug=default", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run = only_run_dir(tmp_path)
    metrics = read_metrics(run)
    # The first 2 of the 4 folds, each 1 epoch; then the final model 1 epoch, not 50.
    assert [fold["fold"] for fold in metrics["kfold"]["folds"]] == [1, 2]
    assert sorted(p.name for p in (run / "folds").iterdir()) == ["fold_1", "fold_2", "mean"]
    assert all(len(read_csv(run / "folds" / f / "history.csv")) == 1 for f in ("fold_1", "fold_2"))
    assert metrics["epochs"] == 1 and len(read_csv(run / "history.csv")) == 1
    assert "only the first 2 folds train" in result.stdout


@pytest.mark.slow
def test_debug_bounds_the_generated_samples(tmp_path):
    # The VAE's latent grid: the book's 15x15 digits, 4x4 under debug=default.
    result = run_train("model=vae", "data=digits", "debug=default", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run = only_run_dir(tmp_path)
    (png,) = (run / "samples").iterdir()
    assert Image.open(png).size == (4 * 8, 4 * 8)  # 8x8 digits, no margin
