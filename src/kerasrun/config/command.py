"""How a `main(cfg)` becomes a kerasrun command: Hydra composes its `conf/<name>.yaml`, and
a mistake is one `Error:` line with exit code 2, before and after composition."""

import functools
import logging
import sys

import hydra
from omegaconf.errors import OmegaConfBaseException

from kerasrun.config.compose import conf_dir
from kerasrun.config.hydra_errors import one_line_errors
from kerasrun.config.resolvers import register_resolvers
from kerasrun.config.schema import check_command_keys
from kerasrun.console import one_line
from kerasrun.errors import ConfigError


def command(config_name, *, catch_user_errors=True):
    """The decorator of every command's `main(cfg)`.

    Args:
        config_name: the primary config, e.g. `"evaluate"` for `conf/evaluate.yaml`.
        catch_user_errors: check the config's keys against the primary config's, and turn a
            `ConfigError` raised by `main` into one `Error:` line (`train` does both itself:
            its keys come from builders and Keras classes too (`validate`), and a sweep job
            records its failure and the sweep goes on).
    """
    register_resolvers()  # conf/ uses ${kerasrun_*:...}

    def decorate(main):
        task = exit_on_user_error(main, config_name) if catch_user_errors else main
        compose = hydra.main(
            config_path=str(conf_dir()), config_name=config_name, version_base="1.3"
        )
        return one_line_errors(compose(task))

    return decorate


def exit_on_user_error(main, config_name):
    """Wraps a command's `main(cfg)`: a key its conf/<config_name>.yaml does not have
    (`+chekpoint=last`), or any other user mistake, is one `Error:` line and exit code 2."""

    @functools.wraps(main)
    def wrapper(cfg):
        try:
            check_command_keys(cfg, config_name)  # nothing the user typed is ignored
            return main(cfg)
        except (ConfigError, OmegaConfBaseException) as e:
            logging.getLogger("kerasrun").error(
                one_line(e, with_type=not isinstance(e, ConfigError))
            )
            sys.exit(2)

    return wrapper
