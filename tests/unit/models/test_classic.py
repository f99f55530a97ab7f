"""The classic architectures (models/classic*.py): published parameter counts, a training step
on every model, the small-image stems, the batch_norm switch, saving, and too-small images.

Real Keras models and real training steps on generated images (the `train` run of a CIFAR-10
preset is in cli/test_train.py).
"""

import math

import keras
import numpy as np
import pytest
from omegaconf import OmegaConf

from helpers import REPO
from kerasrun.errors import ConfigError
from kerasrun.models import build_model, load_model
from kerasrun.tasks import Task

CLASSIC = [
    "lenet",
    "alexnet",
    "vgg",
    "nin",
    "separable_convnet",
    "inception_small",
    "resnet_small",
    "densenet_small",
]
# The original had no BatchNormalization: these take batch_norm.
BN_SWITCH = ["lenet", "alexnet", "vgg", "nin", "separable_convnet", "inception_small"]
# Cheap settings of the same code paths, for training steps (the YAML defaults are big).
SMALL = {
    "alexnet": dict(units=32),
    "vgg": dict(depth=11, units=32),
    "inception_small": dict(width=0.125),
    "resnet_small": dict(filters=8),
    "densenet_small": dict(blocks=[2, 2, 2], growth_rate=4),
}
TEN = Task("multiclass", num_classes=10)
IMAGENET = Task("multiclass", num_classes=1000)


@pytest.fixture(autouse=True)
def fresh_keras_session(request):
    yield
    # clear_session costs ~0.3 s: not after the tests whose builders refuse before building.
    if not request.function.__name__.startswith(("test_too_small", "test_bad_values")):
        keras.backend.clear_session()


def yaml_defaults(name):
    config = OmegaConf.to_container(OmegaConf.load(REPO / "conf" / "model" / f"{name}.yaml"))
    config.pop("name")
    return config


def trainable(model):
    return sum(math.prod(w.shape) for w in model.trainable_weights)


def first_conv(model):
    return next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))


# --- published parameter counts (built at the source's input size; never trained) ------------


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 1)])
def test_lenet_layers_have_the_papers_parameter_counts(shape):
    # LeCun et al. 1998, section II.B: C1 156, C5 48,120 and F6 10,164 trainable parameters.
    # (Its C3 had 1,516: a sparse connection table; here C3 is fully connected.)
    model = build_model("lenet", input_shape=shape, task=TEN)
    counts = {layer.name: layer.count_params() for layer in model.layers}
    assert (counts["c1"], counts["c5"], counts["f6"]) == (156, 48_120, 10_164)
    assert first_conv(model).padding == ("same" if shape[0] < 32 else "valid")


def test_separable_convnet_is_the_books_listing():
    # The book's 7.3.1 listing for 64x64x3 and 10 classes, as Keras counts it.
    model = build_model("separable_convnet", input_shape=(64, 64, 3), task=TEN)
    assert model.count_params() == 38_949
    assert sum(isinstance(x, keras.layers.SeparableConv2D) for x in model.layers) == 6


@pytest.mark.parametrize(
    "depth, params",
    # keras.applications.VGG16 / VGG19 (include_top=True) and the paper's table 2 (138M, 144M).
    [(16, 138_357_544), (19, 143_667_240)],
)
def test_vgg_has_the_published_parameter_count(depth, params):
    model = build_model("vgg", input_shape=(224, 224, 3), task=IMAGENET, depth=depth)
    assert model.count_params() == params
    assert model.get_layer("block5_conv3").count_params() == 2_359_808  # as keras.applications


def test_alexnet_single_tower_count():
    # The paper's layer shapes (Krizhevsky et al. 2012, figure 2) with the two GPU towers
    # merged, as the deck and Dive into Deep Learning write it: 62,378,344 at 227x227x3.
    model = build_model("alexnet", input_shape=(227, 227, 3), task=IMAGENET)
    assert model.count_params() == 62_378_344
    assert first_conv(model).kernel_size == (11, 11) and first_conv(model).strides == (4, 4)


@pytest.mark.parametrize("depth, params", [(18, 11_689_512), (34, 21_797_672)])
def test_resnet_trainable_parameters_match_torchvision(depth, params):
    # torchvision's resnet18/resnet34 count only trainable parameters (BN's running mean and
    # variance are buffers); Keras's count_params() adds them as non-trainable weights.
    model = build_model("resnet_small", input_shape=(224, 224, 3), task=IMAGENET, depth=depth)
    assert trainable(model) == params
    bn = [x for x in model.layers if isinstance(x, keras.layers.BatchNormalization)]
    moving_statistics = sum(2 * x.gamma.shape[0] for x in bn)
    assert model.count_params() == params + moving_statistics


def test_densenet_defaults_are_densenet121():
    # torchvision's densenet121: 7,978,856 parameters; keras.applications.DenseNet121:
    # 8,062,504 including BN's moving statistics. (cifar10_densenet's DenseNet-BC (L=100,
    # k=12) builds 793,150 in all, the paper's "0.8M"; not asserted: a rounded figure.)
    model = build_model("densenet_small", input_shape=(224, 224, 3), task=IMAGENET)
    assert (trainable(model), model.count_params()) == (7_978_856, 8_062_504)


# --- every model: builds at CIFAR-10 and cats_dogs sizes, trains a step ------------------------


@pytest.mark.parametrize("name", CLASSIC)
def test_each_model_trains_a_step_at_cifar_size_and_builds_at_150(name):
    rng = np.random.default_rng(0)
    # A batch of 3: resnet_small with 8 filters once crashed oneDNN on it (see its shortcut).
    images = rng.uniform(0, 255, size=(3, 32, 32, 3)).astype("float32")
    model = build_model(name, input_shape=(32, 32, 3), task=TEN, **SMALL.get(name, {}))
    model.compile("adam", TEN.loss, run_eagerly=True)  # one step: no graph to trace
    loss = model.train_on_batch(images, np.array([0, 1, 2]))
    assert math.isfinite(float(loss))
    assert model(images).shape == (3, 10)  # eager: predict() would trace a graph
    keras.backend.clear_session()
    # The YAML defaults, as `train model=<name> data=cats_dogs` builds them.
    model = build_model(name, input_shape=(150, 150, 3), task=Task("binary"), **yaml_defaults(name))
    assert model.output_shape == (None, 1)
    assert model.layers[-1].activation.__name__ == "sigmoid"


@pytest.mark.parametrize(
    "name, imagenet_kernel", [("alexnet", 11), ("nin", 11), ("resnet_small", 7)]
)
def test_stem_auto_keeps_the_papers_stem_for_large_images_only(name, imagenet_kernel):
    big = build_model(name, input_shape=(150, 150, 3), task=TEN, **SMALL.get(name, {}))
    small = build_model(name, input_shape=(32, 32, 3), task=TEN, **SMALL.get(name, {}))
    assert first_conv(big).kernel_size[0] == imagenet_kernel and first_conv(big).strides[0] > 1
    assert first_conv(small).kernel_size[0] < imagenet_kernel and first_conv(small).strides[0] == 1


@pytest.mark.parametrize("name", BN_SWITCH)
def test_batch_norm_adds_one_batch_normalization_per_hidden_layer(name):
    def layers_of(**kwargs):
        model = build_model(
            name, input_shape=(32, 32, 3), task=TEN, **SMALL.get(name, {}), **kwargs
        )
        weighted = [
            x
            for x in model.layers
            if isinstance(
                x, (keras.layers.Conv2D, keras.layers.SeparableConv2D, keras.layers.Dense)
            )
            and x.name != "predictions"
        ]
        bn = [x for x in model.layers if isinstance(x, keras.layers.BatchNormalization)]
        return weighted, bn

    weighted, bn = layers_of(batch_norm=False)
    assert not bn and all(x.use_bias for x in weighted)
    weighted_bn, bn = layers_of(batch_norm=True)
    # separable_convnet keeps its Dense(32) as the book wrote it; the others normalize it too.
    normalized = [x for x in weighted_bn if not x.use_bias]
    assert len(bn) == len(normalized) and len(weighted_bn) == len(weighted)
    assert len(normalized) >= len(weighted) - 1


@pytest.mark.parametrize("name", ["resnet_small", "inception_small"])
def test_saved_model_predicts_the_same(tmp_path, name):
    images = np.random.default_rng(1).uniform(0, 255, size=(2, 32, 32, 3)).astype("float32")
    model = build_model(name, input_shape=(32, 32, 3), task=TEN, **SMALL[name])
    model.save(tmp_path / "model.keras")
    restored = load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(restored(images), model(images), atol=1e-6)


# --- bad input: one clear line before anything is built ---------------------------------------


@pytest.mark.parametrize(
    "name, kwargs, side, expected",
    [
        ("vgg", {}, 16, r"model=vgg needs images of at least 32x32 .* data.image_size=\[16, 16\]"),
        ("separable_convnet", {}, 30, r"at least 32x32 .*data.image_size=\[32,32\] or larger"),
        ("alexnet", {"stem": "imagenet"}, 32, r"stem=imagenet needs .* 67x67 .*model.stem=small"),
        ("lenet", {}, 8, r"at least 12x12"),
    ],
)
def test_too_small_images_are_refused_with_the_size_that_works(name, kwargs, side, expected):
    with pytest.raises(ConfigError, match=expected):
        build_model(name, input_shape=(side, side, 3), task=TEN, **kwargs)


@pytest.mark.parametrize(
    "name, kwargs, expected",
    [
        ("vgg", {"depth": 15}, r"model.depth` must be one of 11, 13, 16, 19.*model.depth=15"),
        ("resnet_small", {"depth": 50}, r"18 or 34.*model.depth=50"),
        ("resnet_small", {"stem": "tiny"}, r"auto, imagenet, small.*model.stem='tiny'"),
        ("lenet", {"pooling": "min"}, r"average or max"),
        ("densenet_small", {"blocks": []}, r"model.blocks=\[\]"),
        ("inception_small", {"widht": 0.5}, r"Unknown key model.widht .*conf/model/incep"),
    ],
)
def test_bad_values_name_the_key(name, kwargs, expected):
    with pytest.raises(ConfigError, match=expected):
        build_model(name, input_shape=(32, 32, 3), task=TEN, **kwargs)
