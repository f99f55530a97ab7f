"""The dense builders: the book's chapter 3, 4 and 6.1.2 parameter counts, heads and errors."""

import inspect

import keras
import numpy as np
import pytest
from omegaconf import OmegaConf

from helpers import REPO
from kerasrun.errors import ConfigError
from kerasrun.models import MODELS, build_model
from kerasrun.models.dense import embedding_flatten, mlp
from kerasrun.tasks import Task

CONF_MODEL = REPO / "conf" / "model"
# Supplied by `train` (the data's shape and task, pretrained word vectors), never YAML keys.
GIVEN = {"input_shape", "task", "embeddings"}
BINARY = Task("binary")
REUTERS = Task("multiclass", num_classes=46)
REGRESSION = Task("regression")


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    yield
    keras.backend.clear_session()


def dense_params(sizes):
    """Kernel and bias of each Dense in a chain of widths, input width first."""
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


# --- the book's parameter counts ----------------------------------------------------------

BOOK_MLPS = [
    # name, input width, units, task, extra kwargs, parameters
    ("imdb_dense", 10_000, [16, 16], BINARY, {}, 160_305),
    ("reuters_dense", 10_000, [64, 64], REUTERS, {}, 647_214),
    ("reuters_bottleneck", 10_000, [64, 4], REUTERS, {}, 640_554),
    ("boston", 13, [64, 64], REGRESSION, {}, 5_121),
    ("imdb_capacity_small", 10_000, [4, 4], BINARY, {}, 40_029),
    ("imdb_capacity_big", 10_000, [512, 512], BINARY, {}, 5_383_681),
    ("imdb_l2", 10_000, [16, 16], BINARY, {"l2": 0.001}, 160_305),
    ("imdb_dropout", 10_000, [16, 16], BINARY, {"dropout": 0.5}, 160_305),
]


@pytest.mark.parametrize(
    "width,units,task,kwargs,expected", [c[1:] for c in BOOK_MLPS], ids=[c[0] for c in BOOK_MLPS]
)
def test_mlp_has_the_books_parameter_counts(width, units, task, kwargs, expected):
    assert dense_params([width, *units, task.units]) == expected  # the hand count
    model = mlp(input_shape=(width,), task=task, units=units, **kwargs)
    assert model.count_params() == expected


def test_imdb_dense_hand_count():
    assert 10000 * 16 + 16 + 16 * 16 + 16 + 16 + 1 == 160_305


def test_embedding_flatten_is_the_books_6_1_2_model():
    model = embedding_flatten(input_shape=(20,), task=BINARY)
    assert 10000 * 8 + 20 * 8 * 1 + 1 == model.count_params() == 80_161
    assert isinstance(model.layers[0], keras.layers.Embedding)
    assert isinstance(model.layers[1], keras.layers.Flatten)
    assert model.inputs[0].dtype == "int32"


def test_embedding_flatten_hidden_units():
    model = embedding_flatten(
        input_shape=(20,), task=BINARY, num_words=100, embedding_dim=4, units=[8]
    )
    assert model.count_params() == 100 * 4 + dense_params([80, 8, 1])


def test_mlp_with_no_hidden_layers_is_logistic_regression():
    model = mlp(input_shape=(13,), task=BINARY, units=[])
    assert model.count_params() == 14


# --- heads: shape and dtype ---------------------------------------------------------------


@pytest.mark.parametrize("task", [BINARY, REUTERS, REGRESSION], ids=lambda t: t.kind)
def test_mlp_output_shape_and_float32_head(task):
    model = build_model("mlp", input_shape=(13,), task=task)
    x = np.random.default_rng(0).normal(size=(3, 13)).astype("float32")
    predictions = model(x)
    assert tuple(predictions.shape) == (3, task.units)
    assert keras.backend.standardize_dtype(predictions.dtype) == "float32"
    assert model.layers[-1].name == "predictions"
    assert (
        model.layers[-1].activation.__name__
        == {
            "binary": "sigmoid",
            "multiclass": "softmax",
            "regression": "linear",
        }[task.kind]
    )
    if task.kind == "multiclass":
        np.testing.assert_allclose(np.sum(predictions, axis=-1), 1.0, rtol=1e-3)


@pytest.mark.parametrize("task", [BINARY, REUTERS, REGRESSION], ids=lambda t: t.kind)
def test_embedding_flatten_output_shape_and_float32_head(task):
    model = build_model("embedding_flatten", input_shape=(20,), task=task, num_words=50)
    x = np.random.default_rng(0).integers(0, 50, size=(3, 20)).astype("int32")
    predictions = model(x)
    assert tuple(predictions.shape) == (3, task.units)
    assert keras.backend.standardize_dtype(predictions.dtype) == "float32"
    assert model.layers[-1].name == "predictions"


def test_mlp_head_is_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = mlp(input_shape=(13,), task=REUTERS)
        predictions = model(np.zeros((2, 13), "float32"))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert keras.backend.standardize_dtype(predictions.dtype) == "float32"


# --- regularization -----------------------------------------------------------------------


def test_l2_adds_a_regularization_loss():
    model = mlp(input_shape=(13,), task=BINARY, l2=0.001)
    model(np.ones((2, 13), "float32"))
    assert len(model.losses) == 2  # one per hidden Dense, none on the head
    assert model.layers[-1].kernel_regularizer is None


def test_no_l2_no_regularization_loss():
    model = mlp(input_shape=(13,), task=BINARY)
    model(np.ones((2, 13), "float32"))
    assert not model.losses


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_dropout_follows_each_hidden_layer(dropout):
    model = mlp(input_shape=(13,), task=BINARY, dropout=dropout)
    kinds = [type(layer).__name__ for layer in model.layers]
    if dropout:
        assert kinds == ["Dense", "Dropout", "Dense", "Dropout", "Dense"]
        assert [layer.rate for layer in model.layers if layer.name.startswith("dropout")] == [
            0.5,
            0.5,
        ]
    else:
        assert kinds == ["Dense", "Dense", "Dense"]


# --- config errors ------------------------------------------------------------------------

ERROR_CASES = [
    ("mlp", (13,), {"units": 16}, r"list of positive integers.*model.units=16"),
    ("mlp", (13,), {"units": [16, 0]}, r"model.units=\[16, 0\]"),
    ("mlp", (13,), {"units": [16, "x"]}, "model.units="),
    ("mlp", (13,), {"units": [16.5]}, "model.units="),
    ("mlp", (13,), {"dropout": 1.0}, r"\[0, 1\).*model.dropout=1.0"),
    ("mlp", (13,), {"dropout": -0.1}, "model.dropout=-0.1"),
    ("mlp", (13,), {"l2": -0.001}, "model.l2=-0.001"),
    ("mlp", (13,), {"l2": "big"}, "model.l2='big'"),
    ("mlp", (13,), {"activation": "nope"}, "model.activation='nope'"),
    ("mlp", (8, 8, 1), {}, r"mlp takes vectors.*model=convnet.*input_shape=\[8, 8, 1\]"),
    ("embedding_flatten", (20,), {"num_words": 0}, "model.num_words=0"),
    ("embedding_flatten", (20,), {"num_words": -5}, "model.num_words=-5"),
    ("embedding_flatten", (20,), {"embedding_dim": 0}, "model.embedding_dim=0"),
    ("embedding_flatten", (20,), {"units": [-1]}, r"model.units=\[-1\]"),
    ("embedding_flatten", (8, 8), {}, r"input_shape=\[8, 8\]"),
    ("mlp", (13,), {"unit": [4]}, "Unknown key model.unit"),
]


@pytest.mark.parametrize("name,input_shape,kwargs,message", ERROR_CASES)
def test_config_errors_are_one_line_and_keras_style(name, input_shape, kwargs, message):
    with pytest.raises(ConfigError, match=message) as error:
        build_model(name, input_shape=input_shape, task=BINARY, **kwargs)
    assert "\n" not in str(error.value)
    assert "Received: " in str(error.value)


# --- conf/model/*.yaml ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mlp", "embedding_flatten"])
def test_yaml_keys_are_the_builders_arguments_and_defaults(name):
    config = OmegaConf.to_container(OmegaConf.load(CONF_MODEL / f"{name}.yaml"), resolve=True)
    assert config.pop("name") == name
    parameters = inspect.signature(MODELS[name]).parameters
    assert set(config) == set(parameters) - GIVEN
    for key, value in config.items():
        default = parameters[key].default
        assert value == (list(default) if isinstance(default, tuple) else default), key


def test_yaml_config_builds():
    config = OmegaConf.to_container(OmegaConf.load(CONF_MODEL / "mlp.yaml"), resolve=True)
    name = config.pop("name")
    model = build_model(name, input_shape=(10_000,), task=BINARY, **config)
    assert model.count_params() == 160_305
