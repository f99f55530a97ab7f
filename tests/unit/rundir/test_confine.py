"""A run's paths stay inside it: which keys count, a moved run, `..` and links."""

import pytest

from kerasrun.errors import ConfigError
from kerasrun.rundir.confine import check_inside, config_paths


def run_config(run_dir, **data):
    return {
        "data": {"name": "image_folder", "root": "/data/photos", "cache_dir": "/big", **data},
        "glove_path": "/vectors/glove.txt",
        "callbacks": {"backup_and_restore": {"backup_dir": f"{run_dir}/backup"}},
        "logger": {"csv": {"filename": f"{run_dir}/history.csv"}},
        "model": {"samples": {"dir": None}, "on_bad_file": "skip"},
        "paths": {"output_dir": str(run_dir), "root": "outputs"},
    }


def test_only_paths_a_run_writes_are_confined_not_its_data(tmp_path):
    keys = [key for key, _ in config_paths(run_config(tmp_path))]
    assert keys == [
        "callbacks.backup_and_restore.backup_dir",
        "logger.csv.filename",
        "paths.output_dir",
    ]


def test_a_run_moved_elsewhere_keeps_its_paths_inside_it(tmp_path):
    trained_at, here = tmp_path / "machine_a" / "run", tmp_path / "copy"
    here.mkdir()
    check_inside(run_config(trained_at), here, source="config.yaml", recorded_dir=trained_at)
    with pytest.raises(ConfigError, match="backup_dir names a path outside the run directory"):
        check_inside(run_config(trained_at), here, source="config.yaml")  # resolved for here?


@pytest.mark.parametrize("backup", ["{run}/../elsewhere", "~/elsewhere", "elsewhere", "{run}x"])
def test_a_path_outside_is_refused_however_it_is_spelt(tmp_path, monkeypatch, backup):
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    config = run_config(run_dir)
    config["callbacks"]["backup_and_restore"]["backup_dir"] = backup.format(run=run_dir)
    with pytest.raises(ConfigError, match="Received: callbacks.backup_and_restore.backup_dir="):
        check_inside(config, run_dir, source="config.yaml")


def test_links_inside_the_run_are_fine_links_out_are_refused(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "latest").symlink_to(run_dir / "checkpoints")
    check_inside(run_config(run_dir), run_dir, source="config.yaml")
    (tmp_path / "outside").mkdir()
    (run_dir / "checkpoints" / "deep").symlink_to(tmp_path / "outside")
    with pytest.raises(ConfigError, match=r"deep is a link to .*outside, outside the run"):
        check_inside(run_config(run_dir), run_dir, source="config.yaml")
