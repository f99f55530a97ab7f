"""The data registry and its YAML files: `data=<name>` composes, and its keys are the
builder's arguments."""

import inspect
import subprocess
import sys

import pytest

from helpers import REPO
from kerasrun.config.compose import conf_dir
from kerasrun.data import DATASETS, build_data

CONF_DATA = REPO / "conf" / "data"


# --- the registry and the YAML files ---------------------------------------------------------


def test_import_does_not_load_tensorflow():
    code = (
        "import sys, kerasrun.data; "
        "heavy = [m for m in ('tensorflow', 'keras') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_yaml_keys_are_builder_arguments(name):
    from omegaconf import OmegaConf

    path = CONF_DATA / f"{name}.yaml"
    cfg = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    assert cfg.pop("name") == name == path.stem
    params = inspect.signature(DATASETS[name]).parameters
    assert set(cfg) <= set(params), set(cfg) - set(params)
    assert "seed" in params and "seed" not in cfg  # train.py passes the top-level seed
    assert all(p.kind is p.KEYWORD_ONLY for p in params.values())
    if name in YAML_STATES_EVERYTHING:  # every argument in the YAML, with its default
        assert set(cfg) == set(params) - {"seed"}
        assert all(cfg[k] == params[k].default for k in cfg)


# The text and time-series builders' YAML files list every argument with its default.
YAML_STATES_EVERYTHING = (
    "imdb",
    "reuters",
    "boston_housing",
    "imdb_raw",
    "jena_climate",
    "csv_timeseries",
    "text_file",
)


def test_every_builder_has_a_yaml():
    assert sorted(p.stem for p in CONF_DATA.glob("*.yaml")) == sorted(DATASETS)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_each_data_option_composes(name):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from kerasrun.config.compose import plain

    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            cfg = compose(config_name="train", overrides=[f"data={name}"])
    finally:
        GlobalHydra.instance().clear()
    data = plain(cfg.data)
    assert data.pop("name") == name
    assert set(data) <= set(inspect.signature(DATASETS[name]).parameters)
    if name == "digits":  # the only one that needs neither a download nor a folder
        bundle = build_data(name, seed=cfg.seed, **data)
        assert bundle.sizes["train"] > 0
