"""The chapter 6 Jena presets through the real `train` command, on a generated Jena-shaped CSV."""

import numpy as np
import pytest

from helpers import JENA_SMALL, only_run_dir, read_metrics, run_train, write_jena_csv

PRESETS = [
    "jena_climate_dense",
    "jena_climate_gru",
    "jena_climate_gru_dropout",
    "jena_climate_stacked_gru",
    "jena_climate_bigru",
    "jena_climate_conv1d",
    "jena_climate_conv1d_gru",
]


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_every_jena_preset_runs_one_debug_step_and_reports_the_baseline(tmp_path, preset):
    csv = write_jena_csv(tmp_path / "jena.csv")
    # The convolutional presets need other windows than JENA_SMALL's 48 steps (the book's: 240).
    extra = {
        "jena_climate_conv1d": ["data.lookback=128"],
        "jena_climate_conv1d_gru": ["data.lookback=48", "data.step=1"],
    }.get(preset, [])
    result = run_train(
        f"experiment={preset}",
        f"data.path={csv}",
        *JENA_SMALL,
        *extra,
        "debug=default",
        cwd=tmp_path,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    metrics = read_metrics(only_run_dir(tmp_path))
    assert metrics["status"] == "finished" and metrics["epochs"] == 1
    assert metrics["baseline_val_mae"] > 0 and metrics["baseline_val_mae_original"] > 0
    assert "Baseline (no learning): val_mae" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("model", ["gru", "lstm"])
def test_recurrent_models_beat_the_common_sense_baseline(tmp_path, model):
    csv = write_jena_csv(tmp_path / "jena.csv")
    result = run_train(
        "experiment=jena_climate_gru",
        f"model={model}",
        "model.num_words=null",
        "model.units=[16]",
        f"data.path={csv}",
        *JENA_SMALL,
        "trainer.epochs=6",
        "trainer.steps_per_epoch=null",
        "optimizer.learning_rate=0.003",
        cwd=tmp_path,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    metrics = read_metrics(only_run_dir(tmp_path))
    assert metrics["best_val_mae"] < 0.8 * metrics["baseline_val_mae"], metrics
    assert metrics["test_mae"] < metrics["baseline_test_mae"], metrics


def test_jena_naive_is_the_books_baseline_as_a_model_with_nothing_to_train(tmp_path):
    csv = write_jena_csv(tmp_path / "jena.csv")
    result = run_train(
        "experiment=jena_climate_naive", f"data.path={csv}", *JENA_SMALL, cwd=tmp_path
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    run = only_run_dir(tmp_path)
    metrics = read_metrics(run)
    assert metrics["status"] == "finished" and metrics["epochs"] == 0
    # The model's own evaluation equals the data builder's common-sense baseline.
    assert metrics["val_mae"] == pytest.approx(metrics["baseline_val_mae"], rel=1e-5)
    assert metrics["test_mae"] == pytest.approx(metrics["baseline_test_mae"], rel=1e-5)
    assert "0 trainable" in result.stdout
    # Built from Keras layers only: the saved model loads in safe mode and predicts the same.
    from kerasrun.models import load_model

    model = load_model(run / "model.keras")
    x = np.random.default_rng(0).normal(size=(3, *model.input_shape[1:])).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0)[:, 0], x[:, -1, 1], rtol=1e-6)


def test_last_value_needs_the_target_feature(tmp_path):
    csv = write_jena_csv(tmp_path / "jena.csv")
    result = run_train(
        "experiment=jena_climate_naive",
        f"data.path={csv}",
        *JENA_SMALL,
        "model.feature=14",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "model.feature must be the index of the target" in result.stderr
    assert "Received: model.feature=14" in result.stderr
