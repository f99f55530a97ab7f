"""The checks every run needs before TensorFlow starts, one clear line each."""

from kerasrun.config.compose import FINE_TUNE_KEYS
from kerasrun.data import DATASETS, resolve_cache
from kerasrun.errors import ConfigError
from kerasrun.models import MODELS
from kerasrun.registry import check_kwargs, lookup
from kerasrun.training.callbacks import check_target
from kerasrun.training.runtime import check_trainer
from kerasrun.training.samplers import SAMPLERS


def validate(config):
    """Checks the numbers every run needs, before TensorFlow starts (one clear line each)."""

    def positive(key, value, kind=(int, float), allow_none=False):
        at_least(key, value, kind, allow_none, minimum=0, what="a positive number", strict=True)

    def at_least(key, value, kind=int, allow_none=False, *, minimum, what, strict=False):
        if value is None and allow_none:
            return
        if (
            isinstance(value, bool)
            or not isinstance(value, kind)
            or value < minimum
            or (strict and value == minimum)
        ):
            raise ConfigError(
                f"{key} must be {what}{' or null' if allow_none else ''}. "
                f"Received: {key}={value!r}. "
                f"Set it on the command line, e.g. {key}={_example[key]}."
            )

    _example = {
        "trainer.epochs": 10,
        "trainer.kfold": 4,
        "trainer.final_epochs": 80,
        "trainer.steps_per_epoch": 100,
        "trainer.validation_steps": 50,
        "trainer.steps_per_execution": 1,
        "optimizer.learning_rate": 0.001,
        "data.batch_size": 32,
    }

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
    at_least(
        "trainer.epochs",
        trainer.get("epochs"),
        minimum=0,
        what="a non-negative integer (0 evaluates the model without training)",
    )
    at_least("trainer.kfold", trainer.get("kfold"), int, True, minimum=2, what="an integer ≥ 2")
    positive("trainer.final_epochs", trainer.get("final_epochs"), int, allow_none=True)
    positive("trainer.steps_per_epoch", trainer.get("steps_per_epoch"), int, allow_none=True)
    positive("trainer.validation_steps", trainer.get("validation_steps"), int, allow_none=True)
    positive("trainer.steps_per_execution", trainer.get("steps_per_execution"), int)
    positive("optimizer.learning_rate", config["optimizer"].get("learning_rate"))
    if "batch_size" in config["data"]:
        positive("data.batch_size", config["data"]["batch_size"], int)

    resolve_cache(config["data"])  # data.cache: true, false or disk
