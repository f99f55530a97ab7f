"""The sequence builders: the book's chapter 6.2-6.4 parameter counts, heads, inputs and errors."""

import inspect

import keras
import numpy as np
import pytest
from omegaconf import OmegaConf

from helpers import REPO
from kerasrun.errors import ConfigError
from kerasrun.models import MODELS, build_model
from kerasrun.models.recurrent import gru, lstm, simple_rnn
from kerasrun.models.sequence import conv1d, conv1d_gru, dense_timeseries, sequence_length
from kerasrun.tasks import Task

CONF_MODEL = REPO / "conf" / "model"
SEQUENCE_MODELS = ["simple_rnn", "lstm", "gru", "conv1d", "conv1d_gru", "dense_timeseries"]
# Supplied by `train` (the data's shape and task, pretrained word vectors), never YAML keys.
GIVEN = {"input_shape", "task", "embeddings"}
BINARY = Task("binary")
FOUR_CLASSES = Task("multiclass", num_classes=4)
REGRESSION = Task("regression")
JENA = (240, 14)  # lookback 1440 at step 6, 14 features


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    yield
    keras.backend.clear_session()


def simple_rnn_params(inputs, units):
    return units * (inputs + units + 1)


def lstm_params(inputs, units):
    return 4 * units * (inputs + units + 1)


def gru_params(inputs, units):
    """Keras 3's GRU has reset_after=True: two bias vectors per gate."""
    return 3 * units * (inputs + units + 2)


def conv1d_params(inputs, filters, kernel_size):
    return kernel_size * inputs * filters + filters


def word_indices(maxlen, num_words, n=3):
    return np.random.default_rng(0).integers(0, num_words, size=(n, maxlen)).astype("int32")


def series(shape, n=3):
    return np.random.default_rng(0).normal(size=(n, *shape)).astype("float32")


# --- the book's parameter counts ----------------------------------------------------------

HEAD = 32 + 1  # Dense(1) on 32 features
BOOK_MODELS = [
    # experiment, builder, input shape, task, kwargs, hand count, parameters
    (
        "imdb_simplernn",
        simple_rnn,
        (500,),
        BINARY,
        {},
        10_000 * 32 + simple_rnn_params(32, 32) + HEAD,
        322_113,
    ),
    ("imdb_lstm", lstm, (500,), BINARY, {}, 320_000 + lstm_params(32, 32) + HEAD, 328_353),
    (
        "imdb_bilstm",
        lstm,
        (500,),
        BINARY,
        {"bidirectional": True},
        320_000 + 2 * lstm_params(32, 32) + 64 + 1,
        336_705,
    ),
    (
        "imdb_lstm_reversed",
        lstm,
        (500,),
        BINARY,
        {"embedding_dim": 128},
        1_280_000 + lstm_params(128, 32) + HEAD,
        1_300_641,
    ),
    ("jena_climate_gru", gru, JENA, REGRESSION, {}, gru_params(14, 32) + HEAD, 4_641),
    (
        "jena_climate_gru_dropout",
        gru,
        (None, 14),
        REGRESSION,
        {"dropout": 0.2, "recurrent_dropout": 0.2},
        gru_params(14, 32) + HEAD,
        4_641,
    ),
    (
        "jena_climate_stacked_gru",
        gru,
        (None, 14),
        REGRESSION,
        {
            "units": [32, 64],
            "dropout": 0.1,
            "recurrent_dropout": 0.5,
            "activation": ["tanh", "relu"],
        },
        gru_params(14, 32) + gru_params(32, 64) + 64 + 1,
        23_489,
    ),
    (
        "jena_climate_bigru",
        gru,
        (None, 14),
        REGRESSION,
        {"bidirectional": True},
        2 * gru_params(14, 32) + 64 + 1,
        9_281,
    ),
    (
        "imdb_conv1d",
        conv1d,
        (500,),
        BINARY,
        {},
        1_280_000 + conv1d_params(128, 32, 7) + conv1d_params(32, 32, 7) + HEAD,
        1_315_937,
    ),
    (
        "jena_climate_conv1d",
        conv1d,
        JENA,
        REGRESSION,
        {"num_words": None, "num_conv": 3, "kernel_size": 5, "pool_size": 3},
        conv1d_params(14, 32, 5) + 2 * conv1d_params(32, 32, 5) + HEAD,
        12_609,
    ),
    (
        "jena_climate_conv1d_gru",
        conv1d_gru,
        JENA,
        REGRESSION,
        {},
        conv1d_params(14, 32, 5) + conv1d_params(32, 32, 5) + gru_params(32, 32) + HEAD,
        13_793,
    ),
    (
        "jena_climate_dense",
        dense_timeseries,
        JENA,
        REGRESSION,
        {},
        240 * 14 * 32 + 32 + HEAD,
        107_585,
    ),
]


@pytest.mark.parametrize(
    "builder,input_shape,task,kwargs,hand_count,expected",
    [c[1:] for c in BOOK_MODELS],
    ids=[c[0] for c in BOOK_MODELS],
)
def test_the_books_parameter_counts(builder, input_shape, task, kwargs, hand_count, expected):
    assert hand_count == expected
    model = builder(input_shape=input_shape, task=task, **kwargs)
    assert model.count_params() == expected


def test_book_printed_simplernn_summary():
    # §6.2: "Embedding(10000,32) + SimpleRNN(32)" has 322,080 parameters, 2,080 for the RNN.
    assert simple_rnn_params(32, 32) == 2_080
    assert 322_113 - HEAD == 322_080


def test_imdb_conv1d_layers_are_the_books():
    model = conv1d(input_shape=(500,), task=BINARY)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == [
        "Embedding",
        "Conv1D",
        "MaxPooling1D",
        "Conv1D",
        "GlobalMaxPooling1D",
        "Dense",
    ]
    assert model.layers[0].output_dim == 128
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv1D)]
    assert [(c.filters, c.kernel_size, c.activation.__name__) for c in convs] == [
        (32, (7,), "relu"),
        (32, (7,), "relu"),
    ]
    assert model.layers[2].pool_size == (5,)
    assert model.inputs[0].dtype == "int32"


def test_jena_conv1d_pools_between_three_convolutions():
    model = conv1d(
        input_shape=JENA, task=REGRESSION, num_words=None, num_conv=3, kernel_size=5, pool_size=3
    )
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == [
        "Conv1D",
        "MaxPooling1D",
        "Conv1D",
        "MaxPooling1D",
        "Conv1D",
        "GlobalMaxPooling1D",
        "Dense",
    ]
    assert model.inputs[0].dtype == "float32"


def test_conv1d_gru_layers_and_dropout():
    model = conv1d_gru(input_shape=JENA, task=REGRESSION)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Conv1D", "MaxPooling1D", "Conv1D", "GRU", "Dense"]
    recurrent = model.layers[3]
    assert (recurrent.dropout, recurrent.recurrent_dropout) == (0.1, 0.5)


# --- stacking, bidirectional, dropout, activation -----------------------------------------


def test_stacked_layers_return_sequences_except_the_last():
    model = gru(input_shape=(None, 14), task=REGRESSION, units=[8, 16, 4])
    recurrent = [layer for layer in model.layers if isinstance(layer, keras.layers.GRU)]
    assert [layer.units for layer in recurrent] == [8, 16, 4]
    assert [layer.return_sequences for layer in recurrent] == [True, True, False]


def test_jena_stacked_gru_configs():
    model = gru(
        input_shape=(None, 14),
        task=REGRESSION,
        units=[32, 64],
        dropout=0.1,
        recurrent_dropout=0.5,
        activation=["tanh", "relu"],
    )
    configs = [layer.get_config() for layer in model.layers[:2]]
    assert [c["activation"] for c in configs] == ["tanh", "relu"]
    assert [c["dropout"] for c in configs] == [0.1, 0.1]
    assert [c["recurrent_dropout"] for c in configs] == [0.5, 0.5]
    assert [c["return_sequences"] for c in configs] == [True, False]
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in model.layers)


def test_one_activation_applies_to_every_layer():
    model = lstm(
        input_shape=(None, 3), task=BINARY, num_words=None, units=[4, 4], activation="relu"
    )
    assert [layer.get_config()["activation"] for layer in model.layers[:2]] == ["relu", "relu"]


def test_bidirectional_wraps_every_layer():
    model = lstm(input_shape=(20,), task=BINARY, num_words=50, units=[4, 6], bidirectional=True)
    wrapped = [layer for layer in model.layers if isinstance(layer, keras.layers.Bidirectional)]
    assert len(wrapped) == 2
    assert all(isinstance(layer.forward_layer, keras.layers.LSTM) for layer in wrapped)
    assert [layer.forward_layer.return_sequences for layer in wrapped] == [True, False]
    assert model.layers[-1].kernel.shape == (12, 1)  # both directions concatenated


@pytest.mark.parametrize("units", [32, [32], (32,)], ids=["int", "list", "tuple"])
def test_units_accepts_an_int_or_a_list(units):
    model = gru(input_shape=JENA, task=REGRESSION, units=units)
    assert model.count_params() == 4_641


def test_text_input_starts_with_an_embedding():
    for builder in (simple_rnn, lstm, gru, conv1d):
        model = builder(input_shape=(60,), task=BINARY, num_words=100, embedding_dim=4)
        assert isinstance(model.layers[0], keras.layers.Embedding), builder.__name__
        assert (model.layers[0].input_dim, model.layers[0].output_dim) == (100, 4)
        assert model.inputs[0].dtype == "int32"
        keras.backend.clear_session()


def test_series_input_has_no_embedding():
    for builder in (simple_rnn, lstm, gru, conv1d):
        model = builder(input_shape=(60, 3), task=REGRESSION, num_words=None)
        assert not any(isinstance(layer, keras.layers.Embedding) for layer in model.layers)
        assert model.inputs[0].dtype == "float32"
        keras.backend.clear_session()


def test_sequence_length():
    # imdb_conv1d at maxlen 500: 500 -6-> 494 -/5-> 98 -6-> 92.
    assert sequence_length(500, 2, 7, 5) == 92
    # jena_climate_conv1d: 240 -4-> 236 -/3-> 78 -4-> 74 -/3-> 24 -4-> 20.
    assert sequence_length(240, 3, 5, 3) == 20
    assert sequence_length(17, 2, 7, 5) == 0  # 11 -/5-> 2, then a 7-wide window does not fit
    assert sequence_length(41, 2, 7, 5) == 1


# --- heads: shape and dtype ---------------------------------------------------------------

HEAD_CASES = [
    ("simple_rnn", (12,), {"num_words": 30}),
    ("lstm", (12,), {"num_words": 30, "units": [4, 4], "bidirectional": True}),
    ("gru", (12, 3), {"units": 4}),
    ("conv1d", (30,), {"num_words": 30, "embedding_dim": 8, "filters": 4, "kernel_size": 3}),
    ("conv1d", (30, 3), {"num_words": None, "filters": 4, "kernel_size": 3, "pool_size": 2}),
    ("conv1d_gru", (30, 3), {"filters": 4, "units": 4}),
    ("dense_timeseries", (12, 3), {"units": 4}),
]


@pytest.fixture
def policy(request):
    """The global dtype policy `request.param` while the model is built, float32 after."""
    keras.mixed_precision.set_global_policy(request.param)
    yield request.param
    keras.mixed_precision.set_global_policy("float32")


COMPUTE = {"float32": "float32", "mixed_float16": "float16"}


@pytest.mark.parametrize("policy", list(COMPUTE), indirect=True)
@pytest.mark.parametrize("task", [BINARY, FOUR_CLASSES, REGRESSION], ids=lambda t: t.kind)
@pytest.mark.parametrize(
    "name,input_shape,kwargs", HEAD_CASES, ids=[f"{c[0]}-{len(c[1])}d" for c in HEAD_CASES]
)
def test_output_shape_and_float32_head(name, input_shape, kwargs, task, policy):
    model = build_model(name, input_shape=input_shape, task=task, **kwargs)
    x = word_indices(input_shape[0], 30) if len(input_shape) == 1 else series(input_shape)
    predictions = model(x)
    assert tuple(predictions.shape) == (3, task.units)
    # The layers before the head compute in the policy's dtype; the head gives float32.
    hidden = keras.backend.standardize_dtype(model.layers[-2].output.dtype)
    assert hidden == COMPUTE[policy]
    assert keras.backend.standardize_dtype(predictions.dtype) == "float32"
    assert model.layers[-1].name == "predictions"
    activation = {"binary": "sigmoid", "multiclass": "softmax", "regression": "linear"}
    assert model.layers[-1].activation.__name__ == activation[task.kind]
    if task.kind == "multiclass":
        np.testing.assert_allclose(np.sum(predictions, axis=-1), 1.0, rtol=1e-3)


@pytest.mark.parametrize("policy", list(COMPUTE), indirect=True)
def test_last_value_predicts_the_last_value_exactly_in_float32(policy):
    """The book's baseline as a model copies an input: float16 would round it (1.0001 is
    1.0 in float16) and give float16 predictions under `auto` on a GPU."""
    x = series((6, 3)) + np.float32(1.0001)
    model = build_model("last_value", input_shape=(6, 3), task=REGRESSION, feature=1)
    predictions = model(x)
    assert keras.backend.standardize_dtype(predictions.dtype) == "float32"
    np.testing.assert_array_equal(np.asarray(predictions)[:, 0], x[:, -1, 1])


def test_recurrent_models_take_any_number_of_timesteps():
    model = gru(input_shape=(None, 3), task=REGRESSION, units=4)
    assert tuple(model(series((7, 3))).shape) == (3, 1)
    assert tuple(model(series((19, 3))).shape) == (3, 1)


# --- saving -------------------------------------------------------------------------------


def test_keras_round_trip_gives_the_same_predictions(tmp_path):
    model = lstm(
        input_shape=(12,),
        task=BINARY,
        num_words=30,
        embedding_dim=4,
        units=[4, 6],
        bidirectional=True,
        dropout=0.2,
        recurrent_dropout=0.1,
        activation=["tanh", "relu"],
    )
    x = word_indices(12, 30, n=4)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras", safe_mode=True)
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )
    assert isinstance(loaded.layers[0], keras.layers.Embedding)
    assert loaded.layers[2].forward_layer.get_config()["activation"] == "relu"
    assert loaded.layers[1].forward_layer.get_config()["recurrent_dropout"] == 0.1


# --- config errors ------------------------------------------------------------------------

ERROR_CASES = [
    ("simple_rnn", (500, 14), {}, r"model.num_words=null.*input_shape=\[500, 14\]"),
    ("lstm", (500, 14), {}, r"model.num_words=10000 takes word indices.*\[500, 14\]"),
    ("gru", (500,), {}, r"model.num_words=10000.*Received: model.num_words=None, input_shape"),
    ("conv1d", (500,), {"num_words": None}, "data.encoding=sequence"),
    ("lstm", (500,), {"num_words": 0}, "model.num_words=0"),
    ("lstm", (500,), {"num_words": "many"}, "model.num_words='many'"),
    ("lstm", (500,), {"embedding_dim": 0}, "model.embedding_dim=0"),
    ("gru", (8, 8, 1), {}, r"input_shape=\[8, 8, 1\]"),
    ("simple_rnn", (500,), {"units": [32]}, r"model.units=\[32\]"),
    ("lstm", (500,), {"units": []}, r"non-empty list.*model.units=\[\]"),
    ("gru", JENA, {"units": [32, 0]}, r"model.units=\[32, 0\]"),
    ("gru", JENA, {"units": "32"}, "model.units='32'"),
    ("gru", JENA, {"units": True}, "model.units=True"),
    ("gru", JENA, {"dropout": 1.0}, r"\[0, 1\).*model.dropout=1.0"),
    ("lstm", (500,), {"recurrent_dropout": -0.1}, "model.recurrent_dropout=-0.1"),
    ("conv1d_gru", JENA, {"recurrent_dropout": 1.5}, "model.recurrent_dropout=1.5"),
    ("gru", JENA, {"activation": "nope"}, "model.activation='nope'"),
    ("gru", JENA, {"activation": ["tanh", "relu"]}, r"one per entry of model.units \(1\)"),
    ("lstm", (500,), {"bidirectional": "yes"}, "model.bidirectional='yes'"),
    ("conv1d", (40,), {}, r"at least 41 steps.*input_shape=\[40\]. Set data.maxlen to at least 41"),
    ("conv1d", (20, 14), {"num_words": None}, "Use sequences of at least 41 timesteps"),
    ("conv1d", (500,), {"num_conv": 5}, "model.num_conv=5"),
    ("conv1d", (500,), {"kernel_size": 0}, "model.kernel_size=0"),
    ("conv1d_gru", (12, 14), {}, r"at least 19 steps.*model.pool_size=3"),
    ("conv1d_gru", (500,), {}, r"model=conv1d with model.num_words set.*\[500\]"),
    ("dense_timeseries", (500,), {}, r"model=lstm.*input_shape=\[500\]"),
    ("dense_timeseries", (None, 14), {}, r"fixed number of timesteps.*\[None, 14\]"),
    ("dense_timeseries", JENA, {"units": -1}, "model.units=-1"),
    ("gru", JENA, {"unit": 4}, "Unknown key model.unit"),
]


@pytest.mark.parametrize("name,input_shape,kwargs,message", ERROR_CASES)
def test_config_errors_are_one_line_and_keras_style(name, input_shape, kwargs, message):
    with pytest.raises(ConfigError, match=message) as error:
        build_model(name, input_shape=input_shape, task=BINARY, **kwargs)
    assert "\n" not in str(error.value)
    assert "Received: " in str(error.value)


# --- conf/model/*.yaml ----------------------------------------------------------------------


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_yaml_keys_are_the_builders_arguments_and_defaults(name):
    config = OmegaConf.to_container(OmegaConf.load(CONF_MODEL / f"{name}.yaml"), resolve=True)
    assert config.pop("name") == name
    parameters = inspect.signature(MODELS[name]).parameters
    assert set(config) == set(parameters) - GIVEN
    for key, value in config.items():
        default = parameters[key].default
        assert value == (list(default) if isinstance(default, tuple) else default), key


@pytest.mark.parametrize(
    "name,input_shape,expected",
    [
        ("simple_rnn", (500,), 322_113),
        ("lstm", (500,), 328_353),
        ("conv1d", (500,), 1_315_937),
        ("gru", JENA, 4_641),
        ("conv1d_gru", JENA, 13_793),
        ("dense_timeseries", JENA, 107_585),
    ],
)
def test_yaml_defaults_build_the_books_first_model(name, input_shape, expected):
    config = OmegaConf.to_container(OmegaConf.load(CONF_MODEL / f"{name}.yaml"), resolve=True)
    config.pop("name")
    task = BINARY if len(input_shape) == 1 else REGRESSION
    model = build_model(name, input_shape=input_shape, task=task, **config)
    assert model.count_params() == expected


# --- model=text_generation ------------------------------------------------------------------


def test_the_books_model_and_what_it_refuses():
    from kerasrun.models import build_model
    from kerasrun.tasks import Task

    model = build_model("text_generation", input_shape=(60, 57), task=Task("multiclass", 57))
    assert model.output_shape == (None, 57) and model.count_params() == 102_585  # listing 8-4
    with pytest.raises(ConfigError, match=r"use data=text_file. Received: input_shape=\[8, 8, 1\]"):
        build_model("text_generation", input_shape=(8, 8, 1), task=Task("multiclass", 10))
