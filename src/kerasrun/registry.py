"""Small explicit registries, the code interface behind config groups.

`data=cats_dogs` selects `DATASETS["cats_dogs"]`, `model=small_convnet` selects
`MODELS["small_convnet"]`. `lookup` names what exists when a name is unknown, and
`call_builder` checks the option's keys against the builder's signature, so that a typo in a
YAML file is reported with the file to fix. `check_class_kwargs` does the same for the
Keras class a `_target_` names (an optimizer, a callback). A leaf module: it imports only
`errors`.
"""

import inspect

from kerasrun.errors import ConfigError, UnknownKey, did_you_mean


def lookup(registry, name, *, group):
    """`registry[name]`, or a `ConfigError` that lists what exists."""
    if name not in registry:
        raise ConfigError(
            f"Unknown {group} '{name}'. Available: {', '.join(sorted(registry))}. "
            f"Received: {group}.name={name!r}."
        )
    return registry[name]


def check_kwargs(fn, kwargs, *, group, name, given=(), file=None):
    """Raises an `UnknownKey` naming the YAML file if `kwargs` has a key `fn` does not take.

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
        key = unknown[0]
        raise UnknownKey(
            f"Unknown key {group}.{key} for {group}={name} "
            f"({file or f'conf/{group}/{name}.yaml'}). "
            f"Allowed keys: {', '.join(allowed)}."
            f"{did_you_mean(key, allowed, prefix=f'{group}.')} "
            f"Received: {group}.{key}={kwargs[key]!r}. "
            "Fix the spelling in that file or on the command line."
        )


def call_builder(fn, kwargs, *, group, name, file=None, **given):
    """`fn(**given, **kwargs)`, after `check_kwargs`."""
    check_kwargs(fn, kwargs, group=group, name=name, given=given, file=file)
    return fn(**given, **kwargs)


def class_arguments(cls):
    """The keyword arguments `cls(...)` takes, or `None` if its signature cannot be read.

    Those of its `__init__`, and, while an `__init__` passes `**kwargs` on, those of its base
    classes': kerasrun's `ModelCheckpoint(filepath, monitor, mode, **kwargs)` takes
    `save_best_only` from Keras's. The last `**kwargs` is taken to be refused, as Keras's base
    classes do (the optimizers' `Argument(s) not recognized`).
    """
    names = []
    for klass in cls.__mro__:
        if klass is object or "__init__" not in vars(klass):
            continue
        try:
            params = list(inspect.signature(klass.__init__).parameters.values())
        except (TypeError, ValueError):  # a builtin's: nothing to check against
            return None
        names += [
            p.name
            for p in params[1:]  # self
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in names
        ]
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return names


def check_class_kwargs(cls, kwargs, *, key, target):
    """Raises an `UnknownKey` if `kwargs` has a key that `cls`, the `_target_` of config node
    `key` (e.g. `"optimizer"`, named `target` in the YAML), does not take.

    Keras's own error (`ValueError: Argument(s) not recognized`) comes only when the class
    is built, inside training; this one names the key, the class and what it takes.
    """
    allowed = class_arguments(cls)
    unknown = [k for k in kwargs if allowed is not None and k not in allowed]
    if unknown:
        name = unknown[0]
        raise UnknownKey(
            f"Unknown key {key}.{name}: {target} takes no argument {name}. "
            f"Arguments of {target}: {', '.join(allowed)}."
            f"{did_you_mean(name, allowed, prefix=f'{key}.')} "
            f"Received: {key}.{name}={kwargs[name]!r}. "
            "Fix the spelling on the command line or in the config file that sets it."
        )
