"""`train resume=`: which directories and overrides it takes, before anything is written."""

import json

import pytest
from omegaconf import OmegaConf

from kerasrun.config.resolvers import output_subdir
from kerasrun.errors import ConfigError
from kerasrun.rundir import resume


def write_run(path, status=None):
    (path / ".hydra").mkdir(parents=True)
    config = {"seed": 3, "paths": {"output_dir": "${hydra:runtime.output_dir}"}}
    OmegaConf.save(OmegaConf.create(config), path / ".hydra" / "config.yaml")
    if status:
        (path / "metrics.json").write_text(json.dumps({"status": status}))
    return path


def test_a_run_directory_needs_its_hydra_config(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        resume.check_run_dir(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="is not a train run directory"):
        resume.check_run_dir(tmp_path)
    resume.check_run_dir(write_run(tmp_path / "run"))


def test_resume_takes_no_other_override_and_no_sweep(tmp_path):
    run = write_run(tmp_path / "run")
    with pytest.raises(ConfigError, match="Received: trainer.epochs=3"):
        resume.load_config(run, [f"resume={run}", "trainer.epochs=3"], multirun=False)
    with pytest.raises(ConfigError, match="not a sweep"):
        resume.load_config(run, [f"resume={run}"], multirun=True)


def test_the_status_says_whether_there_is_anything_to_resume(tmp_path):
    assert resume.status(write_run(tmp_path / "a")) is None
    assert resume.status(write_run(tmp_path / "b", "interrupted")) == "interrupted"
    (tmp_path / "b" / "metrics.json").write_text("{")  # cut by a kill
    assert resume.status(tmp_path / "b") is None


def test_a_resumed_run_keeps_its_hydra_files():
    assert output_subdir(None) == ".hydra"
    assert output_subdir("/runs/old") is None
