"""The checks every run needs before TensorFlow starts, one clear line each."""

from kerasrun.config.compose import FINE_TUNE_KEYS
from kerasrun.data import DATASETS, resolve_cache
from kerasrun.errors import check_int, check_number
from kerasrun.models import MODELS
from kerasrun.registry import check_kwargs, lookup
from kerasrun.training.callbacks import check_target
from kerasrun.training.limits import check_limit
from kerasrun.training.runtime import check_trainer
from kerasrun.training.samplers import SAMPLERS

EPOCHS_0 = "0 evaluates the model without training"


def validate(config):
    """Checks the run's keys and numbers before TensorFlow starts (one clear line each):
    every key of the data and model options against their builders' signatures, every
    `_target_` against the allowlist, and the trainer's numbers."""
    for group, registry, given in (
        ("data", DATASETS, ("seed",)),
        ("model", MODELS, ("input_shape", "task", "embeddings")),
    ):
        kwargs = {k: v for k, v in config[group].items() if k != "name"}
        builder = lookup(registry, config[group]["name"], group=group)
        extra = (*FINE_TUNE_KEYS, "samples") if group == "model" else ()
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
    learning_rate = config["optimizer"].get("learning_rate")
    check_number("optimizer.learning_rate", learning_rate, above=0, example=0.001)
    if "batch_size" in config["data"]:
        check_int("data.batch_size", config["data"]["batch_size"], example=32)
    resolve_cache(config["data"])  # data.cache: true, false or disk
