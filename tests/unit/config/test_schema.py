"""Nothing the user typed is ignored: a key no part of the run reads is one clear line.

The real conf/, composed by Hydra with the `+` overrides a user types; the checks of
`config/schema.py` (no TensorFlow), of the `_target_` classes' arguments (Keras), and Hydra's
own refusal of an unknown option of a group whose default is null.
"""

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import MissingConfigException
from omegaconf import OmegaConf

from helpers import assert_one_line
from kerasrun.config.compose import conf_dir
from kerasrun.config.hydra_errors import check_group_options
from kerasrun.config.resolvers import register_resolvers
from kerasrun.config.schema import check_command_keys, check_train_keys
from kerasrun.config.validate import validate
from kerasrun.errors import ConfigError, UnknownKey
from kerasrun.registry import check_class_kwargs, class_arguments

CONF = conf_dir()
TOOLS = ("evaluate", "predict", "visualize", "export_model")


@pytest.fixture
def compose_config():
    """`compose_config(name, *overrides)`: conf/<name>.yaml composed, as plain dicts without
    hydra: (interpolations left as they are: the checks read keys)."""
    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):

        def composed(name, *overrides):
            cfg = compose(name, overrides=list(overrides))
            return OmegaConf.to_container(cfg, resolve=False)

        yield composed
    GlobalHydra.instance().clear()


def options(group):
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


# No false alarm: test_compose.py's test_every_option_of_every_group_composes runs
# check_train_keys on every option of every group (every key conf/ sets is read).


def test_every_shipped_target_node_passes_the_argument_check(compose_config):
    from kerasrun.training.callbacks import check_target_arguments  # Keras: lazy

    everything = [f"callbacks=[{','.join(options('callbacks'))}]"]
    for option in options("optimizer"):
        check_target_arguments(compose_config("train", f"optimizer={option}", *everything))


@pytest.mark.parametrize(
    "overrides, parts",
    [
        (  # a misspelt group added with +: it would train with the default learning rate
            ["+optimzer.learning_rate=1"],
            [
                "Unknown key optimzer: no part of train reads it",
                "Keys at the top level: seed, resume, monitor",
                "Did you mean optimizer.learning_rate?",
                "Received: optimzer.learning_rate=1.",
            ],
        ),
        (
            ["+trainer.epoch=3"],
            [
                "Unknown key trainer.epoch",
                "Keys of trainer: epochs,",
                "Did you mean trainer.epochs?",
            ],
        ),
        (["+foo=1"], ["Unknown key foo:", "Received: foo=1."]),
        (["+paths.rot=x"], ["Unknown key paths.rot", "Did you mean paths.root?"]),
        (  # a top-level key is read when an interpolation reads it: ${glove_path}
            ["experiment=imdb_raw_glove_200", "+glove_pth=x"],
            ["Unknown key glove_pth", "Did you mean glove_path?"],
        ),
        (  # an option of conf/callbacks/ that the run did not pick: its keys go nowhere
            ["+callbacks.early_stopping.patience=3"],
            [
                "callbacks.early_stopping has no _target_, so nothing reads it",
                "'callbacks=[model_checkpoint,backup_and_restore,terminate_on_nan,early_stopping]'",
                "Received: callbacks.early_stopping.patience=3.",
            ],
        ),
        (
            ["+callbacks.model_chekpoint.monitor=loss"],
            ["Did you mean callbacks.model_checkpoint.monitor?"],
        ),
        (
            ["+logger.tensorbord.update_freq=batch"],
            ["Did you mean logger.tensorboard.update_freq?"],
        ),
    ],
)
def test_a_key_nothing_reads_is_refused(compose_config, overrides, parts):
    config = compose_config("train", *overrides)
    with pytest.raises(UnknownKey) as excinfo:
        check_train_keys(config)
    assert_one_line(excinfo, *parts)


def test_keys_that_are_read_may_be_added(compose_config):
    config = compose_config(
        "train",
        "+data.augment.zoom=0.1",  # an augmentation key, checked by check_augment
        "+model.fine_tune_epochs=2",  # train's phase 2
        "+callbacks.csv_copy._target_=keras.callbacks.CSVLogger",  # a new callback node
        "+callbacks.csv_copy.filename=copy.csv",
        "+optimizer.clipnorm=1.0",  # an argument of keras.optimizers.Optimizer
        "+hydra.job.env_set.KERAS_HOME=here",  # Hydra's own
    )
    check_train_keys(config)


@pytest.mark.parametrize(
    "overrides, parts",
    [
        (  # Keras 2's name: Keras 3 raises `Argument(s) not recognized` inside training
            ["+optimizer.lr=1"],
            [
                "Unknown key optimizer.lr: keras.optimizers.RMSprop takes no argument lr",
                "Arguments of keras.optimizers.RMSprop: learning_rate, rho,",
                "Did you mean optimizer.learning_rate?",
                "Received: optimizer.lr=1.",
            ],
        ),
        (
            ["optimizer=adamw", "+optimizer.weight_decai=0.1"],
            ["keras.optimizers.AdamW", "Did you mean optimizer.weight_decay?"],
        ),
        (
            ["+callbacks.model_checkpoint.monitr=loss"],
            [
                "keras.callbacks.ModelCheckpoint takes no argument monitr",
                # Keras's, which kerasrun's ModelCheckpoint(filepath, monitor, mode, **kwargs)
                # passes the rest to
                "save_best_only, save_weights_only",
                "Did you mean callbacks.model_checkpoint.monitor?",
            ],
        ),
        (["+logger.csv.seperator='|'"], ["Did you mean logger.csv.separator?"]),
    ],
)
def test_an_argument_the_target_class_does_not_take_is_refused(compose_config, overrides, parts):
    from kerasrun.training.callbacks import check_target_arguments  # Keras: lazy

    config = compose_config("train", *overrides)
    check_train_keys(config)  # the keys are in place; the class does not take one
    with pytest.raises(UnknownKey) as excinfo:
        check_target_arguments(config)
    assert_one_line(excinfo, *parts)


def test_samples_are_read_only_for_a_model_that_draws_them(compose_config):
    with pytest.raises(UnknownKey) as excinfo:
        validate(compose_config("train", "+model.samples.count=3"))
    assert_one_line(excinfo, "Unknown key model.samples for model=convnet")
    with pytest.raises(UnknownKey) as excinfo:  # checked before TensorFlow, with the others
        validate(compose_config("train", "+data.augment.zom=0.1"))
    assert_one_line(excinfo, "Did you mean data.augment.zoom?")


def test_class_arguments_follow_kwargs_up_to_the_base_class_that_checks_them():
    class Base:
        def __init__(self, a=1, name=None, **kwargs):
            if kwargs:
                raise ValueError(f"Argument(s) not recognized: {kwargs}")

    class Open(Base):  # passes the rest on, as Keras's optimizers do
        def __init__(self, b=2, **kwargs):
            super().__init__(**kwargs)

    class Closed(Base):  # takes only its own
        def __init__(self, c=3):
            super().__init__()

    assert class_arguments(Open) == ["b", "a", "name"]
    assert class_arguments(Closed) == ["c"]
    with pytest.raises(UnknownKey) as excinfo:
        check_class_kwargs(Closed, {"a": 1}, key="callbacks.x", target="keras.callbacks.Closed")
    assert_one_line(excinfo, "keras.callbacks.Closed takes no argument a", "Closed: c.")
    check_class_kwargs(Open, {"a": 1, "b": 2}, key="optimizer", target="keras.optimizers.Open")


# Overrides each command reads (a mapping as a value is the value, not keys to check).
READ = {
    "evaluate": ["data.root=here", "runs=[a,b]"],
    "predict": ["inputs=[a.jpg]", "top_k=1"],
    "visualize": ["kind=deepdream", "layers={mixed3:1.0}"],
    "export_model": ["format=onnx", "data.path=here.csv"],
}


@pytest.mark.parametrize(
    "name, overrides, parts",
    [
        ("evaluate", ["+chekpoint=last"], ["Unknown key chekpoint", "Did you mean checkpoint?"]),
        ("evaluate", ["+data.rot=x"], ["Unknown key data.rot", "Keys of data: root, path"]),
        ("predict", ["+top=1"], ["no part of predict reads it", "Did you mean top_k?"]),
        ("visualize", ["+stpes=3"], ["no part of visualize reads it", "Did you mean steps?"]),
        ("export_model", ["+fromat=onnx"], ["no part of export-model", "Did you mean format?"]),
    ],
)
def test_the_other_commands_refuse_a_key_they_do_not_read(compose_config, name, overrides, parts):
    check_command_keys(compose_config(name, "run=x", *READ[name]), name)
    with pytest.raises(UnknownKey) as excinfo:
        check_command_keys(compose_config(name, "run=x", *overrides), name)
    assert_one_line(excinfo, *parts)


@pytest.mark.parametrize(
    "group, option", [("experiment", "imbd_dense"), ("debug", "defualt"), ("hparams_search", "x")]
)
def test_hydra_itself_refuses_an_unknown_option_of_a_group_whose_default_is_null(
    compose_config, group, option
):
    # conf/train.yaml does not mark these `optional`, which would skip the option silently.
    with pytest.raises(MissingConfigException, match=f"Could not find '{group}/{option}'"):
        compose_config("train", f"{group}={option}")


def test_the_optuna_sweepers_choices_are_checked_before_the_search():
    # Hydra checks every job of a basic -m sweep before the first; Optuna's sweeper does not.
    with pytest.raises(MissingConfigException) as excinfo:
        check_group_options(["model=choice(convnet,convnett)"], (CONF, {"model"}))
    assert "convnet" in excinfo.value.options


@pytest.mark.parametrize(
    "override, parts",
    [
        ("model.fine_tune_epochs=ten", ["model.fine_tune_epochs", "model.fine_tune_epochs='ten'"]),
        ("model.fine_tune_learning_rate=0", ["model.fine_tune_learning_rate", "positive"]),
    ],
)
def test_the_fine_tuning_numbers_are_checked_before_training(compose_config, override, parts):
    # train reads them itself (no builder signature checks them): phase 2 would fail after
    # phase 1 had trained, or fit with a learning rate of 0.
    config = compose_config("train", "model=vgg16_finetune", "model.weights=null", override)
    with pytest.raises(ConfigError) as raised:
        validate(config)
    assert_one_line(raised, *parts)
    validate(compose_config("train", "model=vgg16_finetune", "model.weights=null"))


def test_an_experiments_own_keys_are_not_typos_when_left_unread(compose_config):
    # imdb_raw_glove_200's glove_path (???) feeds data.embeddings.path; a user who sets that
    # path directly leaves glove_path unread, which is not a key they typed.
    overrides = ("experiment=imdb_raw_glove_200", "data.embeddings.path=/tmp/glove.txt")
    check_train_keys(compose_config("train", *overrides), experiment="imdb_raw_glove_200")
    with pytest.raises(UnknownKey, match="glove_pth"):  # a typo beside it still is one
        config = compose_config("train", *overrides, "+glove_pth=/tmp/glove.txt")
        check_train_keys(config, experiment="imdb_raw_glove_200")


def test_a_value_the_target_class_refuses_is_one_line():
    # Keras's SGD wants a float momentum: `optimizer.momentum=0` on the command line is an
    # int, which ended in Keras's ValueError traceback.
    from kerasrun.training.callbacks import instantiate

    with pytest.raises(ConfigError) as raised:
        instantiate({"_target_": "keras.optimizers.SGD", "momentum": 0}, key="optimizer")
    assert_one_line(raised, "optimizer: keras.optimizers.SGD refused a value", "momentum", "0.0")
    instantiate({"_target_": "keras.optimizers.SGD", "momentum": 0.9}, key="optimizer")
