"""`runs`: the real console script in subprocesses, on run directories laid out like `train`'s.

Most tests write config.yaml / metrics.json / .hydra/overrides.yaml / train.log by hand, in the
exact format `train` writes them (fast); one test lists two real `train debug=default` runs.
"""

import csv
import io
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from helpers import run_train

RUNS = str(Path(sys.executable).with_name("runs"))
NOW = datetime.now().replace(microsecond=0)


def run_runs(*args, cwd):
    """`runs <args>` in `cwd`; returns the CompletedProcess."""
    return subprocess.run([RUNS, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def rows(*args, cwd):
    """The rows `runs --csv - <args>` prints, as dicts."""
    result = run_runs("--csv", "-", *args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return list(csv.DictReader(io.StringIO(result.stdout)))


def config(run_dir, data, model, optimized_metric):
    """A config.yaml as `train` writes it (the resolved config plus `runtime`)."""
    logs = {"log_dir": f"{run_dir}/tensorboard", "histogram_freq": 0}
    return {
        "seed": 42,
        "monitor": "val_loss",
        "optimized_metric": optimized_metric,
        "data": {"name": data, "validation_split": 0.15, "batch_size": 64, "augment": None},
        "optimizer": {"_target_": "keras.optimizers.RMSprop", "learning_rate": 0.001},
        "trainer": {"epochs": 10, "steps_per_epoch": None, "precision": "auto", "kfold": None},
        "model": {"name": model, "filters": [64, 128], "units": 128, "dropout": 0.5},
        "callbacks": {"terminate_on_nan": {"_target_": "keras.callbacks.TerminateOnNaN"}},
        "logger": {"tensorboard": {"_target_": "keras.callbacks.TensorBoard", **logs}},
        "paths": {"output_dir": str(run_dir), "root": "outputs"},
        "runtime": {"devices": "CPU", "precision": "float32", "jit_compile": False},
    }


def finished(accuracy, loss=1.0, epochs=10, **extra):
    """A metrics.json of a finished classification run."""
    return {
        "accuracy": accuracy,
        "loss": loss,
        "val_accuracy": accuracy,
        "val_loss": loss,
        "best_val_accuracy": accuracy,
        "best_val_loss": loss,
        "best_epoch": epochs,
        "test_accuracy": accuracy - 0.01,
        "test_loss": loss + 0.1,
        "epochs": epochs,
        "wall_time_s": 12.34,
        "status": "finished",
        **extra,
    }


def fake_run(
    cwd,
    started=NOW,
    data="digits",
    model="convnet",
    *,
    metrics=None,
    overrides=(),
    job=None,
    log_age_s=3600,
    optimized_metric="best_val_accuracy",
):
    """Writes one run directory (or sweep job with `job=N`) like `train`; returns its path."""
    stamp = f"{started:%Y-%m-%d_%H-%M-%S}"
    overrides = [f"data={data}", f"model={model}", *overrides]
    if job is None:
        run_dir = cwd / "outputs" / "runs" / f"{stamp}_{data}-{model}"
    else:
        sweep = cwd / "outputs" / "sweeps" / stamp
        # Hydra's override_dirname leaves out hydra.job.config.override_dirname.exclude_keys.
        dirname = ",".join(sorted(o for o in overrides if not o.startswith("data.root=")))
        run_dir = sweep / f"{job}_{dirname}"
    (run_dir / ".hydra").mkdir(parents=True)
    if job is not None:
        (run_dir.parent / "multirun.yaml").write_text("hydra:\n  mode: MULTIRUN\n")
    cfg = config(run_dir, data, model, optimized_metric)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    (run_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    log = run_dir / "train.log"
    log.write_text(f"[{started:%H:%M:%S}] INFO Runtime: CPU · float32 · XLA off\n")
    os.utime(log, (time.time() - log_age_s,) * 2)
    if metrics is not None:
        (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return run_dir


def paths(found):
    return [row["path"] for row in found]


def rel(run_dir, cwd):
    return str(run_dir.relative_to(cwd))


@pytest.fixture
def three_runs(tmp_path):
    """Three finished runs, an hour apart: digits/convnet 0.90, digits/mlp 0.95, mnist 0.80."""
    return [
        fake_run(tmp_path, NOW - timedelta(hours=3), metrics=finished(0.90, loss=0.5)),
        fake_run(tmp_path, NOW - timedelta(hours=2), model="mlp", metrics=finished(0.95, 0.7)),
        fake_run(tmp_path, NOW - timedelta(hours=1), data="mnist", metrics=finished(0.80, 0.3)),
    ]


def test_table_lists_runs_newest_first_with_their_metrics(tmp_path, three_runs):
    result = run_runs(cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "3 runs under outputs/" in out
    for header in ("date/time", "kind", "status", "epochs", "best_val_accuracy", "test_accuracy"):
        assert header in out
    lines = [line for line in out.splitlines() if "outputs/runs/" in line]
    assert len(lines) == 3
    for run_dir, line in zip(three_runs[::-1], lines, strict=True):
        assert rel(run_dir, tmp_path) in line
    assert "0.9500" in out and "12.3 s" in out and "finished" in out
    assert "Best" not in out  # sorted by time: no best line
    assert paths(rows(cwd=tmp_path)) == [rel(r, tmp_path) for r in three_runs[::-1]]


def test_sweep_jobs_and_key_overrides(tmp_path):
    started = NOW - timedelta(minutes=5)
    for job, lr in enumerate(("0.001", "0.01")):
        fake_run(
            tmp_path,
            started,
            metrics=finished(0.9 - job / 10),
            overrides=[f"optimizer.learning_rate={lr}", "data.root=/data/cats", "seed=1"],
            job=job,
        )
    fake_run(tmp_path, NOW - timedelta(hours=1), metrics=finished(0.5))
    found = rows(cwd=tmp_path)
    assert [row["kind"] for row in found] == ["sweep #0", "sweep #1", "run"]
    assert found[0]["overrides"] == "optimizer.learning_rate=0.001, seed=1"  # no data=/paths
    assert found[0]["time"] == str(started)
    assert [row["kind"] for row in rows("--sweep", cwd=tmp_path)] == ["sweep #0", "sweep #1"]
    # ROOT may be one sweep's folder.
    sweep = next((tmp_path / "outputs" / "sweeps").iterdir())
    assert len(rows(str(sweep), cwd=tmp_path)) == 2


def test_filters_by_data_model_and_status(tmp_path, three_runs):
    fake_run(tmp_path, NOW - timedelta(hours=4), metrics={"status": "failed", "error": "E: x"})
    assert len(rows("--data", "digits", cwd=tmp_path)) == 3
    assert len(rows("--data", "digit", cwd=tmp_path)) == 0  # exact match
    assert paths(rows("--model", "mlp", cwd=tmp_path)) == [rel(three_runs[1], tmp_path)]
    assert [r["status"] for r in rows("--status", "failed", cwd=tmp_path)] == ["failed"]
    assert len(rows("--status", "finished,failed", "--data", "digits", cwd=tmp_path)) == 3
    result = run_runs("--model", "vgg16_finetune", cwd=tmp_path)
    assert result.returncode == 0
    assert "No runs under outputs/ match the filters (4 runs in all)." in result.stdout


def test_sort_by_metric_both_ways_missing_last(tmp_path, three_runs):
    killed = fake_run(tmp_path, NOW)  # no metrics: last whatever the direction
    convnet, mlp, mnist = (rel(r, tmp_path) for r in three_runs)
    # Accuracy: highest first by default; losses lowest first.
    assert paths(rows("--sort", "best_val_accuracy", cwd=tmp_path))[:3] == [mlp, convnet, mnist]
    assert paths(rows("--sort", "best_val_loss", cwd=tmp_path))[:3] == [mnist, convnet, mlp]
    assert paths(rows("--sort", "best_val_accuracy", "--asc", cwd=tmp_path))[:3] == [
        mnist,
        convnet,
        mlp,
    ]
    found = rows("--sort", "best_val_loss", "--desc", cwd=tmp_path)
    assert paths(found) == [mlp, convnet, mnist, rel(killed, tmp_path)]
    assert paths(rows("--sort", "best_val_accuracy", "--limit", "1", cwd=tmp_path)) == [mlp]
    # The table names the best run, also when sorted the other way round.
    result = run_runs("--sort", "best_val_accuracy", "--asc", cwd=tmp_path)
    assert f"Best best_val_accuracy: 0.9500 in {mlp}" in result.stdout
    assert (
        "Best best_val_loss: 0.3000 in " + mnist
        in run_runs("--sort", "best_val_loss", cwd=tmp_path).stdout
    )


def test_since_durations_and_dates(tmp_path):
    # Ages from this moment, not the module's NOW: a slow suite reaches this test long after
    # the import, and "10 minutes ago" would then be more than 30 minutes ago.
    now = datetime.now().replace(microsecond=0)
    for age in (timedelta(minutes=10), timedelta(hours=5), timedelta(days=3), timedelta(days=30)):
        fake_run(tmp_path, now - age, metrics=finished(0.9))
    assert len(rows("--since", "30m", cwd=tmp_path)) == 1
    assert len(rows("--since", "24h", cwd=tmp_path)) == 2
    assert len(rows("--since", "7d", cwd=tmp_path)) == 3
    since = (now - timedelta(days=10)).date().isoformat()
    assert len(rows("--since", since, cwd=tmp_path)) == 3


def test_failed_killed_running_and_config_error_runs(tmp_path):
    error = "RuntimeError: out of memory"
    failed = fake_run(
        tmp_path,
        NOW - timedelta(hours=4),
        metrics={"status": "failed", "error": error, "wall_time_s": 3.1},
    )
    killed = fake_run(tmp_path, NOW - timedelta(hours=3), log_age_s=3600)
    running = fake_run(tmp_path, NOW - timedelta(hours=2), log_age_s=5)
    bad = fake_run(tmp_path, NOW - timedelta(hours=1), model="mlp")
    (bad / "config.yaml").unlink()  # `train` exits 2 on a config error before writing it
    message = "data.batch_size must be a positive integer. Received: data.batch_size=0."
    (bad / "train.log").write_text(f"[10:00:00] ERROR {message}\n")
    os.utime(bad / "train.log", (time.time() - 3600,) * 2)
    found = {row["path"]: row for row in rows(cwd=tmp_path)}
    assert found[rel(failed, tmp_path)]["status"] == "failed"
    assert found[rel(failed, tmp_path)]["error"] == error
    assert found[rel(killed, tmp_path)]["status"] == "killed"
    assert found[rel(running, tmp_path)]["status"] == "running"
    assert found[rel(bad, tmp_path)]["status"] == "failed"
    assert found[rel(bad, tmp_path)]["model"] == "mlp"  # read from .hydra/config.yaml
    assert found[rel(bad, tmp_path)]["error"] == message
    table = run_runs("--status", "killed", cwd=tmp_path).stdout
    assert "killed" in table and rel(killed, tmp_path) in table


def test_corrupt_files_do_not_crash(tmp_path, three_runs):
    truncated = fake_run(tmp_path, NOW, metrics=finished(0.9))
    text = (truncated / "metrics.json").read_text()
    (truncated / "metrics.json").write_text(text[: len(text) // 2])
    bad_yaml = fake_run(tmp_path, NOW - timedelta(minutes=1), model="mlp", metrics=finished(0.9))
    (bad_yaml / "config.yaml").write_text("data: {name: [unclosed\n")
    (bad_yaml / ".hydra" / "overrides.yaml").write_text("- [\n")
    (tmp_path / "outputs" / "runs" / "notes").mkdir()  # no config.yaml, no .hydra: not a run
    (tmp_path / "outputs" / "runs" / "notes" / "metrics.json").write_text("{}")
    result = run_runs("--sort", "best_val_accuracy", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "unreadable" in result.stdout
    found = {row["path"]: row for row in rows(cwd=tmp_path)}
    assert len(found) == 5
    assert found[rel(truncated, tmp_path)]["status"] == "unreadable"
    assert "metrics.json" in found[rel(truncated, tmp_path)]["error"]
    assert found[rel(truncated, tmp_path)]["data"] == "digits"
    assert found[rel(bad_yaml, tmp_path)]["status"] == "unreadable"


def test_csv_file_has_the_rows_with_full_values(tmp_path, three_runs):
    result = run_runs("--sort", "test_accuracy", "--csv", "runs.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Wrote 3 rows to runs.csv" in result.stdout
    with open(tmp_path / "runs.csv", newline="") as f:
        found = list(csv.DictReader(f))
    assert list(found[0])[:7] == ["time", "kind", "data", "model", "overrides", "status", "epochs"]
    assert {"best_val_accuracy", "test_accuracy", "wall_time_s", "path"} <= set(found[0])
    assert [float(row["test_accuracy"]) for row in found] == [0.94, 0.89, 0.79]
    assert found[0]["path"] == rel(three_runs[1], tmp_path)
    assert found[0]["time"] == str(NOW - timedelta(hours=2))


@pytest.mark.parametrize(
    "args, start, received",
    [
        (["--since", "yesterday"], "Error: --since must be", "Received: --since=yesterday"),
        (["--sort", "best_val_acc"], "Error: --sort must be", "Received: --sort=best_val_acc"),
        (["--status", "done"], "Error: --status must be", "Received: --status=done"),
        (["--limit", "0"], "Error: --limit must be", "Received: --limit=0"),
    ],
)
def test_a_bad_option_is_one_error_line_and_exit_2(tmp_path, three_runs, args, start, received):
    result = run_runs(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(start) and received in lines[0]
    if args[0] == "--since":
        assert "24h" in lines[0] and "7d" in lines[0] and "2026-11-01" in lines[0]
    if args[0] == "--sort":  # the allowed values, and the likely one
        assert "time" in lines[0] and "Did you mean --sort=best_val_accuracy?" in lines[0]


def test_an_empty_or_missing_root_is_one_line(tmp_path):
    result = run_runs(cwd=tmp_path)
    assert (result.returncode, result.stdout) == (
        0,
        "No runs under outputs/. Train one with: train\n",
    )
    (tmp_path / "outputs" / "runs").mkdir(parents=True)
    result = run_runs("outputs/", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (
        0,
        "No runs under outputs/. Train one with: train\n",
    )


def test_symlinks_are_not_followed(tmp_path, three_runs):
    (tmp_path / "outputs" / "link").symlink_to(tmp_path / "outputs" / "runs")
    assert len(rows(cwd=tmp_path)) == 3


def test_runs_does_not_import_tensorflow(tmp_path, three_runs):
    code = (
        "import sys\n"
        "from kerasrun.runs import main\n"
        "assert main(['--sort', 'best_val_accuracy']) == 0\n"
        "print([m for m in ('tensorflow', 'keras', 'hydra') if m in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.slow
def test_lists_two_real_train_runs_sorted_by_their_metric(tmp_path):
    for learning_rate in ("1e-3", "1e-2"):
        result = run_train(
            "debug=default", f"optimizer.learning_rate={learning_rate}", cwd=tmp_path
        )
        assert result.returncode == 0, result.stderr[-3000:]
    found = rows("--sort", "best_val_accuracy", cwd=tmp_path)
    assert len(found) == 2
    assert {row["status"] for row in found} == {"finished"}
    assert {row["kind"] for row in found} == {"run"}
    assert {row["overrides"] for row in found} == {
        "debug=default, optimizer.learning_rate=1e-3",
        "debug=default, optimizer.learning_rate=1e-2",
    }
    for row in found:
        metrics = json.loads((tmp_path / row["path"] / "metrics.json").read_text())
        assert float(row["best_val_accuracy"]) == metrics["best_val_accuracy"]
        assert row["epochs"] == "1"
    scores = [float(row["best_val_accuracy"]) for row in found]
    assert scores == sorted(scores, reverse=True)
    table = run_runs("--sort", "best_val_accuracy", cwd=tmp_path).stdout
    assert f"Best best_val_accuracy: {scores[0]:.4f} in {found[0]['path']}" in table
