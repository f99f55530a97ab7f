"""The exceptions of user mistakes and of ended runs, and the one set of value checks.

A `ConfigError` is printed as a single line (no traceback) and `train` exits with
code 2. Everything else is a bug and keeps its traceback.

Every builder, command and callback checks its numbers here, so that one kind of value gets
one test and one wording: `check_int("model.units", units, example=256)` raises
`model.units must be a positive integer. Received: model.units=0. Set e.g. model.units=256.`
"""

import difflib
import math
from numbers import Integral, Real


class ConfigError(ValueError):
    """A mistake the user can fix: a config value, a missing file, an offline download.

    Messages follow Keras's style: what is allowed, `Received: key=value`, what to do.
    """


class UnknownKey(ConfigError):
    """A key that no part of the run reads: a typo, or `+` on a misspelt name.

    A mistake of the whole command rather than of one job: `train -m` stops at it, instead of
    recording a failed job and going on with the next (which has the same typo).
    """


def closest(name, options):
    """The option closest to `name`, or `None`: by spelling (difflib), or `name` is its
    initials (`lr`: `learning_rate`, Keras 2's name for it)."""
    name, options = str(name), [str(o) for o in options]
    guess = difflib.get_close_matches(name, options, n=1) or [
        o for o in options if "_" in o and "".join(w[:1] for w in o.split("_")) == name
    ]
    return guess[0] if guess else None


def did_you_mean(name, options, *, prefix=""):
    """`" Did you mean <prefix><closest>?"` if one of `options` is close to `name`, else `""`."""
    guess = closest(name, options)
    return f" Did you mean {prefix}{guess}?" if guess else ""


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


def download_failed(error):
    """Whether `error` is what a failed download raises, rather than a bug.

    `keras.utils.get_file` turns urllib's `HTTPError` and `URLError` (no network, a refused
    connection, a 404) into a plain `Exception("URL fetch failure on <url>: ...")`, and a
    checksum that does not match into `ValueError("Incomplete or corrupted file detected.
    ...")`; a connection cut while reading passes through as an `OSError` (`TimeoutError`,
    `ConnectionResetError`) or an `http.client.HTTPException` (`IncompleteRead`). The callers
    turn these into one "offline?" line; anything else (a `TypeError` in a loader, ...) is
    re-raised with its traceback.
    """
    import http.client  # only when a download failed: most runs never download

    if type(error) is Exception:  # exactly Keras's wrapper: every bug is a subclass
        return str(error).startswith("URL fetch failure")
    if isinstance(error, ValueError):
        return str(error).startswith("Incomplete or corrupted file detected")
    return isinstance(error, (OSError, http.client.HTTPException))


# --- the value checks ---------------------------------------------------------------------------


def is_int(value):
    """An integer, and not a bool (YAML's `true` is not 1 epoch)."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def is_number(value):
    """A finite real number (int or float), and not a bool."""
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def _fail(key, value, what, *, why, allow_none, example):
    null = " or null" if allow_none else ""
    why = f" ({why})" if why else ""
    fix = f" Set e.g. {key}={example}." if example is not None else ""
    raise ConfigError(f"{key} must be {what}{null}{why}. Received: {key}={value!r}.{fix}")


def check_int(key, value, *, minimum=1, allow_none=False, example=None, why=""):
    """Raises a `ConfigError` unless `value` is an integer ≥ `minimum` (or None, if allowed).

    Args:
        key: the config key as the user types it, e.g. `"model.units"` or `"trainer.epochs"`.
        value: the value received.
        minimum: the smallest allowed value (1: "a positive integer", 0: "a non-negative one").
        allow_none: whether `null` is allowed too.
        example: a good value, shown in the error.
        why: what the number means, shown in parentheses.
    """
    if value is None and allow_none:
        return value
    if not (is_int(value) and value >= minimum):
        what = {1: "a positive integer", 0: "a non-negative integer"}.get(
            minimum, f"an integer of at least {minimum}"
        )
        _fail(key, value, what, why=why, allow_none=allow_none, example=example)
    return value


def check_number(
    key,
    value,
    *,
    above=None,
    minimum=None,
    below=None,
    maximum=None,
    allow_none=False,
    example=None,
    why="",
):
    """Raises a `ConfigError` unless `value` is a finite number in the given bounds.

    Args:
        key: the config key, e.g. `"optimizer.learning_rate"`.
        value: the value received.
        above: `value` must be greater than this (`above=0`: "a positive number").
        minimum: `value` must be at least this.
        below: `value` must be less than this.
        maximum: `value` must be at most this.
        allow_none, example, why: as for `check_int`.
    """
    if value is None and allow_none:
        return value
    ok = (
        is_number(value)
        and (above is None or value > above)
        and (minimum is None or value >= minimum)
        and (below is None or value < below)
        and (maximum is None or value <= maximum)
    )
    if not ok:
        low = f"[{minimum}" if minimum is not None else f"({above}" if above is not None else None
        high = f"{below})" if below is not None else f"{maximum}]" if maximum is not None else None
        if low and high:
            what = f"a number in {low}, {high}"
        elif above == 0 and not high and minimum is None:
            what = "a positive number"
        else:
            bounds = [f"> {above}"] * (above is not None) + [f">= {minimum}"] * (
                minimum is not None
            )
            bounds += [f"< {below}"] * (below is not None) + [f"<= {maximum}"] * (
                maximum is not None
            )
            what = "a number" + (f" {' and '.join(bounds)}" if bounds else "")
        _fail(key, value, what, why=why, allow_none=allow_none, example=example)
    return value


def check_rate(key, value, *, example=0.5):
    """Raises a `ConfigError` unless `value` is a dropout rate in [0, 1)."""
    return check_number(
        key, value, minimum=0, below=1, example=example, why="a dropout rate, 0 meaning none"
    )


def check_int_list(key, values, *, example, why="", allow_empty=False):
    """Raises a `ConfigError` unless `values` is a list of positive integers (non-empty unless
    `allow_empty`)."""
    ok = isinstance(values, (list, tuple)) and (allow_empty or len(values) > 0)
    if not (ok and all(is_int(v) and v > 0 for v in values)):
        what = (
            "a list of positive integers"
            if allow_empty
            else "a non-empty list of positive integers"
        )
        _fail(key, values, what, why=why, allow_none=False, example=example)
    return list(values)
