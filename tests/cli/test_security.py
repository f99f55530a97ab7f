"""A run directory is data, not code: a shared one cannot make kerasrun run anything.

Each test plants code in a real run directory (a `_target_` naming a Python function in its
saved config, a Lambda layer in its model) and checks that the commands refuse it with one
`Error:` line and that the planted code did not run (its marker file does not exist).
"""

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from helpers import run_train

BIN = Path(sys.executable).parent


def error_lines(result):
    return [
        line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error:")
    ]


def test_resume_refuses_a_target_outside_the_allowlist(tmp_path):
    result = run_train("debug=default", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "outputs" / "runs").iterdir()
    (run_dir / "metrics.json").unlink()  # as if it had been killed
    marker = tmp_path / "PWNED"
    saved = run_dir / ".hydra" / "config.yaml"
    config = yaml.safe_load(saved.read_text())
    config["optimizer"] = {"_target_": "os.system", "command": f"touch {marker}"}
    saved.write_text(yaml.safe_dump(config))

    result = run_train(f"resume={run_dir}", cwd=tmp_path)

    assert result.returncode == 2
    (error,) = error_lines(result)
    assert "optimizer._target_ must name a class in keras.optimizers.*" in error
    assert "Received: optimizer._target_='os.system'" in error
    assert not marker.exists() and "Traceback" not in result.stderr


def test_a_lambda_layer_in_a_run_model_is_refused_not_run(tmp_path, trained_image_run, monkeypatch):
    import keras

    run_dir, photos = trained_image_run
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    marker = tmp_path / "work" / "PWNED"
    marker.parent.mkdir()
    # The Lambda runs its Python code whenever it is called: when the model is built here
    # (in tmp_path, not in work/), and when a loader rebuilds it from the file.
    monkeypatch.chdir(tmp_path)
    inputs = keras.Input((32, 32, 3))
    planted = keras.layers.Lambda(
        lambda x: (open("PWNED", "w").close(), keras.ops.mean(x, axis=(1, 2, 3)))[1][:, None]
    )(inputs)
    for path in (run / "model.keras", run / "checkpoints" / "best.keras"):
        keras.Model(inputs, planted).save(path)
    (tmp_path / "PWNED").unlink(missing_ok=True)
    image = next(photos.rglob("*.jpg"))

    for command in (["predict", f"run={run}", f"inputs=[{image}]"], ["evaluate", f"run={run}"]):
        result = subprocess.run(
            [str(BIN / command[0]), *command[1:]],
            cwd=marker.parent,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 2, (command, result.stdout[-2000:], result.stderr[-2000:])
        (error,) = error_lines(result)
        assert "safe" in error.lower() and "Lambda" in error, error
        assert "Traceback" not in result.stderr
        assert not marker.exists()
