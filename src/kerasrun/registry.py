"""Small explicit registries, the code interface behind config groups.

`data=cats_dogs` selects `DATASETS["cats_dogs"]`, `model=small_convnet` selects
`MODELS["small_convnet"]`. `lookup` names what exists when a name is unknown, and
`call_builder` checks the option's keys against the builder's signature, so that a typo in a
YAML file is reported with the file to fix. A leaf module: it imports only `errors`.
"""

import inspect

from kerasrun.errors import ConfigError


def lookup(registry, name, *, group):
    """`registry[name]`, or a `ConfigError` that lists what exists."""
    if name not in registry:
        raise ConfigError(
            f"Unknown {group} '{name}'. Available: {', '.join(sorted(registry))}. "
            f"Received: {group}.name={name!r}."
        )
    return registry[name]


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


def call_builder(fn, kwargs, *, group, name, file=None, **given):
    """`fn(**given, **kwargs)`, after `check_kwargs`."""
    check_kwargs(fn, kwargs, group=group, name=name, given=given, file=file)
    return fn(**given, **kwargs)
