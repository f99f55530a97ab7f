"""data.augment: one affine transform per image that means what the Keras layers mean."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import collect
from kerasrun.data import build_data
from kerasrun.data.augment import Augmentation, build_augmenter
from kerasrun.data.pipeline import finish

NEAREST = {"fill_mode": "nearest"}
IDENTITY = {
    "flip": 0.0,
    "angle": 0.0,
    "zoom": 1.0,
    "shift_y": 0.0,
    "shift_x": 0.0,
    "shear_x": 0.0,
    "shear_y": 0.0,
    "shear_sign": 1.0,
    "contrast": 1.0,
}


def smooth_images(batch=3, height=40, width=48):
    """Float32 images whose values change slowly: one bilinear pass more or less is ~0."""
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([128 + 100 * np.sin(x / 7) * np.cos(y / 9), x * 5.0, y * 6.0], axis=-1).astype(
        "float32"
    )
    return np.repeat(image[None], batch, axis=0)


def warp(augmentation, images, **values):
    """`augmentation`'s geometric transform with the random values fixed to `values`."""
    batch, height, width = images.shape[:3]
    fixed = {k: tf.fill([batch], float(values.get(k, v))) for k, v in IDENTITY.items()}
    transform = tf.reshape(augmentation.matrices(fixed, height, width), (-1, 9))[:, :8]
    return keras.ops.image.affine_transform(
        images, transform, interpolation="bilinear", **NEAREST
    ).numpy()


# Each transform with its random value pinned, against the Keras layer pinned to the same value
# (a (low, high) factor with low == high).
@pytest.mark.parametrize(
    "augmentation, values, layer",
    [
        (
            Augmentation(rotation=0.1),
            {"angle": 0.1 * 2 * math.pi},
            lambda: keras.layers.RandomRotation((0.1, 0.1), **NEAREST),
        ),
        (
            Augmentation(zoom=0.2),
            {"zoom": 1.2},
            lambda: keras.layers.RandomZoom((0.2, 0.2), **NEAREST),
        ),
        (
            Augmentation(zoom=0.3),
            {"zoom": 0.7},
            lambda: keras.layers.RandomZoom((-0.3, -0.3), **NEAREST),
        ),
        (
            Augmentation(translation=[0.1, 0.2]),
            {"shift_y": 0.1, "shift_x": -0.2},
            lambda: keras.layers.RandomTranslation((0.1, 0.1), (-0.2, -0.2), **NEAREST),
        ),
    ],
    ids=["rotation", "zoom in", "zoom out", "translation"],
)
def test_each_transform_is_the_keras_layers(augmentation, values, layer):
    images = smooth_images()
    expected = layer()(images, training=True).numpy()
    np.testing.assert_allclose(warp(augmentation, images, **values), expected, atol=1e-3)


def test_shear_is_random_shears_with_its_random_sign():
    images = smooth_images(batch=8)
    layer = keras.layers.RandomShear((0.15, 0.15), (0.1, 0.1), seed=0, **NEAREST)
    expected = layer(images, training=True).numpy()  # the sign differs per image
    shear = Augmentation(shear=[0.15, 0.1])
    both = [warp(shear, images, shear_x=0.15, shear_y=0.1, shear_sign=s) for s in (1, -1)]
    errors = np.stack([np.abs(b - expected).max(axis=(1, 2, 3)) for b in both])
    assert (errors.min(axis=0) < 1e-3).all()  # each image is one of the two signs...
    assert (errors.max(axis=0) > 10).all()  # ...which are different images


@pytest.mark.parametrize(
    "mode, flipped",
    [
        ("horizontal", lambda x: x[:, :, ::-1]),
        ("vertical", lambda x: x[:, ::-1]),
        ("horizontal_and_vertical", lambda x: x[:, ::-1, ::-1]),  # both at once, as RandomFlip
    ],
)
def test_flip(mode, flipped):
    images = smooth_images()
    augmentation = Augmentation(flip=mode)
    np.testing.assert_allclose(warp(augmentation, images, flip=1), flipped(images), atol=1e-3)
    np.testing.assert_allclose(warp(augmentation, images, flip=0), images, atol=1e-3)


def test_transforms_compose_in_the_order_of_the_keras_layers():
    # Rotation, then translation (they do not commute): the one fused warp equals the two
    # layers one after the other, away from the filled borders.
    images = smooth_images()
    rotation = keras.layers.RandomRotation((0.05, 0.05), **NEAREST)
    translation = keras.layers.RandomTranslation((0.1, 0.1), (0.1, 0.1), **NEAREST)
    fused = warp(
        Augmentation(rotation=0.05, translation=0.1),
        images,
        angle=0.05 * 2 * math.pi,
        shift_y=0.1,
        shift_x=0.1,
    )
    inside = (slice(None), slice(12, 28), slice(14, 34))
    in_order = translation(rotation(images)).numpy()
    reversed_order = rotation(translation(images)).numpy()
    assert np.abs(fused - in_order)[inside].max() < 0.5  # one bilinear pass instead of two
    assert np.abs(fused - reversed_order)[inside].max() > 5


def test_random_values_have_the_keras_ranges():
    augmentation = Augmentation(
        flip="horizontal", rotation=0.111, zoom=0.2, translation=[0.1, 0.3], shear=0.2,
        contrast=0.3,
    )  # fmt: skip
    values = {k: v.numpy() for k, v in augmentation.sample(20_000, tf.constant([3, 4])).items()}
    for key, low, high in [
        ("angle", -0.111 * 2 * math.pi, 0.111 * 2 * math.pi),  # ±40°
        ("zoom", 0.8, 1.2),
        ("shift_y", -0.1, 0.1),
        ("shift_x", -0.3, 0.3),
        ("shear_x", -0.2, 0.2),
        ("contrast", 0.7, 1.3),
    ]:
        assert low <= values[key].min() < low + 0.01 * (high - low), key  # uniform over
        assert high - 0.01 * (high - low) < values[key].max() <= high, key  # the whole range
    assert 0.48 < values["flip"].mean() < 0.52
    assert 0.48 < (values["shear_sign"] < 0).mean() < 0.52
    # independent draws: flipping says nothing about the angle
    assert abs(np.corrcoef(values["flip"], values["angle"])[0, 1]) < 0.03


def test_contrast_is_random_contrast():
    images = smooth_images()
    out = Augmentation(contrast=0.5)(images, tf.constant([1, 2])).numpy()
    mean = images.mean(axis=(1, 2), keepdims=True)
    factor = ((out - mean) / (images - mean))[:, 5:10, 5:10]  # where nothing is clipped
    per_image = factor.reshape(len(images), -1)
    np.testing.assert_allclose(
        per_image, np.broadcast_to(per_image[:, :1], per_image.shape), rtol=1e-3
    )  # one factor per image
    assert ((0.5 <= per_image) & (per_image <= 1.5)).all()
    assert 0 <= out.min() and out.max() <= 255


def test_each_epoch_is_augmented_anew_and_a_seeded_run_again_the_same():
    # Identical images: what differs between batches, epochs and runs is the augmentation.
    image = smooth_images(batch=1, height=24, width=24)[0].astype("uint8")
    book = {"flip": "horizontal", "rotation": 0.111, "zoom": 0.2, "translation": 0.2}

    def run(seed):
        ds = tf.data.Dataset.from_tensor_slices((np.stack([image] * 64), np.zeros(64, "int32")))
        ds = finish(
            ds, batch_size=8, training=True, augmenter=build_augmenter(book), seed=seed, size=64
        )
        return [np.concatenate([x.numpy() for x, _ in ds]) for _ in range(2)]  # two epochs

    first, second = run(seed=1)
    assert len({a.tobytes() for a in first}) == 64  # every image its own transform
    assert not np.allclose(first, second)
    again = run(seed=1)
    np.testing.assert_array_equal(first, again[0])  # though augmented in parallel
    np.testing.assert_array_equal(second, again[1])
    assert not np.allclose(first, run(seed=2)[0])


def test_augmentation_changes_training_images_only():
    aug = {"flip": "horizontal", "rotation": 0.111, "zoom": 0.2, "translation": 0.2}
    plain_bundle = build_data("digits", seed=3)
    augmented = build_data("digits", augment=aug, seed=3)
    (x0, y0), (x1, y1) = collect(plain_bundle.train_dataset), collect(augmented.train_dataset)
    assert np.array_equal(y0, y1)  # same seeded shuffle: the same examples, in the same order
    assert not np.allclose(x0, x1)
    assert 0 <= x1.min() and x1.max() <= 255 and x1.dtype == np.float32
    for split in ("validation_dataset", "test_dataset"):
        a, b = collect(getattr(plain_bundle, split)), collect(getattr(augmented, split))
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_augmentation_is_seeded():
    aug = {"rotation": 0.1, "contrast": 0.3, "shear": [0.1, 0.2]}

    def images(seed, augment=None):
        return collect(build_data("digits", augment=augment, seed=seed).train_dataset)[0]

    first, plain = images(5, aug), images(5)
    np.testing.assert_array_equal(first, images(5, aug))  # the same seed: the same images
    # The same seed shuffles alike: image i is plain[i] augmented, and nearly every one changed.
    assert (np.abs(first - plain).max(axis=(1, 2, 3)) > 1).mean() > 0.95
    # Another seed splits and shuffles otherwise: compare each digit in both training sets (the
    # training images are all distinct) with itself.
    other, other_plain = images(6, aug), images(6)
    where = {image.tobytes(): i for i, image in enumerate(other_plain)}
    mine = [i for i, image in enumerate(plain) if image.tobytes() in where]
    theirs = [where[plain[i].tobytes()] for i in mine]
    assert len(mine) > 500
    assert (np.abs(first[mine] - other[theirs]).max(axis=(1, 2, 3)) > 1).mean() > 0.95
    # (The other order alone would change them: that the augmentation's own seed follows
    # `seed`, with the order held fixed, is test_each_epoch_is_augmented_anew...'s last line.)


def test_images_stay_float32_under_mixed_precision():
    import keras

    keras.config.set_dtype_policy("mixed_float16")  # train.py sets it before building data
    try:
        bundle = build_data("digits", augment={"rotation": 0.1, "contrast": 0.2}, seed=0)
        images, _ = next(iter(bundle.train_dataset))
    finally:
        keras.config.set_dtype_policy("float32")
    assert images.dtype == "float32"
