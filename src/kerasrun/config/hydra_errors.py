"""One `Error:` line for the mistakes Hydra finds while it composes the config.

Put `@one_line_errors` above `@hydra.main(...)`. A typo in a key (`trainer.epoch=3`), an unknown
group option (`model=convnett`, `experiment=imbd_dense`), `+` on a key that exists, `~` on one
that does not, and an override Hydra cannot parse become one line in Keras's style on stderr,
and exit code 2, like the `ConfigError`s the commands raise themselves:

    Error: Unknown key trainer.epoch. Keys of trainer: epochs, steps_per_epoch, ... Did you
    mean trainer.epochs? Received: trainer.epoch=3. Fix the spelling.

(`+model.pooling=avg` adds a key where something may read it: an argument of the model's
builder that its YAML does not list; there the line says so. config/schema.py refuses a
new key that nothing reads.)

An experiment's old name (`experiment=catsdogs_aug_dropout`) says the new one (`RENAMED`), and
`group=null` says to write `~group`.

A `ConfigError` raised while Hydra sets a job up (a resolver of `hydra.run.dir`, such as
`resume=`'s check) is printed the same way.

`HYDRA_FULL_ERROR=1` keeps Hydra's full traceback. Errors of the task function itself (a bug)
keep their traceback; Ctrl-C and `sys.exit` pass through unchanged.
"""

import difflib
import functools
import os
import re
import sys
from pathlib import Path

from kerasrun.config.compose import conf_dir
from kerasrun.config.help import speed_up_help
from kerasrun.config.resolvers import unique_dirs
from kerasrun.config.schema import ADDABLE
from kerasrun.errors import ConfigError

FULL_ERROR = "HYDRA_FULL_ERROR"
# Command-line flags that change where the configs come from: the options on disk are then
# not the whole story, so the check of group options before Hydra starts is left to Hydra.
_SEARCH_FLAGS = ("-cp", "--config-path", "-cn", "--config-name", "-cd", "--config-dir")
# Options that were renamed, per group: the old name is refused with the new one (never
# silently mapped, so that a run's saved overrides always name a file that exists). The
# experiments are named after their data option (`cats_dogs_*` for data=cats_dogs).
RENAMED = {
    "experiment": {
        "catsdogs_scratch": "cats_dogs_scratch",
        "catsdogs_aug_dropout": "cats_dogs_aug_dropout",
        "deck_cnn64": "cats_dogs_deck_cnn64",
        "deck_vgg16_224": "cats_dogs_deck_vgg16_224",
        "vgg16_features_aug": "cats_dogs_vgg16_features_aug",
        "vgg16_finetune": "cats_dogs_vgg16_finetune",
        "dcgan_frogs": "cifar10_dcgan_frogs",
        "vae_mnist": "mnist_vae",
        "textgen_nietzsche": "text_file_nietzsche",
        "boston_kfold": "boston_housing_kfold",
        "imdb_glove_200": "imdb_raw_glove_200",
        "imdb_noglove_200": "imdb_raw_noglove_200",
        "jena_bigru": "jena_climate_bigru",
        "jena_conv1d": "jena_climate_conv1d",
        "jena_conv1d_gru": "jena_climate_conv1d_gru",
        "jena_dense": "jena_climate_dense",
        "jena_gru": "jena_climate_gru",
        "jena_gru_dropout": "jena_climate_gru_dropout",
        "jena_naive": "jena_climate_naive",
        "jena_stacked_gru": "jena_climate_stacked_gru",
    },
}


def one_line_errors(main):
    """Wraps a `@hydra.main` function: Hydra's composition errors become one `Error:` line.

    Hydra prints its own errors (several lines) and exits with code 1 unless `HYDRA_FULL_ERROR=1`
    is set, in which case it raises them. The wrapper sets it for the duration of the call, so
    that the errors reach it, and formats them; a user who set it gets Hydra's traceback.
    """

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        before = os.environ.get(FULL_ERROR)
        user_wants_trace = before == "1"
        task = getattr(main, "__wrapped__", None)  # what hydra.main calls with the config
        overrides = command_line_overrides(sys.argv[1:])
        os.environ[FULL_ERROR] = "1"
        speed_up_help(sys.argv[1:])
        try:
            check_group_options(overrides, _primary_config(main, sys.argv[1:]))
            return main(*args, **kwargs)
        except Exception as e:
            line = None if user_wants_trace else describe(e, overrides, task=task)
            if line is None:  # a bug, or the user asked for the trace: Python prints it
                raise
            _remove_empty_sweep_dirs()
            _print_error(line)
            sys.exit(2)
        finally:
            if before is None:
                os.environ.pop(FULL_ERROR, None)
            else:
                os.environ[FULL_ERROR] = before

    return wrapper


def command_line_overrides(argv):
    """The `key=value` (and `~key`) overrides among Hydra's command-line arguments."""
    return [a for a in argv if not a.startswith("-") and ("=" in a or a.startswith("~"))]


def describe(error, overrides, task=None):
    """The one-line message for a Hydra composition `error`, or `None` to keep its traceback.

    Args:
        error: what `@hydra.main` raised.
        overrides: the command line's overrides, for `Received:`.
        task: the function `@hydra.main` calls with the config. Its own errors are not
            Hydra's (`train` reports a user's mistake itself): `None`, the traceback stays.

    Returns:
        The line, or `None` for the task's errors and for anything that is neither one of
        Hydra's or OmegaConf's configuration errors nor a `ConfigError` raised while Hydra
        set the job up (e.g. by a resolver of `hydra.run.dir`).
    """
    from hydra.errors import (
        CompactHydraException,
        ConfigCompositionException,
        InstantiationException,
        MissingConfigException,
        OverrideParseException,
    )
    from omegaconf.errors import OmegaConfBaseException

    if _raised_in_task(error, task):
        return None
    user_error = _config_error_in(error)
    if user_error is not None:
        return _first_line(user_error)
    if isinstance(error, ValueError) and str(error).startswith(_NULL_GROUP):
        return _null_group_line(overrides)
    if not isinstance(error, (CompactHydraException, OmegaConfBaseException)):
        return None
    if isinstance(error, OverrideParseException):
        return _syntax_line(error)
    if isinstance(error, MissingConfigException) and error.missing_cfg_file:
        return _option_line(error, overrides)
    if isinstance(error, InstantiationException) and "Received:" in str(error.__cause__):
        return _first_line(error.__cause__)  # e.g. hydra.launcher.n_jobs=0, checked by us
    if isinstance(error, ConfigCompositionException):
        line = _key_line(error, overrides)
        if line:
            return line
    return _generic_line(error, overrides)


def check_group_options(overrides, primary):
    """Refuses `group=option` when `conf/<group>/<option>.yaml` does not exist.

    Checked before Hydra starts, for the groups of the app's defaults list. Hydra refuses an
    unknown option itself (train.yaml's groups are not `optional`, which would silently skip
    `experiment=imbd_dense`), in a run and, before the first job, in a `-m` sweep (its basic
    sweeper composes every job first); but the Optuna sweeper does not: with
    `hparams_search=optuna 'model=choice(convnet,convnett)'` Hydra alone trains trials until
    one draws `convnett`. Here, the sweep is refused before it starts.

    Raises:
        MissingConfigException: as Hydra raises it, with the group's `options`.
    """
    from hydra.errors import MissingConfigException

    if primary is None:
        return
    conf, groups = primary
    for text in overrides:
        group, options = _group_override(text, groups)
        for option in options:
            if not (conf / group / f"{option}.yaml").is_file():
                raise MissingConfigException(
                    f"Could not find '{group}/{option}'",
                    missing_cfg_file=f"{group}/{option}",
                    options=_options(conf / group),
                )


def _group_override(text, groups):
    """`(group, [options])` of the override `text` if it picks options of one of `groups`."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        override = OverridesParser.create().parse_override(text)
    except Exception:  # not parseable: Hydra reports it with its own parser's words
        return None, []
    if override.is_delete() or override.package or override.key_or_group not in groups:
        return None, []
    try:
        if override.is_sweep_override():
            values = list(override.sweep_string_iterator())
        else:
            value = override.value()
            values = value if isinstance(value, list) else [value]
    except Exception:  # e.g. glob(*): Hydra matches it against the options itself
        return None, []
    return override.key_or_group, [str(v) for v in values if v is not None]


def _primary_config(main, argv):
    """`(conf dir, groups of its defaults list)` of the app `main`, or `None` if unknown."""
    import inspect

    import yaml

    if any(a.split("=")[0] in _SEARCH_FLAGS or a.startswith("hydra.searchpath") for a in argv):
        return None
    try:
        found = inspect.getclosurevars(main).nonlocals  # hydra.main's config_path, config_name
        conf = Path(found["config_path"])
        defaults = yaml.safe_load((conf / f"{found['config_name']}.yaml").read_text())["defaults"]
    except Exception:  # another Hydra version, or a config without defaults: Hydra checks
        return None
    groups = set()
    for entry in defaults:
        if isinstance(entry, dict):
            for key in entry:
                group = key.removeprefix("optional ").removeprefix("override ").strip()
                if "@" not in group and not group.startswith("hydra") and (conf / group).is_dir():
                    groups.add(group)
    return conf, groups


def _remove_empty_sweep_dirs():
    """Removes the sweep folders this command created holding only Hydra's multirun.yaml.

    Hydra writes `<sweep>/multirun.yaml` before it checks the jobs' overrides, so a typo in a
    sweep would leave an empty sweep behind. Only folders `${kerasrun_unique:...}` handed out
    in this process are candidates: they did not exist before it.
    """
    import shutil

    for path in map(Path, unique_dirs()):
        if path.is_dir() and {p.name for p in path.iterdir()} <= {"multirun.yaml"}:
            shutil.rmtree(path, ignore_errors=True)


def _options(group_dir):
    return sorted(p.stem for p in Path(group_dir).glob("*.yaml"))


def _raised_in_task(error, task):
    """Whether `error` came out of the task function (if unknown: out of Hydra's `run_job`)."""
    code = getattr(task, "__code__", None)
    tb = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code is code or (code is None and tb.tb_frame.f_code.co_name == "run_job"):
            return True
        tb = tb.tb_next
    return False


def _config_error_in(error):
    """The `ConfigError` that `error` was raised from or while handling, if any."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, ConfigError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def _option_line(error, overrides):
    group, _, option = error.missing_cfg_file.rpartition("/")
    received = _find(overrides, group) or f"{group}={option}"
    renamed = RENAMED.get(group, {}).get(option)
    if renamed:
        return f"{group} '{option}' was renamed: use {group}={renamed}. Received: {received}."
    # Hydra lists the options for `model=x`, not for an item of `callbacks=[x]` nor for
    # --config-name: the files are the options.
    options = list(error.options or []) or _options(conf_dir() / group)
    if not group:  # --config-name: a primary config
        return (
            f"Unknown config '{option}'. Available configs: {', '.join(options) or '(none)'}. "
            f"Received: --config-name={option}. Drop --config-name, or name one of them."
        )
    guess = difflib.get_close_matches(option, options, n=1)
    listed = received.partition("=")[2].startswith("[")  # callbacks=[a,b]: one item is wrong
    return (
        f"Unknown option '{option}' for the config group {group}. "
        f"Available options in '{group}': {', '.join(options) or '(none)'}. "
        + (f"Did you mean {guess[0] if listed else f'{group}={guess[0]}'}? " if guess else "")
        + f"Received: {received}. Pick one of them ({_app()} --help lists every group's options)."
    )


def _key_line(error, overrides):
    """A key that does not exist, `+` on one that does, `~` on one that does not."""
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError

    message = str(error)
    cause = error.__cause__
    if isinstance(cause, (ConfigKeyError, ConfigAttributeError)) and cause.full_key:
        key = cause.full_key
        parent, _, name = key.rpartition(".")
        node = cause.parent_node
        keys = [str(k) for k in node.keys()] if node is not None and hasattr(node, "keys") else []
        where = f"Keys of {parent}" if parent else "Keys at the top level"
        known = f"{where}: {', '.join(keys)}. " if keys else f"{parent or 'The config'} is empty. "
        guess = difflib.get_close_matches(name, keys, n=1)
        received = _find(overrides, key) or key
        value = received.lstrip("+").partition("=")[2]
        return (
            f"Unknown key {key}. {known}"
            + (f"Did you mean {_join(parent, guess[0])}? " if guess else "")
            + f"Received: {received}. Fix the spelling"
            + (f", or add a new key with +{key}={value}." if _may_add(parent) else ".")
        )
    quoted = re.findall(r"'([^']+)'", message)
    if message.startswith("Could not append to config") and quoted:
        key = quoted[0]
        received = _find(overrides, key) or f"+{key}"
        value = received.partition("=")[2]
        return (
            f"{key} already exists, so + cannot add it. Received: {received}. Drop the + to "
            f"change it ({key}={value}), or use ++{key}={value} to set it in either case."
        )
    if message.startswith("Could not delete from config") and quoted:
        key = quoted[0]
        return (
            f"Cannot delete {key}: the config has no such key. Received: "
            f"{_find(overrides, key) or '~' + key}. Fix the spelling ({_app()} --cfg job "
            "prints every key)."
        )
    return None


# What Hydra raises (a plain ValueError) for `group=null`, e.g. data/augment=null.
_NULL_GROUP = "Config group override must be a string or a list"


def _null_group_line(overrides):
    """`group=null`: a group takes an option's name; `~group` leaves the group out."""
    received = next(
        (o for o in overrides if o.partition("=")[2] == "null" and "." not in o.partition("=")[0]),
        "group=null",
    )
    group = received.partition("=")[0].lstrip("+")
    values = f", or {group.replace('/', '.')}=null to turn its values off" if "/" in group else ""
    return (
        f"A config group takes an option's name, not null. Received: {received}. "
        f"Use ~{group} to leave the group out{values}."
    )


def _syntax_line(error):
    key = error.override.partition("=")[0].lstrip("+~") or error.override
    return (
        f"The override of {key} is not valid override syntax ({_first_line(error)}). "
        "Allowed: key=value with a number, a word, 'a quoted string', null, [a,list] or "
        "{a:dict} as the value (or a,b,c with -m to sweep). "
        f"Received: {error.override}. Quote a value with spaces or brackets, e.g. "
        "'key=\"a b\"' (https://hydra.cc/docs/advanced/override_grammar/basic/)."
    )


# Lines of Hydra's and OmegaConf's reports that locate rather than explain.
_NOISE = ("Config search path", "provider=", "full_key:", "object_type=", "reference_type=")


def _generic_line(error, overrides):
    lines = [line.strip() for line in str(error).splitlines()]
    text = " ".join(line for line in lines if line and not line.startswith(_NOISE)).rstrip(".")
    cause = f" ({_first_line(error.__cause__)})" if error.__cause__ is not None else ""
    if getattr(error, "full_key", None):  # OmegaConf's errors: where in the config
        cause += f" (in {error.full_key})"
    received = " ".join(overrides) or "no overrides"
    return (
        f"{text}{cause}. Received: {received}. Fix the config or the override "
        f"({FULL_ERROR}=1 shows Hydra's full report)."
    )


def _find(overrides, key):
    """The command-line override of `key` (`key=...`, `+key=...`, `~key`), if any."""
    for text in overrides:
        if text.lstrip("+~").partition("=")[0] == key:
            return text
    return None


def _may_add(parent):
    """Whether `+parent.key` can be read: for train's `data`, `model`, `optimizer` and callbacks,
    an argument their YAML does not list (config/schema.py refuses any other new key)."""
    return Path(sys.argv[0]).stem == "train" and parent.split(".")[0] in ADDABLE


def _join(parent, name):
    return f"{parent}.{name}" if parent else name


def _first_line(error):
    lines = str(error).strip().splitlines()
    return lines[0].strip() if lines else type(error).__name__


def _app():
    return Path(sys.argv[0]).name or "train"


def _print_error(line):
    """`Error: <line>` on stderr, in the console's error style, never wrapped."""
    from rich.console import Console

    Console(stderr=True, highlight=False).print(
        f"Error: {line}", style="bold red", markup=False, soft_wrap=True
    )
