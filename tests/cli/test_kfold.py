"""K-fold validation (`trainer.kfold`, the book's 3.6) through the real `train` command."""

import csv

import numpy as np
import pytest

from helpers import JENA_SMALL, only_run_dir, read_metrics, run_train, scalars, write_jena_csv


def write_boston(path, n=506, seed=0):
    """Keras's boston_housing.npz format: 13 features with a learnable linear price."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 13)) * np.arange(1, 14)
    y = 22 + x @ (rng.normal(size=13) / np.arange(1, 14)) * 3 + rng.normal(0, 0.5, n)
    np.savez(path, x=x, y=y)
    return path


@pytest.mark.slow
def test_boston_kfold_reports_each_fold_their_mean_and_a_final_model(tmp_path):
    npz = write_boston(tmp_path / "boston_housing.npz")
    result = run_train(
        "experiment=boston_housing_kfold",
        f"data.path={npz}",
        "data.batch_size=16",
        "trainer.kfold=3",
        "trainer.epochs=12",
        "trainer.final_epochs=4",
        cwd=tmp_path,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    run = only_run_dir(tmp_path)
    metrics = read_metrics(run)
    folds = metrics["kfold"]["folds"]
    # 404 training examples (Keras's split of 506), 3 folds of 134, validated once each.
    assert metrics["kfold"]["k"] == 3 and [f["fold"] for f in folds] == [1, 2, 3]
    assert all(f["train"] == 270 and f["validation"] == 134 and f["epochs"] == 12 for f in folds)
    maes = [f["val_mae"] for f in folds]
    assert metrics["kfold_val_mae"] == pytest.approx(np.mean(maes))
    assert metrics["kfold_val_mae_std"] == pytest.approx(np.std(maes))
    # It learned: each fold beats predicting the mean price.
    y = np.load(npz)["y"]
    assert max(maes) < np.mean(np.abs(y - y.mean())) / 2, (maes, metrics)
    # The final model: 4 epochs on all 404, then the test set.
    assert metrics["epochs"] == 4 and "test_mae" in metrics and (run / "model.keras").is_file()
    assert "3-fold validation" in result.stdout and "mean ± std" in result.stdout
    assert "Fold 2/3: val_loss" in result.stdout

    # TensorBoard: one run per fold, and the per-epoch mean curve over the folds.
    curves = []
    for i in (1, 2, 3):
        fold_dir = run / "folds" / f"fold_{i}"
        steps = scalars(fold_dir / "tensorboard" / "validation")["epoch_mae"]
        assert [s for s, _ in steps] == list(range(12))
        assert steps[-1][1] == pytest.approx(folds[i - 1]["val_mae"], rel=1e-5)
        with open(fold_dir / "history.csv") as f:
            curves.append([float(row["val_mae"]) for row in csv.DictReader(f)])
        assert read_metrics(fold_dir)["val_mae"] == folds[i - 1]["val_mae"]
    mean = scalars(run / "folds" / "mean" / "tensorboard" / "validation")["epoch_mae"]
    np.testing.assert_allclose([v for _, v in mean], np.mean(curves, axis=0), rtol=1e-5)
    # The K-fold score is a final metric of the run, beside its hyperparameters.
    final = scalars(run / "tensorboard")
    assert final["kfold_val_mae"][0][1] == pytest.approx(metrics["kfold_val_mae"], rel=1e-5)


@pytest.mark.slow
def test_kfold_without_final_epochs_keeps_only_the_scores(tmp_path):
    result = run_train(
        "trainer.kfold=2", "trainer.epochs=1", "trainer.final_epochs=null", cwd=tmp_path
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    run = only_run_dir(tmp_path)
    metrics = read_metrics(run)
    assert metrics["status"] == "finished" and metrics["epochs"] == 0
    assert len(metrics["kfold"]["folds"]) == 2 and 0 <= metrics["kfold_val_accuracy"] <= 1
    assert not (run / "model.keras").exists() and "test_accuracy" not in metrics
    assert "No final model" in result.stdout


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["trainer.kfold=1"], "trainer.kfold must be an integer of at least 2 or null"),
        (["trainer.final_epochs=0"], "trainer.final_epochs must be a positive integer or null"),
        (["trainer.epochs=-1"], "trainer.epochs must be a non-negative integer"),
    ],
)
def test_bad_kfold_settings_are_one_line_before_training(tmp_path, overrides, expected):
    result = run_train(*overrides, cwd=tmp_path)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and expected in errors[0], result.stderr[-2000:]
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.slow
def test_time_series_are_not_folded(tmp_path):
    csv_path = write_jena_csv(tmp_path / "jena.csv")
    result = run_train(
        "experiment=jena_climate_dense",
        f"data.path={csv_path}",
        *JENA_SMALL,
        "trainer.kfold=3",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "trainer.kfold" in errors[0] and "data=jena_climate" in errors[0]
    assert "Traceback" not in result.stdout + result.stderr
