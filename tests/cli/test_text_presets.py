"""The chapter 3, 4 and 6.1 presets through the real `train` command, on generated data.

Each preset runs one debug step on a tiny file in Keras's own `imdb.npz` / `reuters.npz`
format (`data.path=`), and one learns a separable problem for real. The 6.1.3 presets
(`imdb_raw_glove_200`, `imdb_raw_noglove_200`) run on a tiny aclImdb tree and GloVe file
(conftest's `aclimdb` and `glove`).
"""

import keras
import numpy as np
import pytest

from helpers import GLOVE, GLOVE_DIM, embedding_of, only_run_dir, read_metrics, run_train


def write_keras_npz(path, *, classes, n_train=200, n_test=80, length=30, seed=0):
    """A text dataset as Keras's imdb.npz stores it (raw word ranks, before load_data adds the
    start mark and the offset of 3); class c often contains word 10+c."""
    rng = np.random.default_rng(seed)

    def split(n):
        labels = rng.integers(0, classes, n)
        seqs = []
        for label in labels:
            words = rng.integers(100, 5000, length)
            words[rng.random(length) < 0.3] = 10 + label  # the signal
            seqs.append(words.tolist())
        x = np.empty(n, dtype=object)
        x[:] = seqs
        return x, labels.astype("int64")

    x_train, y_train = split(n_train)
    x_test, y_test = split(n_test)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


PRESETS = {
    "imdb_dense": 2,
    "imdb_capacity_small": 2,
    "imdb_capacity_big": 2,
    "imdb_l2": 2,
    "imdb_dropout": 2,
    "imdb_embedding_flatten": 2,
    "imdb_simplernn": 2,
    "imdb_lstm": 2,
    "imdb_bilstm": 2,
    "imdb_conv1d": 2,
    "reuters_dense": 46,
    "reuters_bottleneck": 46,
}


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_every_text_preset_runs_one_debug_step(tmp_path, preset):
    data = write_keras_npz(tmp_path / "data.npz", classes=PRESETS[preset], n_train=120, n_test=20)
    # validation_size applies to the presets that hold out the first reviews, as the book;
    # the others hold out a seeded validation_split and ignore it.
    result = run_train(
        f"experiment={preset}",
        f"data.path={data}",
        "data.validation_size=20",
        "data.batch_size=16",  # the presets' 128 or 512 is more than these 100 examples
        "debug=default",
        cwd=tmp_path,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    metrics = read_metrics(only_run_dir(tmp_path))
    assert metrics["status"] == "finished" and metrics["epochs"] == 1


@pytest.mark.slow
def test_imdb_dense_learns_a_separable_problem(tmp_path):
    data = write_keras_npz(tmp_path / "imdb.npz", classes=2, n_train=600, n_test=100)
    result = run_train(
        "experiment=imdb_dense",
        f"data.path={data}",
        "data.validation_size=100",
        "data.batch_size=32",
        "trainer.epochs=5",
        cwd=tmp_path,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    metrics = read_metrics(only_run_dir(tmp_path))
    assert metrics["test_accuracy"] >= 0.9, metrics


@pytest.mark.slow
def test_boston_housing_is_a_regression_with_mae(tmp_path):
    """Keras's boston_housing.npz format (x, y): a linear signal; beat predicting the mean."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(506, 13))
    y = x @ rng.normal(size=13) * 3 + 22
    np.savez(tmp_path / "boston.npz", x=x, y=y)
    result = run_train(
        "data=boston_housing",
        f"data.path={tmp_path / 'boston.npz'}",
        "model=mlp",
        "model.units=[64,64]",
        "trainer.epochs=20",
        "trainer.loss=mae",  # the book's Jena loss; Boston's default is mse
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "Warning" not in output
    metrics = read_metrics(only_run_dir(tmp_path))
    baseline = float(np.mean(np.abs(y - y.mean())))  # predicting the mean price
    assert metrics["test_mae"] < baseline / 2, (metrics, baseline)
    assert metrics["test_loss"] == pytest.approx(metrics["test_mae"], rel=1e-4)  # loss is mae
    assert "best_val_mae" in metrics and "test_accuracy" not in metrics


# --- 6.1.3: raw aclImdb reviews and GloVe vectors ---------------------------------------------


def test_glove_preset_needs_the_glove_file(tmp_path, aclimdb):
    result = run_train("experiment=imdb_raw_glove_200", f"data.root={aclimdb}", cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "glove_path is required" in errors[0], output[-3000:]
    assert "Traceback" not in output


@pytest.mark.slow
def test_glove_preset_trains_with_a_frozen_embedding(tmp_path, aclimdb, glove):
    result = run_train(
        "experiment=imdb_raw_glove_200",
        "debug=default",
        f"data.root={aclimdb}",
        f"data.embeddings.path={glove}",  # or glove_path=, the preset's own key
        f"model.embedding_dim={GLOVE_DIM}",
        "data.train_samples=30",
        "data.validation_samples=20",
        "data.batch_size=16",
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "GloVe: 4 of the" in output
    run_dir = only_run_dir(tmp_path)
    metrics = read_metrics(run_dir)
    assert metrics["status"] == "finished" and metrics["epochs"] == 1
    model = keras.models.load_model(run_dir / "model.keras")
    layer = embedding_of(model)
    matrix = layer.get_weights()[0]
    assert layer.trainable is False and matrix.shape == (10000, GLOVE_DIM)
    assert {tuple(row) for row in matrix if row.any()} == {
        tuple(GLOVE[w]) for w in ("great", "awful", "movie", "boring")
    }  # unchanged by training
    assert (
        sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        == 100 * GLOVE_DIM * 32 + 32 + 33
    )


@pytest.mark.slow
def test_noglove_preset_learns_the_separable_reviews(tmp_path, aclimdb):
    result = run_train(
        "experiment=imdb_raw_noglove_200",
        f"data.root={aclimdb}",
        "data.train_samples=60",
        "data.validation_samples=20",
        "data.output_sequence_length=10",
        "trainer.epochs=8",
        cwd=tmp_path,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    metrics = read_metrics(only_run_dir(tmp_path))
    assert metrics["test_accuracy"] >= 0.9, metrics
