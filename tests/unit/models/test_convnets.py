"""The convnets trained from scratch: the book's parameter counts and saving."""

import keras
import numpy as np
import pytest

from helpers import raw_images
from kerasrun.models.convnets import convnet, mnist_convnet, small_convnet
from kerasrun.tasks import Task

BINARY = Task("binary")
TEN_CLASSES = Task("multiclass", num_classes=10)


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    yield
    keras.backend.clear_session()


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


def test_convnet_keras_round_trip(tmp_path):
    model = convnet(input_shape=(8, 8, 1), task=TEN_CLASSES)
    images = raw_images((8, 8, 1), n=4)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0))
