"""`data.augment`: the random transforms of the book's `ImageDataGenerator`, in `tf.data`.

The keys mean what the Keras layers of the same name mean, with their random
distributions: `flip` is `RandomFlip`, `rotation` `RandomRotation`, `zoom` `RandomZoom`,
`translation` `RandomTranslation`, `shear` `RandomShear`, `contrast` `RandomContrast`
(applied in that order, "nearest" fill, bilinear interpolation). Two things differ from
stacking those layers, both for speed (docs/pipeline.md):

- The geometric transforms are composed into one affine matrix per image and applied in
  one `keras.ops.image.affine_transform`, as the book's `ImageDataGenerator` did, instead
  of one pass over the batch per layer (and one more bilinear blur each).
- The random numbers come from a seed given with each batch (`augment_batches`), not from
  a layer's seed generator, so batches can be augmented in parallel and a seeded run still
  gets the same images.

TensorFlow and Keras are imported inside the functions: checking a config must not pay
for them.
"""

import math

from kerasrun.errors import UnknownKey, did_you_mean, is_number, require

FLIP_MODES = ("horizontal", "vertical", "horizontal_and_vertical")
# The book's ImageDataGenerator settings (5.2.5) in these keys:
#   augment: {rotation: 0.111, translation: 0.2, shear: 0.2, zoom: 0.2, flip: horizontal}
# rotation is a fraction of a full turn (40° / 360° = 0.111), as RandomRotation's factor.
# The book's shear_range=0.2 was an angle in radians (Keras 2.0; degrees since the end of 2017,
# keras-team/keras#8868); RandomShear's factor is the shift as a fraction of the image, i.e.
# tan(angle), and tan(0.2) = 0.203, so `shear: 0.2` is the book's shear.
AUGMENT_KEYS = ("flip", "rotation", "zoom", "translation", "shear", "contrast")


def check_augment(augment):
    """The active augmentation keys of `augment` as a dict (empty = off), or a `ConfigError`.

    Keys (all optional, 0/null = that transform off): `flip` (one of `FLIP_MODES`),
    `rotation` (fraction of a full turn), `zoom`, `translation` and `shear` (a fraction, or
    [height, width] / [x, y] fractions), `contrast` (a fraction).
    """
    if not augment:
        return {}
    require(
        isinstance(augment, dict),
        f"data.augment must be a mapping of {', '.join(AUGMENT_KEYS)} (or null for none). "
        f"Received: data.augment={augment!r}. Set e.g. data.augment.flip=horizontal.",
    )
    for key, value in augment.items():
        if key not in AUGMENT_KEYS:
            raise UnknownKey(
                f"Unknown augmentation data.augment.{key}. Allowed keys: "
                f"{', '.join(AUGMENT_KEYS)}."
                f"{did_you_mean(key, AUGMENT_KEYS, prefix='data.augment.')} "
                f"Received: data.augment.{key}={value!r}. Fix the spelling or remove it."
            )
        if key == "flip":
            require(
                value in (*FLIP_MODES, None, False),
                f"data.augment.flip must be one of {', '.join(FLIP_MODES)} or null. "
                f"Received: data.augment.flip={value!r}. Set e.g. data.augment.flip=horizontal.",
            )
        else:
            _check_factor(value, key, pair=key in ("translation", "shear"))
    return {k: v for k, v in augment.items() if v not in (None, False, 0, [0, 0], (0, 0))}


def _check_factor(value, key, pair):
    def ok(v):
        return is_number(v) and 0 <= v <= 1

    valid = value is None or ok(value)
    if pair and isinstance(value, (list, tuple)):
        valid = len(value) == 2 and all(ok(v) for v in value)
    shape = "a fraction in [0, 1] or a [height, width] pair" if pair else "a fraction in [0, 1]"
    require(
        valid,
        f"data.augment.{key} must be {shape}. Received: data.augment.{key}={value!r}. "
        f"Set e.g. data.augment.{key}=0.2.",
    )


def build_augmenter(augment):
    """An `Augmentation` for the `augment` dict of `data.augment`, or `None` (off)."""
    augment = check_augment(augment)
    return Augmentation(**augment) if augment else None


def _pair(value):
    return tuple(value) if isinstance(value, (list, tuple)) else (value, value)


class Augmentation:
    """Random flips, rotations, zooms, translations, shears and contrast changes.

    Each image of a batch gets its own random values, drawn from the batch's `seed`:
    the same seed gives the same images.

    Args:
        flip: `"horizontal"`, `"vertical"` or `"horizontal_and_vertical"` (both at
            once, as `RandomFlip`), each image with probability 1/2; `None` for none.
        rotation: the largest angle, as a fraction of a full turn (`0.111` = ±40°).
        zoom: the largest zoom in or out, as a fraction (`0.2`: 80% to 120%).
        translation: the largest shift, as a fraction of the height and width, or a
            `(height, width)` pair.
        shear: the largest shear, as the shift per pixel (`tan` of the angle), or an
            `(x, y)` pair; the sign is random, the same for x and y (as `RandomShear`).
        contrast: the largest contrast change, as a fraction (`0.3`: 70% to 130%);
            images stay in [0, 255].

    Example:

    >>> augmentation = Augmentation(flip="horizontal", rotation=0.111)
    >>> augmented = augmentation(images, seed=tf.constant([0, 1], "int64"))
    """

    def __init__(self, flip=None, rotation=0, zoom=0, translation=0, shear=0, contrast=0):
        self.flip = flip or None
        self.rotation = rotation or 0
        self.zoom = zoom or 0
        self.translation = _pair(translation or 0)
        self.shear = _pair(shear or 0)
        self.contrast = contrast or 0

    def sample(self, batch_size, seed):
        """The random values of one batch: a dict of `(batch_size,)` float32 tensors."""
        import tensorflow as tf

        seeds = iter(tf.unstack(tf.random.experimental.stateless_split(seed, num=9)))  # 1 per value

        def uniform(low, high):
            # a seed per quantity: adding a transform does not change the others' values
            return tf.random.stateless_uniform((batch_size,), next(seeds), low, high)

        return {
            "flip": tf.cast(uniform(0.0, 1.0) <= 0.5, tf.float32),  # as RandomFlip
            "angle": uniform(-self.rotation, self.rotation) * 2 * math.pi,
            "zoom": 1.0 + uniform(-self.zoom, self.zoom),
            "shift_y": uniform(-self.translation[0], self.translation[0]),
            "shift_x": uniform(-self.translation[1], self.translation[1]),
            "shear_x": uniform(-self.shear[0], self.shear[0]),
            "shear_y": uniform(-self.shear[1], self.shear[1]),
            # RandomShear flips the sign of both shears together, half of the time
            "shear_sign": tf.where(uniform(0.0, 1.0) > 0.5, -1.0, 1.0),
            "contrast": 1.0 + uniform(-self.contrast, self.contrast),
        }

    def matrices(self, values, height, width):
        """`(batch, 3, 3)` matrices mapping output pixels (x, y, 1) to input pixels.

        Flip, rotation, zoom, translation, shear: the product of the matrices the Keras
        layers use, in the order the layers would be applied (each maps its output to its
        input, so the first layer's matrix is on the left).
        """
        import tensorflow as tf

        w, h = tf.cast(width, tf.float32), tf.cast(height, tf.float32)
        cx, cy = (w - 1) / 2, (h - 1) / 2
        zero, one = tf.zeros_like(values["angle"]), tf.ones_like(values["angle"])

        def matrix(a0, a1, a2, b0, b1, b2):
            return tf.stack(
                [tf.stack([a0, a1, a2], -1), tf.stack([b0, b1, b2], -1),
                 tf.stack([zero, zero, one], -1)],
                axis=1,
            )  # fmt: skip

        flipped = values["flip"]  # 1 = flip: x → (w - 1) - x (and/or the same for y)
        fx = flipped if self.flip in ("horizontal", "horizontal_and_vertical") else zero
        fy = flipped if self.flip in ("vertical", "horizontal_and_vertical") else zero
        flip = matrix(1 - 2 * fx, zero, fx * (w - 1), zero, 1 - 2 * fy, fy * (h - 1))
        cos, sin = tf.cos(values["angle"]), tf.sin(values["angle"])
        rotation = matrix(
            cos, -sin, cx - cx * cos + cy * sin, sin, cos, cy - cx * sin - cy * cos
        )  # about the centre, as RandomRotation
        z = values["zoom"]
        zoom = matrix(z, zero, cx * (1 - z), zero, z, cy * (1 - z))  # about the centre
        translation = matrix(one, zero, -values["shift_x"] * w, zero, one, -values["shift_y"] * h)
        sign = values["shear_sign"]
        shear = matrix(one, values["shear_x"] * sign, zero, values["shear_y"] * sign, one, zero)
        return flip @ rotation @ zoom @ translation @ shear

    @property
    def geometric(self):
        """Whether any transform moves pixels (else only the contrast changes)."""
        return bool(self.flip or self.rotation or self.zoom or any(self.translation + self.shear))

    def __call__(self, images, seed):
        """Augments a float32 batch `(batch, height, width, channels)` in [0, 255]."""
        import keras
        import tensorflow as tf

        shape = tf.shape(images)
        values = self.sample(shape[0], seed)
        if self.geometric:
            transform = tf.reshape(self.matrices(values, shape[1], shape[2]), (-1, 9))[:, :8]
            images = keras.ops.image.affine_transform(
                images,
                transform,
                interpolation="bilinear",
                fill_mode="nearest",
                data_format="channels_last",  # the pipeline's, whatever keras.json says
            )
        if self.contrast:  # as RandomContrast: around each image's mean, per channel
            mean = tf.reduce_mean(images, axis=(1, 2), keepdims=True)
            factor = tf.reshape(values["contrast"], (-1, 1, 1, 1))
            images = tf.clip_by_value((images - mean) * factor + mean, 0.0, 255.0)
        return images


def augment_batches(ds, augmentation, seed):
    """`ds` of `(images, labels)` batches with `augmentation` applied, in parallel.

    Each batch gets a seed from `tf.data.Dataset.random`: different in every epoch
    (`rerandomize_each_iteration`), the same in every run with the same `seed`, and fixed
    per batch before the parallel map, so the order in which batches are augmented does
    not change their images.
    """
    import tensorflow as tf

    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

    def augment(batch, batch_seed):
        images, labels = batch
        return augmentation(images, batch_seed), labels

    return tf.data.Dataset.zip(ds, seeds).map(augment, num_parallel_calls=tf.data.AUTOTUNE)
