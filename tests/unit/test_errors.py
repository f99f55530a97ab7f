"""The one set of value checks every builder, command and callback uses."""

import math

import pytest

from kerasrun.errors import (
    ConfigError,
    check_int,
    check_int_list,
    check_number,
    check_rate,
    is_int,
    is_number,
)


def test_yaml_booleans_and_non_finite_values_are_not_numbers():
    assert is_int(3) and not is_int(True) and not is_int(3.0)
    assert is_number(0.5) and is_number(2) and not is_number(False)
    assert not is_number(math.nan) and not is_number(math.inf) and not is_number("1")


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: check_int("model.units", 0, example=256),
            "model.units must be a positive integer. Received: model.units=0. "
            "Set e.g. model.units=256.",
        ),
        (
            lambda: check_int("trainer.epochs", -1, minimum=0, why="0 evaluates"),
            "trainer.epochs must be a non-negative integer (0 evaluates). "
            "Received: trainer.epochs=-1.",
        ),
        (
            lambda: check_int("trainer.kfold", 1, minimum=2, allow_none=True),
            "trainer.kfold must be an integer of at least 2 or null. Received: trainer.kfold=1.",
        ),
        (
            lambda: check_number("optimizer.learning_rate", True, above=0),
            "optimizer.learning_rate must be a positive number. "
            "Received: optimizer.learning_rate=True.",
        ),
        (
            lambda: check_number("model.compression", 1.5, above=0, maximum=1),
            "model.compression must be a number in (0, 1].",
        ),
        (lambda: check_rate("model.dropout", 1), "model.dropout must be a number in [0, 1)"),
        (
            lambda: check_int_list("model.filters", [32, 0], example="[32,64]"),
            "model.filters must be a non-empty list of positive integers. "
            "Received: model.filters=[32, 0].",
        ),
    ],
)
def test_each_check_names_the_key_what_is_allowed_and_what_was_received(call, message):
    with pytest.raises(ConfigError) as error:
        call()
    assert str(error.value).startswith(message)


def test_a_good_value_passes_and_comes_back():
    assert check_int("data.batch_size", 32) == 32
    assert check_int("trainer.final_epochs", None, allow_none=True) is None
    assert check_number("model.compression", 1, above=0, maximum=1) == 1
    assert check_rate("model.dropout", 0) == 0
    assert check_int_list("model.units", (16, 16), example="[16,16]") == [16, 16]
