"""The model builders: the book's parameter counts, heads, freezing, saving and config errors.

Real Keras models throughout (no ImageNet downloads: `weights=None` or a local weights file).
"""

import inspect
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from omegaconf import OmegaConf

from kerasrun.errors import ConfigError
from kerasrun.models import MODELS, build_model, pretrained
from kerasrun.models.convnets import convnet, mnist_convnet, small_convnet
from kerasrun.tasks import Task

REPO = Path(__file__).resolve().parents[1]
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


@pytest.fixture
def mixed_float16():
    keras.mixed_precision.set_global_policy("mixed_float16")
    yield
    keras.mixed_precision.set_global_policy("float32")


def raw_images(shape, n=2, seed=0):
    """Float32 images in [0, 255], what every model takes."""
    return np.random.default_rng(seed).uniform(0, 255, size=(n, *shape)).astype("float32")


def subprocess_env(**extra):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **extra}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    return env


# --- the book's parameter counts ----------------------------------------------------------


def test_mnist_convnet_has_the_books_93322_parameters():
    model = mnist_convnet(input_shape=(28, 28, 1), task=TEN_CLASSES)
    assert model.count_params() == 93_322
    assert isinstance(model.layers[0], keras.layers.Rescaling)


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_small_convnet_has_the_books_3453121_parameters(dropout):
    model = small_convnet(input_shape=(150, 150, 3), task=BINARY, dropout=dropout)
    assert model.count_params() == 3_453_121
    dropouts = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert [layer.rate for layer in dropouts] == ([0.5] if dropout else [])


def test_convnet_is_the_lecture_decks_64px_cnn():
    model = convnet(
        input_shape=(64, 64, 3),
        task=BINARY,
        filters=[32, 64, 128],
        padding="same",
        conv_dropout=0.25,
        units=512,
        dropout=0.0,
    )
    assert model.count_params() == 4_288_577


def test_convnet_batch_norm_adds_one_layer_per_stage():
    model = convnet(input_shape=(8, 8, 1), task=TEN_CLASSES, filters=[8, 16], batch_norm=True)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == 2


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


def test_pretrained_under_mixed_precision_computes_in_float16(mixed_float16):
    model = pretrained.vgg16(input_shape=(32, 32, 3), task=BINARY, weights=None)
    assert model.get_layer("conv_base").compute_dtype == "float16"
    assert model.layers[-1].compute_dtype == "float32"


# --- freezing and fine-tuning -------------------------------------------------------------


def test_unfreeze_from_block5_conv1_adds_block5s_six_tensors():
    model = pretrained.vgg16(input_shape=(32, 32, 3), task=BINARY, weights=None)
    # The book's 4: Dense(256) and the head, kernel and bias each.
    assert len(model.trainable_weights) == 4
    assert pretrained.unfreeze_from(model, "block5_conv1") == 4 + 6
    assert len(model.trainable_weights) == 10
    conv_base = model.get_layer("conv_base")
    assert not conv_base.get_layer("block4_conv3").trainable
    assert conv_base.get_layer("block5_conv1").trainable


def test_trainable_from_trains_block5_from_the_start():
    model = pretrained.vgg16(
        input_shape=(32, 32, 3), task=BINARY, weights=None, trainable_from="block5_conv1"
    )
    assert len(model.trainable_weights) == 10


def test_unfreeze_from_unknown_layer_lists_valid_names():
    model = pretrained.vgg16(input_shape=(32, 32, 3), task=BINARY, weights=None)
    with pytest.raises(ConfigError, match="block5_conv1") as error:
        pretrained.unfreeze_from(model, "block6_conv1")
    assert "Received: model.unfreeze_from='block6_conv1'" in str(error.value)
    assert len(model.trainable_weights) == 4  # nothing changed


def test_unfreeze_from_needs_a_conv_base():
    model = convnet(input_shape=(8, 8, 1), task=TEN_CLASSES)
    with pytest.raises(ConfigError, match="conv_base"):
        pretrained.unfreeze_from(model, "block5_conv1")


def test_local_weights_file_is_loaded_into_the_conv_base(tmp_path):
    source = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path / "vgg16_notop.weights.h5"
    source.save_weights(path)
    model = pretrained.vgg16(input_shape=(32, 32, 3), task=BINARY, weights=str(path))
    loaded = model.get_layer("conv_base").get_weights()
    assert len(loaded) == len(source.get_weights()) == 26
    for expected, actual in zip(source.get_weights(), loaded, strict=True):
        np.testing.assert_array_equal(expected, actual)


@pytest.mark.slow
@pytest.mark.parametrize("backbone", sorted(pretrained.BACKBONES))
def test_each_backbone_builds_at_its_minimum_size(backbone):
    size = pretrained.BACKBONES[backbone].min_size
    model = pretrained.pretrained(
        input_shape=(size, size, 3), task=BINARY, backbone=backbone, weights=None, pooling="avg"
    )
    assert tuple(model(raw_images((size, size, 3), n=1)).shape) == (1, 1)
    assert len(model.trainable_weights) == 4  # the frozen base adds none


@pytest.mark.parametrize(
    "backbone,preprocess_input",
    [
        ("VGG16", keras.applications.vgg16.preprocess_input),
        ("ResNet50", keras.applications.resnet50.preprocess_input),
        ("Xception", keras.applications.xception.preprocess_input),
        ("DenseNet121", keras.applications.densenet.preprocess_input),
    ],
)
def test_preprocessing_layer_matches_keras_preprocess_input(backbone, preprocess_input):
    layer_class = pretrained.custom_objects()["kerasrun>ImageNetPreprocessing"]
    images = raw_images((8, 8, 3))
    actual = layer_class(pretrained.BACKBONES[backbone].preprocess)(images)
    np.testing.assert_allclose(actual, preprocess_input(images.copy()), rtol=1e-5, atol=1e-4)


# --- saving -------------------------------------------------------------------------------


def conv_base_call_kwargs(model):
    layers = model.get_config()["layers"]
    return next(layer for layer in layers if layer["name"] == "conv_base")["inbound_nodes"][0][
        "kwargs"
    ]


@pytest.mark.parametrize("channels", [1, 3], ids=["grayscale", "rgb"])
def test_keras_round_trip_gives_the_same_predictions(tmp_path, channels):
    input_shape = (32, 32, channels)
    model = pretrained.pretrained(
        input_shape=input_shape, task=TEN_CLASSES, backbone="VGG16", weights=None, units=8
    )
    pretrained.unfreeze_from(model, "block5_conv1")  # the trainable flags must round-trip too
    images = raw_images(input_shape, n=4)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path, custom_objects=pretrained.custom_objects())
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0))
    assert len(loaded.trainable_weights) == len(model.trainable_weights) == 10
    assert conv_base_call_kwargs(loaded)["training"] is False  # BatchNorm stays in inference


def test_keras_file_loads_in_a_fresh_process_in_safe_mode(tmp_path):
    model = pretrained.pretrained(
        input_shape=(32, 32, 3), task=BINARY, backbone="VGG16", weights=None, units=8
    )
    images = raw_images((32, 32, 3), n=2)
    model.save(tmp_path / "model.keras")
    np.save(tmp_path / "images.npy", images)
    code = (
        "import sys, keras, numpy as np\n"
        "from kerasrun.models.pretrained import custom_objects\n"
        "custom_objects()  # registers kerasrun>ImageNetPreprocessing\n"
        "run = sys.argv[1]\n"
        "model = keras.models.load_model(run + '/model.keras', safe_mode=True)\n"
        "np.save(run + '/loaded.npy', model.predict(np.load(run + '/images.npy'), verbose=0))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    expected = model.predict(images, verbose=0)
    np.testing.assert_allclose(np.load(tmp_path / "loaded.npy"), expected, rtol=1e-5, atol=1e-6)


def test_convnet_keras_round_trip(tmp_path):
    model = convnet(input_shape=(8, 8, 1), task=TEN_CLASSES)
    images = raw_images((8, 8, 1), n=4)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0))


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


def test_imagenet_download_failure_says_where_to_put_the_file(tmp_path):
    # Offline without touching the network: every proxy is a closed port on loopback.
    proxy = "http://127.0.0.1:9"
    env = subprocess_env(KERAS_HOME=str(tmp_path), HTTPS_PROXY=proxy, HTTP_PROXY=proxy)
    env.update(https_proxy=proxy, http_proxy=proxy)
    for key in ("NO_PROXY", "no_proxy"):
        env.pop(key, None)
    code = (
        "from kerasrun.errors import ConfigError\n"
        "from kerasrun.models import build_model\n"
        "from kerasrun.tasks import Task\n"
        "try:\n"
        "    build_model('vgg16_finetune', input_shape=(32, 32, 3), task=Task('binary'))\n"
        "except ConfigError as error:\n"
        "    print('ConfigError:', error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    message = result.stdout.strip().splitlines()[-1]  # after Keras's "Downloading data from"
    assert message.startswith("ConfigError:"), (message, result.stderr[-2000:])
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert str(tmp_path / "models") in message
    assert "model.weights=/path/to/file or model.weights=null" in message
    assert "Received: model.weights='imagenet'" in message


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
