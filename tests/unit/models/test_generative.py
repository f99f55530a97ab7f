"""The book's generative recipes (8.4 VAE, 8.5 DCGAN): layers, training steps, saving, the
latent grid, one-class data, and the config errors.

Real Keras models on tiny real images, in this process (the real `train` runs are in
cli/test_generative.py).
"""

import math

import keras
import numpy as np
import pytest

from helpers import collect, make_class_folder
from kerasrun.data import build_data
from kerasrun.errors import ConfigError
from kerasrun.models import build_model, load_model
from kerasrun.models.generative import dcgan, vae
from kerasrun.pictures import GRID_MARGIN
from kerasrun.tasks import Task
from kerasrun.training.image_samples import dcgan_generated, latent_grid_points, vae_latent_grid

GENERATIVE = Task("generative")
TINY_GAN = dict(generator_filters=8, discriminator_filters=8)  # the book's layers, narrower


def raw_images(shape, n, seed=0):
    """Float32 images in [0, 255] and int labels, what every kerasrun dataset yields."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (n, *shape)).astype("float32"), np.zeros(n, "int32")


# --- the book's layers --------------------------------------------------------------------


def test_vae_has_the_books_layers():
    model = vae(input_shape=(28, 28, 1), task=GENERATIVE)
    # Listing 8-23: shape_before_flattening (14, 14, 64); Dense(32); a 2-d z_mean/z_log_var.
    assert model.encoder.get_layer("before_flattening").output.shape == (None, 14, 14, 64)
    assert [o.shape for o in model.encoder.outputs] == [(None, 2), (None, 2)]
    assert model.decoder.output.shape == (None, 28, 28, 1)
    assert model.decoder.layers[-1].activation.__name__ == "sigmoid"
    # By hand: encoder 320 + 18,496 + 2x36,928 + 401,440 + 2x66; decoder 37,632 + 18,464 + 289.
    assert model.count_params() == 550_629
    # The 8x8 digits fit the same layers (4x4 before flattening); RGB gives an RGB decoder.
    small = vae(input_shape=(8, 8, 1), task=GENERATIVE)
    assert small.encoder.get_layer("before_flattening").output.shape == (None, 4, 4, 64)
    assert vae(input_shape=(16, 12, 3), task=GENERATIVE).decoder.output.shape == (None, 16, 12, 3)


def test_dcgan_has_the_books_layers():
    model = dcgan(input_shape=(32, 32, 3), task=GENERATIVE)
    generator, discriminator = model.generator, model.discriminator
    assert generator.input.shape == (None, 32)
    shapes = [layer.output.shape for layer in generator.layers[1:]]
    assert (None, 16, 16, 128) in shapes and (None, 32, 32, 256) in shapes  # 8-29
    assert generator.output.shape == (None, 32, 32, 3)
    assert generator.layers[-1].activation.__name__ == "tanh"
    convs = [layer for layer in discriminator.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.output.shape[1:] for c in convs] == [
        (30, 30, 128),
        (14, 14, 128),
        (6, 6, 128),
        (2, 2, 128),
    ]  # 8-30, valid padding
    dropout = next(x for x in discriminator.layers if isinstance(x, keras.layers.Dropout))
    assert dropout.rate == 0.4 and discriminator.output.shape == (None, 1)
    assert model.count_params() == 7_055_492  # docs/generative.md quotes it


# --- training steps, saving --------------------------------------------------------------


def test_vae_trains_evaluates_and_round_trips(tmp_path):
    model = build_model("vae", input_shape=(8, 8, 1), task=GENERATIVE, seed=1)
    model.compile(optimizer="rmsprop", loss=GENERATIVE.loss, metrics=GENERATIVE.metrics)
    x, y = raw_images((8, 8, 1), 32)
    history = model.fit(x, y, batch_size=16, validation_data=(x, y), verbose=0).history
    for key in ("loss", "reconstruction_loss", "kl_loss", "val_loss"):
        assert math.isfinite(history[key][0]), key
    test = model.evaluate(x, y, verbose=0, return_dict=True)
    assert test["loss"] == pytest.approx(test["reconstruction_loss"] + test["kl_loss"], rel=1e-5)
    model.save(tmp_path / "model.keras")
    loaded = load_model(tmp_path / "model.keras")  # kerasrun's: safe mode
    assert type(loaded).__name__ == "VAE" and loaded.latent_dim == 2
    np.testing.assert_allclose(loaded(x[:4]), model(x[:4]))  # reconstructions through z_mean
    grid = vae_latent_grid(loaded, grid_size=15)  # listing 8-28, one 8x8 digit per point
    assert grid.shape == (15 * 8, 15 * 8, 1) and grid.dtype == np.uint8


def test_dcgan_trains_with_the_books_optimizers_and_round_trips(tmp_path):
    model = build_model("dcgan", input_shape=(24, 24, 3), task=GENERATIVE, seed=1, **TINY_GAN)
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=0.123))
    # Two copies of the optimizer group's RMSprop, at the book's rates, clipped at 1.0.
    for optimizer, rate in ((model.optimizer, 8e-4), (model.g_optimizer, 4e-4)):
        assert isinstance(optimizer, keras.optimizers.RMSprop) and optimizer.clipvalue == 1.0
        assert float(optimizer.learning_rate) == pytest.approx(rate)
    x, y = raw_images((24, 24, 3), 20)
    history = model.fit(x, y, batch_size=10, epochs=1, verbose=0).history
    assert set(history) == {"d_loss", "g_loss"}
    assert all(math.isfinite(v[0]) for v in history.values())
    assert int(model.g_optimizer.iterations) == 2 and int(model.optimizer.iterations) == 2
    model.save(tmp_path / "model.keras")
    loaded = load_model(tmp_path / "model.keras")
    z = np.random.default_rng(0).normal(size=(16, 32)).astype("float32")
    np.testing.assert_allclose(loaded.generator(z), model.generator(z), atol=1e-6)
    assert int(loaded.g_optimizer.iterations) == 2  # its state saved too: training continues
    tiled = dcgan_generated(loaded, z)  # 4x4 generated images, white margins between
    side = 4 * 24 + 3 * GRID_MARGIN
    assert tiled.shape == (side, side, 3) and tiled.dtype == np.uint8


def weights_of(model):
    return [w.numpy().copy() for w in model.trainable_weights]


def largest_changes(before, model):
    """Each trainable weight's largest change since `before` (a `weights_of(model)`)."""
    after = model.trainable_weights
    return [float(np.abs(a - b.numpy()).max()) for a, b in zip(before, after, strict=True)]


def test_vae_steps_move_every_weight_and_lower_the_loss():
    images, labels = collect(build_data("digits", batch_size=64, seed=0).train_dataset)
    model = build_model("vae", input_shape=(8, 8, 1), task=GENERATIVE, seed=1)
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=1e-3))
    before = weights_of(model)
    # One batch of 64 real digits, 8 steps: each epoch's loss is that step's.
    history = model.fit(images[:64], labels[:64], batch_size=64, epochs=8, verbose=0).history
    assert all(change > 0 for change in largest_changes(before, model))  # encoder and decoder
    losses = history["loss"]
    falls = sum(b < a for a, b in zip(losses, losses[1:], strict=False))
    assert falls >= 6 and losses[-1] < losses[0] - 0.01, losses  # 7 steps (z is sampled)


def bright_images(n=16, seed=0):
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(180, 20, (n, 24, 24, 3)), 0, 255).astype("float32")


@pytest.mark.parametrize("player", ["discriminator", "generator"])
def test_each_gan_step_moves_its_own_weights_and_lowers_its_own_loss(player):
    # The other player's learning rate ~0: what is left is one model learning against a
    # fixed other, whose loss must fall from step to step (no label noise, no dropout: the
    # only randomness is the latent noise).
    other = "generator" if player == "discriminator" else "discriminator"
    keras.utils.set_random_seed(0)  # the initial weights too, whatever ran before in this process
    model = build_model(
        "dcgan",
        input_shape=(24, 24, 3),
        task=GENERATIVE,
        seed=1,
        label_noise=0.0,
        dropout=0.0,
        **{f"{other}_learning_rate": 1e-30},
        **TINY_GAN,
    )
    model.compile(optimizer=keras.optimizers.RMSprop())
    mine, theirs = getattr(model, player), getattr(model, other)
    before, others_before = weights_of(mine), weights_of(theirs)
    history = model.fit(bright_images(), np.zeros(16, "int32"), batch_size=16, epochs=8, verbose=0)
    losses = history.history["d_loss" if player == "discriminator" else "g_loss"]
    falls = sum(b < a for a, b in zip(losses, losses[1:], strict=False))
    assert falls >= 6 and losses[-1] < losses[0] - 0.002, losses  # 7 steps (a new z each)
    assert all(change > 1e-6 for change in largest_changes(before, mine))
    assert all(change < 1e-20 for change in largest_changes(others_before, theirs))


def test_a_gan_step_at_the_books_rates_moves_every_weight_of_both():
    model = build_model("dcgan", input_shape=(24, 24, 3), task=GENERATIVE, seed=1, **TINY_GAN)
    model.compile(optimizer=keras.optimizers.RMSprop())
    before = weights_of(model.generator), weights_of(model.discriminator)
    model.fit(bright_images(), np.zeros(16, "int32"), batch_size=16, epochs=1, verbose=0)
    for weights, part in zip(before, (model.generator, model.discriminator), strict=True):
        assert all(change > 1e-6 for change in largest_changes(weights, part)), part.name


def test_latent_grid_is_the_books_norm_ppf_grid():
    points = latent_grid_points(15)
    assert points.shape == (225, 2)
    # norm.ppf(linspace(0.05, 0.95, 15)): from -1.645 to 1.645, 0 in the middle.
    assert points[0] == pytest.approx([-1.6449, -1.6449], abs=1e-4)
    assert points[7] == pytest.approx([0.0, -1.6449], abs=1e-4)  # row 0 varies x
    assert points[-1] == pytest.approx([1.6449, 1.6449], abs=1e-4)


# --- one class, and the errors ------------------------------------------------------------


def test_data_classes_keeps_one_class(tmp_path):
    bundle = build_data("digits", classes=[3], batch_size=16)
    assert bundle.class_names == ["3"] and sum(bundle.sizes.values()) == 183  # the 3s
    labels = np.concatenate([y for _, y in bundle.train_dataset])
    assert set(labels) == {0}
    root = make_class_folder(tmp_path / "photos", classes=("cats", "dogs", "frogs"), per_class=3)
    bundle = build_data("image_folder", root=str(root), classes=["frogs", "cats"], batch_size=2)
    assert bundle.class_names == ["frogs", "cats"] and bundle.sizes["train"] == 5


@pytest.mark.parametrize(
    "name, kwargs, expected",
    [
        (
            "cifar10",
            {"classes": ["frogs"]},
            "data.classes must name classes of data=cifar10: "
            "airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck",
        ),
        ("cifar10", {"classes": "frog"}, "data.classes must be a list"),
        ("digits", {"classes": [3, 3]}, "distinct"),
    ],
)
def test_unknown_class_is_refused_before_any_download(name, kwargs, expected):
    with pytest.raises(ConfigError, match="Received: data.classes=") as error:
        build_data(name, **kwargs)
    assert expected in str(error.value)


@pytest.mark.parametrize(
    "builder, shape, expected",
    [
        (vae, (7, 7, 1), "model=vae needs an even image height and width"),
        (dcgan, (16, 16, 3), "model=dcgan needs an even image height and width of at least 24"),
        (dcgan, (33, 33, 3), "data.image_size=[32,32]"),
    ],
)
def test_wrong_image_sizes_are_one_line_errors(builder, shape, expected):
    with pytest.raises(ConfigError, match=r"Received: input_shape=") as error:
        builder(input_shape=shape, task=GENERATIVE)
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_generative_task_has_no_loss_and_a_classifier_needs_two_classes():
    assert GENERATIVE.loss is None and GENERATIVE.metrics == []
    with pytest.raises(ConfigError, match="Received: trainer.loss='mae'"):
        Task("generative", loss_name="mae")
    with pytest.raises(ConfigError, match="A classifier needs at least 2 classes"):
        Task("multiclass", num_classes=1)
    with pytest.raises(ConfigError, match=r"Received: model.label_noise=1\.5"):
        dcgan(input_shape=(32, 32, 3), task=GENERATIVE, label_noise=1.5)


def test_terminate_on_nan_stops_a_gan_whose_g_loss_is_nan():
    """kerasrun's TerminateOnNaN (callbacks=terminate_on_nan) reads every training loss."""
    import keras

    from kerasrun.training.checkpoints import TerminateOnNaN

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    stopper = TerminateOnNaN()
    stopper.set_model(model)
    model.stop_training = False
    stopper.on_batch_end(0, {"d_loss": 0.7, "g_loss": 0.9, "val_loss": float("nan")})
    assert not model.stop_training  # a validation loss is not the batch's
    stopper.on_batch_end(1, {"d_loss": 0.7, "g_loss": float("nan")})
    assert model.stop_training
