"""The checks every run needs before TensorFlow starts, one clear line each."""

from kerasrun.config.compose import FINE_TUNE_KEYS
from kerasrun.data import DATASETS, resolve_cache
from kerasrun.data.augment import check_augment
from kerasrun.errors import check_int, check_number
from kerasrun.models import MODELS
from kerasrun.registry import check_kwargs, lookup
from kerasrun.training.callbacks import check_target, check_target_arguments
from kerasrun.training.limits import check_limit
from kerasrun.training.runtime import check_trainer, import_tensorflow_quietly
from kerasrun.training.samplers import SAMPLERS

EPOCHS_0 = "0 evaluates the model without training"


def validate(config):
    """Checks the run's keys and numbers before any data or training work (one clear line
    each): every key of the data and model options against their builders' signatures,
    every `_target_` against the allowlist, the trainer's numbers, all before TensorFlow is
    imported; last, every `_target_` node's keys against its class's arguments, which imports
    Keras. (`train` checks first that no part of its config goes unread:
    `schema.check_train_keys`, on the config as composed.)"""
    for group, registry, given in (
        ("data", DATASETS, ("seed",)),
        ("model", MODELS, ("input_shape", "task", "embeddings")),
    ):
        kwargs = {k: v for k, v in config[group].items() if k != "name"}
        builder = lookup(registry, config[group]["name"], group=group)
        extra = ()  # keys train reads itself; samples only for a model that has samplers
        if group == "model":
            samples = ("samples",) if config["model"]["name"] in SAMPLERS else ()
            extra = (*FINE_TUNE_KEYS, *samples)
        check_kwargs(
            builder,
            {k: v for k, v in kwargs.items() if k not in extra},
            group=group,
            name=config[group]["name"],
            given=given,
        )

    if config["model"]["name"] in SAMPLERS:  # model.samples: its keys, before training
        check_kwargs(
            SAMPLERS[config["model"]["name"]],
            config["model"].get("samples") or {},
            group="model.samples",
            name=config["model"]["name"],
            given=("data", "log_dir"),
            file=f"conf/model/{config['model']['name']}.yaml",
        )
    check_target(config["optimizer"].get("_target_"), key="optimizer")
    for group in ("callbacks", "logger"):
        for name, node in (config.get(group) or {}).items():
            check_target((node or {}).get("_target_"), key=f"{group}.{name}")
    trainer = config["trainer"]
    check_trainer(trainer)  # precision, jit_compile, strategy, cpu_replicas, scale_learning_rate
    get = trainer.get
    check_int("trainer.epochs", get("epochs"), minimum=0, example=10, why=EPOCHS_0)
    check_int("trainer.kfold", get("kfold"), minimum=2, allow_none=True, example=4)
    check_int("trainer.final_epochs", get("final_epochs"), allow_none=True, example=80)
    check_int("trainer.steps_per_epoch", get("steps_per_epoch"), allow_none=True, example=100)
    check_int("trainer.validation_steps", get("validation_steps"), allow_none=True, example=50)
    check_int("trainer.test_steps", get("test_steps"), allow_none=True, example=50)
    check_limit(trainer)  # trainer.limit: a quick check's caps
    check_int("trainer.steps_per_execution", get("steps_per_execution"), example=1)
    if config["model"].get("unfreeze_from"):  # the book's phase 2 (train reads these itself)
        fine_tune = config["model"].get
        check_int("model.fine_tune_epochs", fine_tune("fine_tune_epochs"), minimum=0, example=100)
        check_number(
            "model.fine_tune_learning_rate",
            fine_tune("fine_tune_learning_rate"),
            above=0,
            example=1e-5,
        )
    learning_rate = config["optimizer"].get("learning_rate")
    check_number("optimizer.learning_rate", learning_rate, above=0, example=0.001)
    if "batch_size" in config["data"]:
        check_int("data.batch_size", config["data"]["batch_size"], example=32)
    resolve_cache(config["data"])  # data.cache: true, false or disk
    check_augment(config["data"].get("augment"))
    import_tensorflow_quietly()  # Keras next: its classes' arguments, before any data work
    check_target_arguments(config)
