"""The one exception type for user mistakes.

A `ConfigError` is printed as a single line (no traceback) and `train` exits with
code 2. Everything else is a bug and keeps its traceback.
"""


class ConfigError(ValueError):
    """A mistake the user can fix: a config value, a missing file, an offline download.

    Messages follow Keras's style: what is allowed, `Received: key=value`, what to do.
    """


def require(condition, message):
    """Raises `ConfigError(message)` unless `condition` holds."""
    if not condition:
        raise ConfigError(message)


class Diverged(RuntimeError):
    """Training diverged (the loss became NaN or infinite); metrics.json says `failed`."""


class Preempted(KeyboardInterrupt):
    """Training stopped on SIGTERM or SIGINT after saving a backup.

    A `KeyboardInterrupt`, so that a sweep stops too. `signum` gives the exit code (128+).
    """

    def __init__(self, signum, message):
        super().__init__(message)
        self.signum = signum
