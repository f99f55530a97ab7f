"""Sweeps through the real `train -m`: grids, Optuna, failures, resume, fresh processes."""

import csv
import json
import os
import signal
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
import yaml

from helpers import TRAIN, hparams, read_metrics, run_train, scalars


def only_sweep_dir(cwd):
    (sweep,) = (Path(cwd) / "outputs" / "sweeps").iterdir()
    return sweep


def jobs(sweep):
    return sorted((d for d in sweep.iterdir() if (d / ".hydra").is_dir()), key=lambda d: d.name)


def summary(sweep):
    with open(sweep / "summary.csv", newline="") as f:
        return list(csv.DictReader(f))


def model_config(job):
    """The saved model's Keras config, read from the .keras zip (no TensorFlow needed)."""
    with zipfile.ZipFile(job / "model.keras") as z:
        return json.loads(z.read("config.json"))


def layer_policies(job):
    """`{layer name: dtype policy name}` of the saved model's layers, in order (no InputLayer)."""
    layers = model_config(job)["config"]["layers"]
    policies = {}
    for layer in layers:
        if layer["class_name"] != "InputLayer":
            dtype = layer["config"]["dtype"]  # a serialized DTypePolicy, or a plain name
            policies[layer["config"]["name"]] = (
                dtype["config"]["name"] if isinstance(dtype, dict) else dtype
            )
    return policies


@pytest.mark.slow
def test_grid_sweep_jobs_are_separate_runs_with_their_own_keras_state(tmp_path):
    result = run_train(
        "-m",
        "debug=default",
        "optimizer.learning_rate=0.001,0.003",
        "trainer.precision=mixed_float16,float32",
        cwd=tmp_path,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    sweep = only_sweep_dir(tmp_path)
    dirs = jobs(sweep)
    assert [d.name for d in dirs] == [
        "0_debug=default,optimizer.learning_rate=0.001,trainer.precision=mixed_float16",
        "1_debug=default,optimizer.learning_rate=0.001,trainer.precision=float32",
        "2_debug=default,optimizer.learning_rate=0.003,trainer.precision=mixed_float16",
        "3_debug=default,optimizer.learning_rate=0.003,trainer.precision=float32",
    ]
    names = None
    for i, job in enumerate(dirs):
        precision = "float32" if i % 2 else "mixed_float16"
        config = yaml.safe_load((job / "config.yaml").read_text())
        assert config["runtime"]["precision"] == precision
        policies = layer_policies(job)
        # No state from the job before: the same layer names (no conv2d_7), its own policy
        # in every hidden layer (a float32 job after a mixed one too), a float32 head.
        names = names or list(policies)
        assert list(policies) == names
        assert policies.pop("predictions") == "float32"
        assert set(policies.values()) == {precision}, policies
        # Its own TensorBoard run: the swept values in HParams, real final metrics beside them.
        hp = hparams(job / "tensorboard")
        assert hp["optimizer.learning_rate"] == pytest.approx([0.001, 0.003][i // 2])
        assert hp["trainer.precision"] == precision and hp["model.name"] == "convnet"
        final = scalars(job / "tensorboard")
        metrics = read_metrics(job)
        assert final["test_accuracy"][0][1] == pytest.approx(metrics["test_accuracy"], rel=1e-5)

    rows = summary(sweep)
    assert len(rows) == 4 and all(r["status"] == "finished" for r in rows)
    values = [float(r["best_val_accuracy"]) for r in rows]
    assert values == sorted(values, reverse=True)  # best first
    assert f"Best job: {rows[0]['dir']}" in result.stdout.replace("\n", "")


@pytest.mark.slow
def test_a_failed_job_is_recorded_and_the_sweep_goes_on(tmp_path):
    result = run_train("-m", "debug=default", "optimizer.learning_rate=-1,0.001", cwd=tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    sweep = only_sweep_dir(tmp_path)
    failed, ok = jobs(sweep)
    assert read_metrics(failed)["status"] == "failed"
    assert "optimizer.learning_rate=-1" in read_metrics(failed)["error"]
    assert read_metrics(ok)["status"] == "finished"
    rows = summary(sweep)
    assert [r["status"] for r in rows] == ["finished", "failed"]  # scored jobs first
    assert "Received: optimizer.learning_rate=-1" in rows[1]["error"]
    assert "1 of 2 jobs did not finish" in result.stdout


@pytest.mark.slow
def test_optuna_search_records_a_failed_trial_and_goes_on(tmp_path):
    result = run_train(
        "hparams_search=optuna",
        "debug=default",
        "hydra.sweeper.n_trials=3",
        "trainer.steps_per_execution=choice(1,-1)",  # -1 fails: the search must go on
        cwd=tmp_path,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    sweep = only_sweep_dir(tmp_path)
    rows = summary(sweep)
    statuses = sorted(r["status"] for r in rows)
    assert len(rows) == 3 and "failed" in statuses and "finished" in statuses, rows
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["best_params"]["trainer.steps_per_execution"] == 1
    best = max(float(r["best_val_accuracy"]) for r in rows if r["status"] == "finished")
    assert results["best_value"] == pytest.approx(best)
    assert "Directions: ['maximize']" in result.stdout + result.stderr  # from best_val_accuracy
    assert "Failed experiment" in result.stdout + result.stderr


@pytest.mark.slow
def test_a_killed_sweep_resumes_where_it_stopped(tmp_path):
    overrides = ["-m", "trainer.epochs=1,30"]
    process = subprocess.Popen(
        [TRAIN, *overrides],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    history = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # until job 1 has a few epochs behind it
        found = list(tmp_path.glob("outputs/sweeps/*/1_*/history.csv"))
        if found and len(found[0].read_text().splitlines()) > 4:
            history = found[0]
            break
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert history is not None, "job 1 never got going"
    sweep = only_sweep_dir(tmp_path)
    first, second = jobs(sweep)
    assert read_metrics(first)["status"] == "finished"
    assert not (second / "metrics.json").exists() and (second / "backup").is_dir()
    done_before = len(history.read_text().splitlines()) - 1
    first_metrics = (first / "metrics.json").read_text()

    result = run_train(*overrides, f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "already finished" in result.stdout and (first / "metrics.json").read_text() == (
        first_metrics
    )
    metrics = read_metrics(second)
    assert metrics["status"] == "finished" and metrics["epochs"] == 30
    # It continued: it did not start again from epoch 1.
    assert f"Epoch {done_before + 2}/30" in result.stdout and "Epoch 1/30 " not in result.stdout
    with open(history, newline="") as f:
        epochs = sorted({int(row["epoch"]) for row in csv.DictReader(f)})
    assert epochs == list(range(30))
    steps = {s for s, _ in scalars(second / "tensorboard" / "validation")["epoch_accuracy"]}
    assert steps == set(range(30))  # TensorBoard's curve has no gap
    assert [r["status"] for r in summary(sweep)] == ["finished", "finished"]


@pytest.mark.slow
def test_process_launcher_runs_each_job_in_a_fresh_process_with_one_gpu(tmp_path):
    result = run_train(
        "-m",
        "hydra/launcher=processes",
        "hydra.launcher.n_jobs=2",
        "hydra.launcher.gpus=[0,1]",
        "debug=default",
        "optimizer.learning_rate=0.001,0.002,0.003",
        cwd=tmp_path,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    sweep = only_sweep_dir(tmp_path)
    runtimes = [yaml.safe_load((j / "config.yaml").read_text())["runtime"] for j in jobs(sweep)]
    assert len(runtimes) == 3
    pids = {r["process_id"] for r in runtimes}
    assert len(pids) == 3 and os.getpid() not in pids  # a new process for every job
    assert {r["cuda_visible_devices"] for r in runtimes} == {"0", "1"}  # one GPU each
    assert len(summary(sweep)) == 3 and "Launching 3 jobs, 2 at a time" in result.stdout
