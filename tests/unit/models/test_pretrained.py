"""Transfer learning on a `keras.applications` conv base: freezing, fine-tuning, local
weights, preprocessing and saving.

Real Keras models throughout (no ImageNet downloads: `weights=None` or a local weights file).
"""

import subprocess
import sys

import keras
import numpy as np
import pytest

from helpers import raw_images, subprocess_env
from kerasrun.errors import ConfigError
from kerasrun.models import pretrained
from kerasrun.models.convnets import convnet
from kerasrun.tasks import Task

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
