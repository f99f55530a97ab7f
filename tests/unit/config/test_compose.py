"""The real conf/, composed with Hydra's compose API: every option of every group, and the
sweeper and launcher settings of `train -m`."""

import re
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from helpers import REPO
from kerasrun import console
from kerasrun.config.compose import conf_dir
from kerasrun.config.hydra_errors import RENAMED
from kerasrun.config.resolvers import register_resolvers
from kerasrun.config.schema import check_train_keys
from kerasrun.data import DATASETS
from kerasrun.errors import ConfigError
from kerasrun.models import MODELS
from kerasrun.training.callbacks import ALLOWED_PREFIXES

CONF = conf_dir()
GROUPS = [
    "data",
    "data/augment",
    "model",
    "optimizer",
    "trainer",
    "callbacks",
    "logger",
    "debug",
    "experiment",
]


def options(group):
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.fixture
def compose_train():
    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        yield lambda *overrides: compose(
            "train", overrides=list(overrides), return_hydra_config=True
        )
    GlobalHydra.instance().clear()


@pytest.mark.parametrize("group", GROUPS)
def test_every_option_of_every_group_composes(compose_train, group):
    assert options(group), f"conf/{group}/ is empty"
    for option in options(group):
        value = f"[{option}]" if group in ("callbacks", "logger") else option
        cfg = compose_train(f"{group}={value}")
        # A preset may ask for a value (`???`, e.g. imdb_raw_glove_200's glove_path): fill it in.
        for key in [k for k in cfg if k != "hydra" and OmegaConf.is_missing(cfg, k)]:
            cfg[key] = f"/given/on/the/command/line/{key}"
        # Resolve everything but the hydra: interpolations (filled in at run time).
        OmegaConf.to_container(cfg.data, resolve=True)
        OmegaConf.to_container(cfg.model, resolve=True)
        check_train_keys(cfg)  # every key conf/ sets is read by some part of the run


@pytest.mark.parametrize("group, registry", [("data", DATASETS), ("model", MODELS)])
def test_file_stem_name_and_registry_key_are_the_same(group, registry):
    for option in options(group):
        config = OmegaConf.load(CONF / group / f"{option}.yaml")
        assert config.get(group, config).name == option  # `# @package _global_` nests it
    assert set(options(group)) == set(registry)


def test_every_target_is_on_the_allowlist():
    # conf/hydra/ configures Hydra itself (its launcher and callbacks): Hydra instantiates
    # those, from kerasrun's own modules, never from a run's saved config.
    hydra_own = ("kerasrun.rundir.sweeps.", "hydra_plugins.kerasrun_launcher.")
    for path in CONF.rglob("*.yaml"):
        group = path.relative_to(CONF).parts[0]
        allowed = ALLOWED_PREFIXES.get(group, ALLOWED_PREFIXES["callbacks"])
        allowed += hydra_own if group == "hydra" else ()
        for line in path.read_text().splitlines():
            if line.strip().startswith("_target_:"):
                target = line.split(":", 1)[1].strip()
                assert target.startswith(allowed), f"{path}: {target}"


def test_a_target_is_allowed_only_where_it_belongs():
    from kerasrun.training.callbacks import check_target

    check_target("keras.optimizers.Adam", key="optimizer")
    check_target("keras.callbacks.ModelCheckpoint", key="callbacks.model_checkpoint")
    # A run saved before kerasrun chose its callbacks itself names the old module path.
    check_target("kerasrun.checkpoints.ModelCheckpoint", key="callbacks.model_checkpoint")
    for target, key in (
        ("kerasrun.checkpoints.ModelCheckpoint", "optimizer"),  # Keras's compile would choke
        ("kerasrun.training.checkpoints.ModelCheckpoint", "callbacks.model_checkpoint"),
        ("keras.callbacks.EarlyStopping", "optimizer"),
        ("keras.optimizers.Adam", "callbacks.early_stopping"),
        ("os.system", "logger.tensorboard"),
    ):
        with pytest.raises(ConfigError, match=f"{key}._target_ must name a class in"):
            check_target(target, key=key)


def test_default_is_the_offline_digits_run(compose_train):
    cfg = compose_train()
    assert cfg.data.name == "digits" and cfg.model.name == "convnet"
    assert cfg.trainer.precision == "auto" and cfg.trainer.jit_compile == "auto"
    assert "runs/" in cfg.hydra.run.dir and cfg.data.name in cfg.hydra.run.dir


def test_experiments_select_the_books_settings(compose_train):
    cfg = compose_train("experiment=cats_dogs_aug_dropout")
    assert (cfg.data.name, cfg.model.name, cfg.model.dropout) == ("cats_dogs", "small_convnet", 0.5)
    assert cfg.optimizer.learning_rate == pytest.approx(1e-4)
    assert (cfg.trainer.epochs, cfg.trainer.steps_per_epoch, cfg.data.batch_size) == (100, 100, 32)
    cfg = compose_train("experiment=cats_dogs_vgg16_finetune")
    assert cfg.model.unfreeze_from == "block5_conv1"
    assert cfg.model.fine_tune_learning_rate == pytest.approx(1e-5)


def test_experiments_override_top_level_keys(compose_train):
    cfg = compose_train("experiment=jena_climate_gru")
    assert (cfg.optimized_metric, cfg.trainer.loss) == ("best_val_mae", "mae")
    assert compose_train().optimized_metric == "best_val_accuracy"


def test_vgg16_finetune_alone_is_the_books_whole_recipe(compose_train):
    """`train model=vgg16_finetune data=cats_dogs`: the book's 5.3 in one command."""
    cfg = compose_train("model=vgg16_finetune", "data=cats_dogs")
    assert cfg.optimizer.learning_rate == pytest.approx(2e-5) and cfg.trainer.epochs == 30
    assert (
        cfg.data.augment.rotation == pytest.approx(0.111) and cfg.data.augment.flip == "horizontal"
    )
    assert (cfg.model.unfreeze_from, cfg.model.fine_tune_epochs) == ("block5_conv1", 100)
    # The command line still wins over what the model option brings.
    cfg = compose_train("model=vgg16_finetune", "optimizer.learning_rate=1e-4", "data.augment=null")
    assert cfg.optimizer.learning_rate == pytest.approx(1e-4) and cfg.data.augment is None
    cfg = compose_train("experiment=cats_dogs_deck_vgg16_224")
    assert cfg.data.augment.rotation is None  # the deck does not rotate


def test_each_experiment_quotes_the_book():
    for path in (CONF / "experiment").glob("*.yaml"):
        header = path.read_text().split("defaults:")[0]
        assert "Book" in header or "Deck" in header, path
        assert re.search(r"\d\.\d|\d%", header), f"{path} quotes no figure"


def test_each_experiment_is_named_after_its_data_option():
    for path in (CONF / "experiment").glob("*.yaml"):
        data = re.search(r"override /data: (\w+)", path.read_text()).group(1)
        assert path.stem.startswith(f"{data}_"), (path.stem, data)


def test_renamed_experiments_name_one_that_exists():
    for old, new in RENAMED["experiment"].items():
        assert (CONF / "experiment" / f"{new}.yaml").is_file(), new
        assert not (CONF / "experiment" / f"{old}.yaml").exists(), old


def test_the_books_augmentation_is_written_once(compose_train):
    """conf/data/augment/book.yaml; the model options and experiments pick it by name."""
    copies = [
        path.relative_to(CONF)
        for path in CONF.rglob("*.yaml")
        if re.search(r"^\s*rotation: 0\.111", path.read_text(), re.MULTILINE)
    ]
    assert copies == [Path("data/augment/book.yaml")]
    book = OmegaConf.to_container(OmegaConf.load(CONF / "data" / "augment" / "book.yaml"))
    expected = {"rotation": 0.111, "translation": 0.2, "shear": 0.2, "zoom": 0.2}
    assert book == {**expected, "flip": "horizontal"}
    for overrides in (
        ["data=cats_dogs", "data/augment=book"],
        ["experiment=cats_dogs_aug_dropout"],
        ["experiment=cats_dogs_vgg16_features_aug"],
        ["model=vgg16_feature_extraction"],
    ):
        cfg = compose_train(*overrides)
        assert OmegaConf.to_container(cfg.data.augment) == book, overrides
    assert compose_train("data=cats_dogs").data.augment is None  # off unless asked for


def composed(compose_train, *overrides):
    """The composed train config as plain dicts, as `train` prints it (without hydra:)."""
    cfg = OmegaConf.to_container(compose_train(*overrides), resolve=False)
    cfg.pop("hydra")
    return cfg


def test_the_config_tree_marks_what_a_model_option_set(compose_train):
    """`model=vgg16_finetune optimizer=adam` trains Adam at 2e-5: the tree says why."""
    config = composed(compose_train, "model=vgg16_finetune", "data=cats_dogs", "optimizer=adam")
    marks = console.set_by_model_option(config)
    assert marks["optimizer.learning_rate"] == "model=vgg16_finetune"
    assert marks["trainer.epochs"] == "model=vgg16_finetune"
    assert marks["data.augment.rotation"] == "model=vgg16_finetune (data/augment=book)"
    assert not [key for key in marks if key.startswith("model.")]  # its own group: no mark
    with console.console.capture() as captured:
        console.print_config_tree(config)
    assert "learning_rate: 2e-05  ← model=vgg16_finetune" in captured.get()
    assert "_target_: keras.optimizers.Adam\n" in captured.get()  # Adam is not the model's

    marks = console.set_by_model_option(composed(compose_train, "model=dcgan"))
    assert marks == {"data.image_size": "model=dcgan", "monitor": "model=dcgan"}
    assert console.set_by_model_option(composed(compose_train, "model=small_convnet")) == {}


def test_a_value_overridden_on_the_command_line_is_not_marked(compose_train):
    config = composed(
        compose_train,
        "model=vgg16_finetune",
        "optimizer.learning_rate=1e-4",
        "data.augment.zoom=0.1",
    )
    marks = console.set_by_model_option(config)
    assert "optimizer.learning_rate" not in marks and "data.augment.zoom" not in marks
    assert "trainer.epochs" in marks and "data.augment.shear" in marks
    with console.console.capture() as captured:
        console.print_config_tree(config)
    assert "learning_rate: 0.0001\n" in captured.get()
    config = composed(compose_train, "model=vgg16_finetune", "data.augment=null")
    assert not [key for key in console.set_by_model_option(config) if key.startswith("data.")]


def test_struct_mode_rejects_typos(compose_train):
    with pytest.raises(Exception, match="epoch"):
        compose_train("trainer.epoch=3")


def test_conf_is_shipped_inside_the_wheel():
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '"conf" = "kerasrun/conf"' in pyproject


def test_the_callbacks_yaml_names_keras_and_the_code_picks_kerasruns_own():
    # The atomic replacements are chosen by the code, for today's and for legacy targets.
    from kerasrun.training import checkpoints
    from kerasrun.training.callbacks import instantiate

    for target in ("keras.callbacks.ModelCheckpoint", "kerasrun.checkpoints.ModelCheckpoint"):
        node = {"_target_": target, "filepath": "/tmp/best.keras"}
        callback = instantiate(node, key="callbacks.model_checkpoint")
        assert type(callback) is checkpoints.ModelCheckpoint
    backup = instantiate(
        {"_target_": "keras.callbacks.BackupAndRestore", "backup_dir": "/tmp/b"},
        key="callbacks.backup_and_restore",
    )
    assert type(backup) is checkpoints.BackupAndRestore
    early = instantiate({"_target_": "keras.callbacks.EarlyStopping"}, key="callbacks.early")
    assert type(early).__module__.startswith("keras")


def test_search_direction_follows_the_metric():
    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        for overrides, direction in (
            (["hparams_search=optuna"], "maximize"),
            (["hparams_search=optuna", "experiment=jena_climate_gru"], "minimize"),  # best_val_mae
            (["hparams_search=optuna", "optimized_metric=best_val_loss"], "minimize"),
        ):
            cfg = compose("train", overrides=overrides, return_hydra_config=True)
            assert cfg.hydra.sweeper.direction == direction
            assert cfg.hydra.sweeper.max_failure_rate == 1.0
    GlobalHydra.instance().clear()


def test_slurm_launcher_preset_composes():
    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu"],
            return_hydra_config=True,
        )
    GlobalHydra.instance().clear()
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.gpus_per_node, launcher.tasks_per_node, launcher.partition) == (1, 1, "gpu")
