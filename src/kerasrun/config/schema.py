"""Which keys a command reads: a key that nothing reads is an error, never silently ignored.

Hydra's struct mode refuses `trainer.epoch=3`, but `+` and `++` add keys, and so can an
option's own file: `+optimzer.learning_rate=1` (a misspelt group) would train with the default
learning rate, `+trainer.epoch=3` for the default number of epochs. What `train` reads, and
where each key is checked:

- the top level, `trainer.*`, `paths.*`: the keys of their files in conf/ (`check_train_keys`);
- `data.*`, `model.*`: the builder's keyword arguments (its signature is its schema:
  `registry.check_kwargs`, in `validate`), plus `model.unfreeze_from` and `model.fine_tune_*`
  (train's phase 2) and `model.samples` (a generative model's); `data.augment.*`: the
  augmentation keys (`data.augment.check_augment`);
- `optimizer.*`, `callbacks.<name>.*`, `logger.<name>.*`: the arguments of the `_target_`
  class (`training.callbacks.check_target_arguments`, which imports Keras); a new
  `callbacks.<name>` node needs its `_target_` (`check_train_keys`);
- `hydra.*`: Hydra's own, which Hydra checks (`hparams_search` sets only those).

The other commands (evaluate, predict, visualize, export-model) read the keys of their own
conf/<name>.yaml (`check_command_keys`). `runs` parses its arguments with argparse, which
refuses an unknown one itself.
"""

import re

import yaml

from kerasrun.config.compose import conf_dir
from kerasrun.errors import UnknownKey, closest, did_you_mean

# The nodes of train's config that config groups fill (the rest of the top level is
# train.yaml's own keys). Their keys are checked against their builders and classes, except
# those of FILE_NODES: the keys of their group's files.
GROUP_NODES = ("data", "model", "optimizer", "trainer", "callbacks", "logger", "paths")
FILE_NODES = ("trainer", "paths")
TARGET_NODES = ("callbacks", "logger")  # each key a node with a `_target_`
# Where `+key=value` may add a key that is read: an argument of a builder or of a class that
# the option's YAML does not list (or a new callback).
ADDABLE = ("data", "model", "optimizer", *TARGET_NODES)
# `${key}` or `${key.sub}`, not a resolver's `${name:...}`.
_INTERPOLATION = re.compile(r"\$\{([A-Za-z_]\w*)(?=[.}])")


def check_train_keys(config, experiment=None):
    """Raises an `UnknownKey` for a key of train's composed `config` (a `DictConfig` or a dict,
    interpolations unresolved) that nothing reads: at the top level (where a key that an
    interpolation reads is read, e.g. an experiment's `glove_path` for `${glove_path}`), in
    `trainer` or `paths`; or a `callbacks`/`logger` node without a `_target_`. No TensorFlow:
    `train` calls it first. `experiment`: the chosen `experiment` option, whose own top-level
    keys are its settings, not the user's typos (`glove_path` stays `???` when the user sets
    `data.embeddings.path` instead)."""
    config = _container(config)
    conf = conf_dir()
    schema = {key: None for key in _file_keys(conf / "train.yaml")}
    schema.update({node: None for node in (*GROUP_NODES, "hydra")})  # hydra: Hydra checks it
    schema.update({key: None for key in _interpolated(config) if key in config})
    if experiment:
        own = _file_keys(conf / "experiment" / f"{experiment}.yaml")
        schema.update({key: None for key in own if key not in schema})
    for node in FILE_NODES:
        schema[node] = {}
        for path in sorted((conf / node).glob("*.yaml")):
            schema[node].update(_schema(_file_keys(path)))
    _check(config, schema, app="train")
    for group in TARGET_NODES:
        for name, node in (config.get(group) or {}).items():
            if isinstance(node, dict) and "_target_" not in node:
                _no_target(group, name, node, config[group], conf)


def check_command_keys(config, config_name):
    """Raises an `UnknownKey` for a key of a command's `config` (a `DictConfig` or a dict)
    that is not in its conf/<config_name>.yaml, e.g. `evaluate run=... +chekpoint=last`."""
    schema = _schema(_file_keys(conf_dir() / f"{config_name}.yaml"))
    _check(_container(config), schema, app=config_name.replace("_", "-"))


def _container(config):
    """Plain dicts, interpolations and `???` left as they are (the keys are what counts)."""
    from omegaconf import DictConfig, OmegaConf

    if isinstance(config, DictConfig):
        return OmegaConf.to_container(config, resolve=False)
    return config


def _interpolated(node):
    """The top-level keys that the interpolations inside `node` read (`${glove_path}`)."""
    if isinstance(node, dict):
        return {key for value in node.values() for key in _interpolated(value)}
    if isinstance(node, list):
        return {key for value in node for key in _interpolated(value)}
    return set(_INTERPOLATION.findall(node)) if isinstance(node, str) else set()


def _file_keys(path):
    """The keys of a conf/ file, without its defaults list and Hydra's settings."""
    keys = yaml.safe_load(path.read_text()) or {}
    return {k: v for k, v in keys.items() if k not in ("defaults", "hydra")}


def _schema(node):
    """A file's nested keys: `{key: None}` for a value, `{key: {...}}` for a non-empty mapping
    (whose keys are checked too; an empty or null one takes any)."""
    return {k: _schema(v) if isinstance(v, dict) and v else None for k, v in node.items()}


def _check(config, schema, *, app, parent=""):
    for key, value in config.items():
        if key not in schema:
            _unknown(parent, key, value, schema, app)
        if isinstance(schema[key], dict) and isinstance(value, dict):
            _check(value, schema[key], app=app, parent=_join(parent, key))


def _unknown(parent, key, value, schema, app):
    where = f"Keys of {parent}" if parent else "Keys at the top level"
    rest, leaf = _first_leaf(value)
    guess = did_you_mean(key, schema, prefix=f"{parent}." if parent else "")
    if guess and rest:  # +optimzer.learning_rate=1: did you mean optimizer.learning_rate?
        guess = f"{guess[:-1]}.{rest}?"
    raise UnknownKey(
        f"Unknown key {_join(parent, key)}: no part of {app} reads it. "
        f"{where}: {', '.join(map(str, schema))}.{guess} "
        f"Received: {_join(parent, key, rest)}={leaf!r}. "
        "Fix the spelling on the command line or in the config file that sets it."
    )


def _no_target(group, name, node, nodes, conf):
    """A `callbacks.<name>` node without `_target_`: a misspelt name, or an option not picked."""
    picked = [n for n, v in nodes.items() if isinstance(v, dict) and "_target_" in v]
    options = sorted(p.stem for p in (conf / group).glob("*.yaml"))
    rest, leaf = _first_leaf(node)
    option = name if name in options else closest(name, [*picked, *options])
    if option in options and option not in picked:
        fix = (f"Did you mean {option}? " if option != name else "") + (
            f"{option} is an option of conf/{group}/ that this run did not pick: add it with "
            f"'{group}=[{','.join([*picked, option])}]', then set its keys."
        )
    elif option:  # one of the run's, misspelt
        fix = f"Did you mean {_join(group, option, rest)}? Fix the spelling."
    else:
        fix = (
            f"Fix the spelling, or add a Keras class with "
            f"+{group}.{name}._target_=keras.{group}.<Class>."
        )
    raise UnknownKey(
        f"{group}.{name} has no _target_, so nothing reads it. "
        f"The run's {group}: {', '.join(picked) or '(none)'}. "
        f"Received: {_join(group, name, rest)}={leaf!r}. {fix}"
    )


def _first_leaf(value):
    """`("a.b", leaf)`: the path to the first non-mapping value inside `value` (what the user
    typed after the unknown key), `("", value)` for a plain value."""
    path = []
    while isinstance(value, dict) and value:
        key, value = next(iter(value.items()))
        path.append(str(key))
    return ".".join(path), value


def _join(*parts):
    return ".".join(str(p) for p in parts if p != "")
