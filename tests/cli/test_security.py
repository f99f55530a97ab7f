"""A run directory is data, not code: a shared one cannot make kerasrun run anything, nor
write or delete anything outside itself.

Each test plants code in a real run directory (a `_target_` naming a Python function in its
saved config, a Lambda layer in its model) and checks that the commands refuse it with one
`Error:` line and that the planted code did not run (its marker file does not exist). Or it
points a path of the run's config, or a link in the run, at a folder outside the run, and
checks that the commands refuse it with one `Error:` line and that the folder is unchanged.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import one_error_line, run_train

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


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory):
    """A real `debug=default` run without its metrics.json: to `resume=`, a killed run."""
    cwd = tmp_path_factory.mktemp("stopped")
    result = run_train("debug=default", cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (cwd / "outputs" / "runs").iterdir()
    (run_dir / "metrics.json").unlink()
    return run_dir


def planted_folder(tmp_path):
    """A user's folder outside the run: one file of work, one that looks like old weights."""
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "thesis.txt").write_text("years of work")
    (planted / "old.weights.h5").write_bytes(b"what BackupAndRestore deletes in its folder")
    return planted


def snapshot(folder):
    """`{relative path: bytes}` of every file under `folder` (links followed)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def set_key(config_file, key, value):
    config = yaml.safe_load(config_file.read_text())
    node = config
    *parents, last = key.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    config_file.write_text(yaml.safe_dump(config))


# How a shared run's .hydra/config.yaml reaches the folder `planted` beside it.
OUTSIDE = {
    "backup_dir": ("callbacks.backup_and_restore.backup_dir", "{planted}"),
    "checkpoint": ("callbacks.model_checkpoint.filepath", "{planted}/best.keras"),
    "tensorboard": ("logger.tensorboard.log_dir", "{planted}"),
    "csv": ("logger.csv.filename", "{planted}/history.csv"),
    "dot-dot": ("callbacks.backup_and_restore.backup_dir", "${{paths.output_dir}}/../planted"),
}


@pytest.mark.slow
@pytest.mark.parametrize("how", [*OUTSIDE, "link"])
def test_resume_refuses_a_run_whose_paths_lead_outside_it(tmp_path, stopped_run, how):
    run_dir = Path(shutil.copytree(stopped_run, tmp_path / "run"))
    planted = planted_folder(tmp_path)
    before = snapshot(planted)
    if how == "link":  # the config keeps ${paths.output_dir}/backup, a link in the run leads out
        (run_dir / "backup").symlink_to(planted, target_is_directory=True)
    else:
        key, value = OUTSIDE[how]
        set_key(run_dir / ".hydra" / "config.yaml", key, value.format(planted=planted))

    result = run_train(f"resume={run_dir}", cwd=tmp_path)

    error = one_error_line(result)
    if how == "link":  # the backup_dir of the config, through the link
        assert "backup_dir names a path outside the run directory" in error, error
        assert f"which resolves to {planted}" in error
    else:
        assert f"{key} names a path outside the run directory {run_dir}" in error, error
        resolved = value.format(planted=planted).replace("${paths.output_dir}", str(run_dir))
        assert f"Received: {key}='{resolved}'" in error
    assert snapshot(planted) == before  # neither written to nor deleted
    assert not (run_dir / "metrics.json").exists()


def run_command(command, *overrides, cwd):
    return subprocess.run(
        [str(BIN / command), *overrides], cwd=cwd, capture_output=True, text=True, timeout=300
    )


# Each command that opens a run, its other options, and the folder of the run it writes into.
COMMANDS = {
    "evaluate": ((), "tensorboard"),
    "predict": (("inputs=[{image}]",), "tensorboard"),
    "visualize": (("kind=activations", "image={image}"), "visualize"),
    "export-model": (("format=keras",), "export"),
}


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS)
def test_commands_refuse_a_run_whose_config_or_links_lead_outside_it(
    tmp_path, trained_image_run, command
):
    trained, photos = trained_image_run
    image = next(photos.rglob("*.jpg"))
    options, folder = COMMANDS[command]
    options = [option.format(image=image) for option in options]
    planted = planted_folder(tmp_path)
    before = snapshot(planted)

    # A path of its config.yaml outside the run (where it was trained: moved here, the run's
    # own paths still count as inside it, which the next case relies on).
    run_dir = Path(shutil.copytree(trained, tmp_path / "run"))
    set_key(run_dir / "config.yaml", "logger.tensorboard.log_dir", str(planted))
    error = one_error_line(run_command(command, f"run={run_dir}", *options, cwd=tmp_path))
    assert "logger.tensorboard.log_dir names a path outside the run directory" in error, error
    assert f"Received: logger.tensorboard.log_dir='{planted}'" in error

    # A link in the run to the folder outside, where the command writes (tensorboard/: a path
    # of the config too, which reaches outside through the link).
    shutil.rmtree(run_dir)
    run_dir = Path(shutil.copytree(trained, tmp_path / "run"))
    shutil.rmtree(run_dir / folder, ignore_errors=True)
    (run_dir / folder).symlink_to(planted, target_is_directory=True)
    error = one_error_line(run_command(command, f"run={run_dir}", *options, cwd=tmp_path))
    assert "outside the run directory" in error and str(planted) in error, error

    assert snapshot(planted) == before
