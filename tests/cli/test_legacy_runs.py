"""Runs saved before the redesign still resume, evaluate and predict.

`tests/data/legacy_runs/` holds two run directories written by kerasrun before its modules
moved (see its README): their configs name the callbacks `kerasrun.checkpoints.*`, a module
path that no longer exists. Today's code reads those names as `keras.callbacks.*` and picks
its own atomic callbacks, so the runs users already have keep working.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from helpers import read_metrics, run_train

LEGACY = Path(__file__).resolve().parents[1] / "data" / "legacy_runs"
BIN = Path(sys.executable).parent


def legacy_run(name, tmp_path):
    run = tmp_path / name
    shutil.copytree(LEGACY / name, run)
    return run


def test_the_fixtures_name_the_old_module_paths():
    # What makes them legacy: without this, the tests below would prove nothing.
    for name in ("finished", "interrupted"):
        config = (LEGACY / name / "config.yaml").read_text()
        assert "_target_: kerasrun.checkpoints.ModelCheckpoint" in config
        assert "_target_: kerasrun.checkpoints.BackupAndRestore" in config


@pytest.mark.slow
def test_a_legacy_run_resumes(tmp_path):
    run = legacy_run("interrupted", tmp_path)
    assert json.loads((run / "backup" / "state.json").read_text())["epoch"] == 2
    result = run_train(f"resume={run}", cwd=tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    metrics = read_metrics(run)
    assert metrics["status"] == "finished" and metrics["epochs"] == 5
    assert "Resumed from the backup of epoch 2" in result.stdout + result.stderr
    assert not (run / "backup").exists()  # the run is over: its backup went


@pytest.mark.slow
def test_a_legacy_run_evaluates_and_predicts(tmp_path):
    run = legacy_run("finished", tmp_path)
    result = subprocess.run(
        [BIN / "evaluate", f"run={run}"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "accuracy" in result.stdout
    digit = tmp_path / "digit.png"
    Image.new("L", (8, 8), color=128).save(digit)
    result = subprocess.run(
        [BIN / "predict", f"run={run}", f"inputs=[{digit}]"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "digit.png" in result.stdout
