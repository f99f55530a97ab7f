"""The model registry: `build_model` by name (heads, config errors, pretrained word vectors)
and conf/model/*.yaml.

Real Keras models throughout (no ImageNet downloads: `weights=None`).
"""

import inspect
import json
import subprocess
import sys

import keras
import numpy as np
import pytest
from omegaconf import OmegaConf

from helpers import REPO, embedding_of, raw_images, subprocess_env
from kerasrun.errors import ConfigError
from kerasrun.models import MODELS, build_model
from kerasrun.tasks import Task

CONF_MODEL = REPO / "conf" / "model"
# Popped by `train` (phase 2 of fine-tuning) before the builder is called.
FINE_TUNE_KEYS = {"unfreeze_from", "fine_tune_epochs", "fine_tune_learning_rate"}
# Supplied by `train` (the data's shape and task, pretrained word vectors), never YAML keys.
GIVEN = {"input_shape", "task", "embeddings"}
BINARY = Task("binary")
TEN_CLASSES = Task("multiclass", num_classes=10)


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    yield
    keras.backend.clear_session()


# --- heads: shape and dtype ---------------------------------------------------------------

HEAD_CASES = [
    ("convnet", (8, 8, 1), {}),
    ("small_convnet", (64, 64, 3), {}),
    ("mnist_convnet", (28, 28, 1), {}),
    ("vgg16_feature_extraction", (32, 32, 3), {"weights": None}),
]


@pytest.mark.parametrize("policy", ["float32", "mixed_float16"])
@pytest.mark.parametrize("task", [BINARY, TEN_CLASSES], ids=["binary", "multiclass"])
@pytest.mark.parametrize("name,input_shape,kwargs", HEAD_CASES, ids=[c[0] for c in HEAD_CASES])
def test_output_shape_and_float32_head(name, input_shape, kwargs, task, policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = build_model(name, input_shape=input_shape, task=task, **kwargs)
        predictions = model(raw_images(input_shape, n=3))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert tuple(predictions.shape) == (3, task.units)
    assert keras.backend.standardize_dtype(predictions.dtype) == "float32"
    assert model.layers[-1].name == "predictions"  # task.head()
    if task.kind == "multiclass":  # softmax
        np.testing.assert_allclose(np.sum(predictions, axis=-1), 1.0, rtol=1e-3)


# --- config errors ------------------------------------------------------------------------

ERROR_CASES = [
    ("pretrained", (150, 150, 3), {"backbone": "VGG17"}, "Available: VGG16, VGG19"),
    ("vgg16_finetune", (28, 28, 3), {"weights": None}, r"data.image_size=\[28, 28\]"),
    ("pretrained", (64, 64, 3), {"backbone": "Xception", "weights": None}, "at least 71x71"),
    ("vgg16_feature_extraction", (32, 32, 3), {"weights": None, "dropout": 1.0}, "dropout=1.0"),
    ("small_convnet", (150, 150, 3), {"dropout": -0.1}, r"\[0, 1\)"),
    ("convnet", (32, 32, 3), {"conv_dropout": "high"}, "model.conv_dropout='high'"),
    ("vgg16_feature_extraction", (32, 32, 3), {"weights": "no/such.h5"}, "model.weights=null"),
    ("pretrained", (32, 32, 3), {"weights": "imagenet21k"}, "imagenet21k"),
    ("pretrained", (32, 32, 3), {"weights": None, "pooling": "max"}, "pooling='max'"),
    ("pretrained", (32, 32, 4), {"weights": None}, "RGB"),
    ("convnet", (8, 8, 1), {"filters": [8, 16, 32, 64]}, r"model.filters=.*data.image_size"),
    ("convnet", (8, 8, 1), {"filters": []}, "non-empty list"),
    ("convnet", (8, 8, 1), {"padding": "full"}, "padding='full'"),
    ("convnet", (8, 8, 1), {"kernel_initializer": "nope"}, "kernel_initializer='nope'"),
    ("small_convnet", (32, 32, 3), {}, "at least 46x46"),
    ("mnist_convnet", (8, 8, 1), {}, "at least 18x18"),
    ("convnet", (8, 8, 1), {"filter": [8]}, "Unknown key model.filter"),
    ("pretrained", (32, 32, 3), {"weights": None, "trainable_from": "top"}, "trainable_from='top'"),
]


@pytest.mark.parametrize("name,input_shape,kwargs,message", ERROR_CASES)
def test_config_errors_are_one_line_and_keras_style(name, input_shape, kwargs, message):
    with pytest.raises(ConfigError, match=message) as error:
        build_model(name, input_shape=input_shape, task=BINARY, **kwargs)
    assert "\n" not in str(error.value)
    assert "Received: " in str(error.value)


def test_importing_the_registry_does_not_import_tensorflow():
    code = (
        "import sys, kerasrun.models\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=subprocess_env(), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# --- conf/model/*.yaml ----------------------------------------------------------------------

YAML_FILES = sorted(CONF_MODEL.glob("*.yaml"))


def model_node(path):
    """The model keys of a conf/model file (`# @package _global_` files nest them in `model:`)."""
    config = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    return config["model"] if path.read_text().startswith("# @package _global_") else config


def test_every_registered_model_has_a_yaml_file():
    assert {path.stem for path in YAML_FILES} == set(MODELS)


@pytest.mark.parametrize("path", YAML_FILES, ids=[p.stem for p in YAML_FILES])
def test_yaml_keys_are_the_builders_arguments(path):
    config = model_node(path)
    name = config.pop("name")
    assert name == path.stem
    parameters = inspect.signature(MODELS[name]).parameters
    keys = set(config) - FINE_TUNE_KEYS - {"samples"}  # samples: train's, see samples.py
    assert keys <= set(parameters) - GIVEN
    if "samples" in config:  # a generative model's samples: its sampler's keys (samples.py)
        from kerasrun.training.samplers import SAMPLERS

        sampler = inspect.signature(SAMPLERS[name]).parameters
        assert set(config["samples"]) <= set(sampler) - {"data", "log_dir"}
    for key in keys:  # the YAML documents the builder's defaults
        default = parameters[key].default
        default = list(default) if isinstance(default, tuple) else default
        assert config[key] == default, key
    if name in ("pretrained", "vgg16_finetune"):
        assert set(config) >= FINE_TUNE_KEYS
    else:
        assert not set(config) & FINE_TUNE_KEYS


def test_vgg16_finetune_yaml_holds_the_books_phase_2():
    config = model_node(CONF_MODEL / "vgg16_finetune.yaml")
    assert config["unfreeze_from"] == "block5_conv1"
    assert config["fine_tune_epochs"] == 100
    assert config["fine_tune_learning_rate"] == 1e-5
    assert model_node(CONF_MODEL / "pretrained.yaml")["unfreeze_from"] is None


# --- the models' Embedding ------------------------------------------------------------------------


TEXT_MODELS = {
    "embedding_flatten": {},
    "simple_rnn": {},
    "lstm": {},
    "gru": {"num_words": 50},
    "conv1d": {"kernel_size": 3, "pool_size": 2},
}


def vectors(num_words=50, dim=6, trainable=False):
    matrix = np.random.default_rng(0).normal(size=(num_words, dim)).astype("float32")
    return {"matrix": matrix, "trainable": trainable}


@pytest.mark.parametrize("name", TEXT_MODELS)
@pytest.mark.parametrize("trainable", [False, True])
def test_pretrained_vectors_fill_the_embedding(name, trainable):
    embeddings = vectors(trainable=trainable)
    kwargs = {**TEXT_MODELS[name], "num_words": 50, "embedding_dim": 6}
    model = build_model(name, input_shape=(20,), task=BINARY, embeddings=embeddings, **kwargs)
    layer = embedding_of(model)
    np.testing.assert_array_equal(layer.get_weights()[0], embeddings["matrix"])
    assert layer.trainable is trainable
    assert any(w is layer.embeddings for w in model.trainable_weights) is trainable
    plain = build_model(name, input_shape=(20,), task=BINARY, **kwargs)
    frozen = 0 if trainable else 50 * 6
    assert model.count_params() == plain.count_params()
    trainable_count = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable_count == plain.count_params() - frozen
    # The vectors are weights, not a Constant initializer copied into the model's config.
    assert "__numpy__" not in json.dumps(model.get_config())


def test_frozen_vectors_survive_fit_and_a_keras_round_trip(tmp_path):
    embeddings = vectors()
    model = build_model(
        "embedding_flatten",
        input_shape=(20,),
        task=BINARY,
        num_words=50,
        embedding_dim=6,
        units=[4],
        embeddings=embeddings,
    )
    model.compile(optimizer="rmsprop", loss="binary_crossentropy")
    x = np.random.default_rng(1).integers(0, 50, size=(16, 20)).astype("int32")
    model.fit(x, np.arange(16) % 2, epochs=2, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    layer = embedding_of(loaded)
    assert layer.trainable is False
    np.testing.assert_array_equal(layer.get_weights()[0], embeddings["matrix"])
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("name", TEXT_MODELS)
def test_a_matrix_of_another_shape_is_one_line_error(name):
    kwargs = {**TEXT_MODELS[name], "num_words": 50, "embedding_dim": 8}
    with pytest.raises(ConfigError) as error:
        build_model(name, input_shape=(20,), task=BINARY, embeddings=vectors(), **kwargs)
    message = str(error.value)
    assert "\n" not in message
    assert "Received: model.num_words=50, model.embedding_dim=8" in message
    assert "model.embedding_dim=6" in message and "data.max_tokens=50" in message


def test_time_series_models_refuse_word_vectors():
    with pytest.raises(ConfigError, match="model.num_words=None"):
        build_model("gru", input_shape=(12, 3), task=BINARY, embeddings=vectors())
    with pytest.raises(ConfigError, match="need a model with a word Embedding"):
        build_model("conv1d_gru", input_shape=(40, 3), task=BINARY, embeddings=vectors())
