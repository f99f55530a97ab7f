"""Where `conf/` lives, and the boundary between config nodes and plain Python.

Builders never see a `DictConfig`: `plain()` turns a node into dicts and lists once,
and `call_builder()` checks the keys against the builder's signature so that a typo
in a YAML file is reported with the file to fix.
"""

import inspect
from pathlib import Path

from kerasrun.errors import ConfigError

_PACKAGE_DIR = Path(__file__).resolve().parent

# Keys of a model config that drive the book's second, fine-tuning phase (read by train.py,
# not passed to the builder).
FINE_TUNE_KEYS = ("unfreeze_from", "fine_tune_epochs", "fine_tune_learning_rate")


def conf_dir():
    """The `conf/` directory: inside the wheel, or at the repository root in a checkout."""
    for candidate in (_PACKAGE_DIR / "conf", _PACKAGE_DIR.parents[1] / "conf"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"kerasrun's conf/ directory was not found near {_PACKAGE_DIR}")


def plain(node):
    """A resolved config node as plain dicts and lists (anything else is returned as is)."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(node, (DictConfig, ListConfig)):
        return OmegaConf.to_container(node, resolve=True)
    return node


def check_kwargs(fn, kwargs, *, group, name, given=(), file=None):
    """Raises a `ConfigError` naming the YAML file if `kwargs` has a key `fn` does not take.

    Args:
        fn: a builder (from `DATASETS` or `MODELS`) taking keyword arguments.
        kwargs: the plain config of the option, without `name`.
        group: the config group, e.g. `"model"`, for the error message.
        name: the option, e.g. `"vgg16_finetune"`.
        given: arguments kerasrun supplies itself (e.g. `input_shape`); not settable from YAML.
        file: the YAML file to name, if not `conf/{group}/{name}.yaml`.
    """
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    allowed = [
        k
        for k, p in params.items()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and k not in given
    ]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ConfigError(
            f"Unknown key {group}.{unknown[0]} for {group}={name} "
            f"({file or f'conf/{group}/{name}.yaml'}). "
            f"Allowed keys: {', '.join(allowed)}. "
            f"Received: {group}.{unknown[0]}={kwargs[unknown[0]]!r}. "
            "Fix the spelling in that file or on the command line."
        )


def move_paths(node, old_dir, new_dir):
    """A copy of the plain config `node` with every path under `old_dir` moved to `new_dir`.

    How a K-fold fold gets its own callbacks and loggers, and a `multi_worker` worker its own
    temporary directory, from the run's config.
    """
    if isinstance(node, dict):
        return {key: move_paths(value, old_dir, new_dir) for key, value in node.items()}
    if isinstance(node, list):
        return [move_paths(value, old_dir, new_dir) for value in node]
    if isinstance(node, str) and node.startswith(str(old_dir)):
        return str(new_dir) + node[len(str(old_dir)) :]
    return node


def call_builder(fn, kwargs, *, group, name, file=None, **given):
    """`fn(**given, **kwargs)`, after `check_kwargs`."""
    check_kwargs(fn, kwargs, group=group, name=name, given=given, file=file)
    return fn(**given, **kwargs)


def lookup(registry, name, *, group):
    """`registry[name]`, or a `ConfigError` that lists what exists."""
    if name not in registry:
        raise ConfigError(
            f"Unknown {group} '{name}'. Available: {', '.join(sorted(registry))}. "
            f"Received: {group}.name={name!r}."
        )
    return registry[name]


_unique = {}


def unique_dir(path):
    """`path`, or `path_2`, `path_3`, ... if it exists: a new run never reuses a directory.

    The answer is remembered per process, because Hydra resolves the run directory more
    than once (and after it has created it).
    """
    import os

    if path not in _unique:
        candidate, n = path, 1
        while os.path.exists(candidate):
            n += 1
            candidate = f"{path}_{n}"
        _unique[path] = candidate
    return _unique[path]


def register_resolvers():
    """Registers `${kerasrun_unique:...}`, `${kerasrun_run_dir:...}`,
    `${kerasrun_output_subdir:...}` and `${kerasrun_log_file:...}` (conf/hydra/), and
    `${kerasrun_direction:...}`."""
    from omegaconf import OmegaConf

    from kerasrun import resume

    # Cached: the value travels with the config, so a sweep job run in another process
    # (hydra/launcher=processes) gets the sweep folder its launcher made, not a new one.
    OmegaConf.register_new_resolver("kerasrun_unique", unique_dir, replace=True, use_cache=True)
    OmegaConf.register_new_resolver("kerasrun_direction", direction, replace=True)
    OmegaConf.register_new_resolver("kerasrun_run_dir", _run_dir, replace=True, use_cache=True)
    OmegaConf.register_new_resolver("kerasrun_output_subdir", resume.output_subdir, replace=True)
    OmegaConf.register_new_resolver("kerasrun_log_file", log_file, replace=True)


def log_file(strategy):
    """The job log's name: `train.log`, or `train.<task>-<index>.log` for a `multi_worker`
    process that is not the chief (every worker sees the same run directory on a shared
    file system, and lines of several processes in one file would interleave)."""
    from kerasrun.runtime import cluster_task, is_chief

    if is_chief(strategy):
        return "train.log"
    task_type, task_id, _ = cluster_task(strategy)
    return f"train.{task_type}-{task_id}.log"


def _run_dir(resume, new_dir):
    """`train resume=<run dir>` runs in that directory (checked first); else a new one."""
    from kerasrun import resume as resume_module

    if resume:
        resume_module.check_run_dir(resume)
    return resume_module.run_dir(resume, new_dir)


def direction(metric):
    """`minimize` for a loss or an error (`best_val_loss`, `kfold_val_mae`), else `maximize`."""
    from kerasrun.results import lower_is_better

    return "minimize" if lower_is_better(str(metric)) else "maximize"


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
    from kerasrun.callbacks import check_target
    from kerasrun.data import DATASETS
    from kerasrun.models import MODELS

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
    from kerasrun.samples import SAMPLERS

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
    from kerasrun.runtime import check_trainer

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
    from kerasrun.data import resolve_cache

    resolve_cache(config["data"])  # data.cache: true, false or disk
