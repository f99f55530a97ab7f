"""The book's generative models (chapter 8): the VAE of §8.4 and the DCGAN of §8.5.

Both are `keras.Model` subclasses with their own `train_step`, the Keras 3 way of the book's
custom loss layer (8.4) and its hand-written `train_on_batch` loop (8.5). They learn the
images alone: `train_step` takes `(images, labels)` from any kerasrun image dataset and drops
the labels. Like every kerasrun model they take raw float32 images in [0, 255] and rescale
them themselves (a `Rescaling` layer): the VAE to [0, 1] (its decoder ends in a sigmoid), the
DCGAN to [-1, 1] (its generator ends in a tanh; the book's printed code fed it [0, 1] reals).

`model.decoder` (VAE) and `model.generator` (DCGAN) make the images; `kerasrun.image_samples`
shows them each epoch. Both save to `.keras` and load in safe mode (`custom_objects()`).
"""

import functools
import math

from kerasrun.errors import check_int, check_number, check_rate, is_int, require


def vae(*, input_shape, task, latent_dim=2, kl_weight=5e-4, seed=None):
    """The book's convolutional VAE (listings 8-23 to 8-27) for images of `input_shape`.

    Encoder: Conv2D 32 → Conv2D 64 (stride 2) → Conv2D 64 → Conv2D 64 → Flatten →
    Dense(32) → `z_mean`, `z_log_var` (Dense(latent_dim) each). Decoder: Dense → Reshape →
    Conv2DTranspose 32 (stride 2) → Conv2D(channels, sigmoid). Loss: the mean binary
    cross-entropy of the pixels + `kl_weight` × the KL divergence (the book's 5e-4).

    Args:
        input_shape: `(height, width, channels)`; height and width even (the stride 2
            halves them and the Conv2DTranspose doubles them back).
        task: unused: a VAE learns the images, not the labels (`Task("generative")`).
        latent_dim: size of the latent space; 2 in the book (and for the latent grid).
        kl_weight: weight of the KL term.
        seed: seed of the sampling noise; `None` = drawn from Keras's global seed.

    Raises:
        ConfigError: a bad key, or an image size the encoder/decoder cannot round trip.
    """
    del task
    check_int("model.latent_dim", latent_dim, example=2, why="the book's 2")
    check_number(
        "model.kl_weight",
        kl_weight,
        minimum=0,
        example=5e-4,
        why="the weight of the KL term, the book's 5e-4; 0 = a plain autoencoder",
    )
    height, width, _ = _check_image(input_shape, model="vae")
    require(
        height % 2 == 0 and width % 2 == 0,
        "model=vae needs an even image height and width (its stride-2 convolution halves "
        "them, its Conv2DTranspose doubles them back). Received: input_shape="
        f"{tuple(input_shape)}. Set data.image_size to even sizes, e.g. data.image_size=[28,28].",
    )
    return _classes()["VAE"](
        image_shape=tuple(input_shape), latent_dim=latent_dim, kl_weight=kl_weight, seed=seed
    )


def dcgan(
    *,
    input_shape,
    task,
    latent_dim=32,
    discriminator_learning_rate=8e-4,
    generator_learning_rate=4e-4,
    clipvalue=1.0,
    label_noise=0.05,
    dropout=0.4,
    generator_filters=256,
    discriminator_filters=128,
    seed=None,
):
    """The book's DCGAN (listings 8-29 to 8-32) making images of `input_shape`.

    Generator: Dense(128·h/2·w/2) → Reshape → Conv2D 256 (5) → Conv2DTranspose 256 (4, stride
    2) → Conv2D 256 (5) ×2 → Conv2D(channels, 7, tanh), LeakyReLU between. Discriminator:
    Conv2D 128 (3) → Conv2D 128 (4, stride 2) ×3 → Flatten → Dropout → Dense(1, sigmoid).
    Labels as the book's code: generated = 1, real = 0, plus `label_noise` × U(0, 1).

    The optimizer group gives the optimizer (RMSprop, the book's) and its other settings;
    the discriminator's and the generator's are two copies of it with these learning rates
    and `clipvalue` (`optimizer.learning_rate` is not used).

    Args:
        input_shape: `(height, width, channels)` of the real images: even sizes, at least 24
            (the discriminator's valid convolutions); the book's 32x32x3.
        task: unused: a GAN learns the images, not the labels.
        latent_dim: size of the generator's input noise (the book's 32).
        discriminator_learning_rate: the book's 8e-4.
        generator_learning_rate: the book's 4e-4 (the adversarial model's).
        clipvalue: gradient clipping by value of both optimizers, or `None`.
        label_noise: the random amount added to the discriminator's labels.
        dropout: the Dropout rate before the discriminator's last layer (the book's 0.4).
        generator_filters: filters of the generator's convolutions (the book's 256).
        discriminator_filters: filters of the discriminator's convolutions (the book's 128).
        seed: seed of the latent noise and label noise; `None` = from the global seed.

    Raises:
        ConfigError: a bad key, or an image size the models cannot make.
    """
    del task
    check_int("model.latent_dim", latent_dim, example=32, why="the book's 32")
    for key, value, book in (
        ("discriminator_learning_rate", discriminator_learning_rate, 8e-4),
        ("generator_learning_rate", generator_learning_rate, 4e-4),
    ):
        check_number(f"model.{key}", value, above=0, example=book, why=f"the book's {book:g}")
    check_number(
        "model.clipvalue",
        clipvalue,
        above=0,
        allow_none=True,
        example=1.0,
        why="gradient clipping, null for none; the book's 1.0",
    )
    check_number(
        "model.label_noise",
        label_noise,
        minimum=0,
        below=1,
        example=0.05,
        why="the book's 0.05, 0 for none",
    )
    check_rate("model.dropout", dropout, example=0.4)
    check_int("model.generator_filters", generator_filters, example=256, why="the book's 256")
    check_int(
        "model.discriminator_filters", discriminator_filters, example=128, why="the book's 128"
    )
    height, width, _ = _check_image(input_shape, model="dcgan")
    require(
        height % 2 == 0 and width % 2 == 0 and _discriminator_side(min(height, width)) > 0,
        "model=dcgan needs an even image height and width of at least 24 (the generator "
        "doubles h/2 x w/2; the discriminator's four valid convolutions shrink the image). "
        f"Received: input_shape={tuple(input_shape)}. Set data.image_size, e.g. the book's "
        "data.image_size=[32,32].",
    )
    return _classes()["DCGAN"](
        image_shape=tuple(input_shape),
        latent_dim=latent_dim,
        discriminator_learning_rate=discriminator_learning_rate,
        generator_learning_rate=generator_learning_rate,
        clipvalue=clipvalue,
        label_noise=label_noise,
        dropout=dropout,
        generator_filters=generator_filters,
        discriminator_filters=discriminator_filters,
        seed=seed,
    )


def custom_objects():
    """The generative model classes, registered with Keras on first call.

    Returns:
        A dict for `keras.models.load_model(path, custom_objects=...)`.
    """
    return {f"kerasrun>{name}": cls for name, cls in _classes().items()}


def vae_encoder(image_shape, latent_dim):
    """Listing 8-23: images in [0, 1] → `[z_mean, z_log_var]`."""
    import keras
    from keras import layers

    inputs = keras.Input(image_shape, name="input_img")
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(inputs)
    x = layers.Conv2D(64, 3, padding="same", activation="relu", strides=(2, 2))(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu", name="before_flattening")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(32, activation="relu")(x)
    z_mean = layers.Dense(latent_dim, dtype="float32", name="z_mean")(x)
    z_log_var = layers.Dense(latent_dim, dtype="float32", name="z_log_var")(x)
    return keras.Model(inputs, [z_mean, z_log_var], name="encoder")


def vae_decoder(image_shape, latent_dim):
    """Listing 8-25: a latent point → an image in [0, 1] (float32 under mixed precision)."""
    import keras
    from keras import layers

    height, width, channels = image_shape
    shape_before_flattening = (height // 2, width // 2, 64)
    inputs = keras.Input((latent_dim,), name="z")
    x = layers.Dense(math.prod(shape_before_flattening), activation="relu")(inputs)
    x = layers.Reshape(shape_before_flattening)(x)
    x = layers.Conv2DTranspose(32, 3, padding="same", activation="relu", strides=(2, 2))(x)
    outputs = layers.Conv2D(channels, 3, padding="same", activation="sigmoid", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="decoder")


def dcgan_generator(image_shape, latent_dim, filters=256):
    """Listing 8-29: latent noise → an image in [-1, 1] (tanh)."""
    import keras
    from keras import layers

    height, width, channels = image_shape
    inputs = keras.Input((latent_dim,), name="z")
    x = layers.Dense(128 * (height // 2) * (width // 2))(inputs)
    x = layers.LeakyReLU()(x)  # the book's LeakyReLU(): negative slope 0.3, in Keras 2 and 3
    x = layers.Reshape((height // 2, width // 2, 128))(x)
    x = layers.Conv2D(filters, 5, padding="same")(x)
    x = layers.LeakyReLU()(x)
    x = layers.Conv2DTranspose(filters, 4, strides=2, padding="same")(x)
    x = layers.LeakyReLU()(x)
    for _ in range(2):
        x = layers.Conv2D(filters, 5, padding="same")(x)
        x = layers.LeakyReLU()(x)
    outputs = layers.Conv2D(channels, 7, activation="tanh", padding="same", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="generator")


def dcgan_discriminator(image_shape, dropout=0.4, filters=128):
    """Listing 8-30: an image in [-1, 1] → the probability that it is generated (label 1)."""
    import keras
    from keras import layers

    inputs = keras.Input(image_shape, name="image")
    x = layers.Conv2D(filters, 3)(inputs)
    x = layers.LeakyReLU()(x)
    for _ in range(3):
        x = layers.Conv2D(filters, 4, strides=2)(x)
        x = layers.LeakyReLU()(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(1, activation="sigmoid", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="discriminator")


def _discriminator_side(size):
    """The side of the discriminator's last feature map for images of side `size` (0: none)."""
    size -= 2  # Conv2D(128, 3), valid
    for _ in range(3):  # Conv2D(128, 4, strides=2), valid
        size = (size - 4) // 2 + 1 if size >= 4 else 0
    return max(size, 0)


def _check_image(input_shape, *, model):
    require(
        len(input_shape) == 3 and all(is_int(d) for d in input_shape),
        f"model={model} needs images (height, width, channels) of a fixed size. Received: "
        f"input_shape={tuple(input_shape)}. Use an image dataset: data=mnist, digits, cifar10 "
        "or image_folder.",
    )
    return input_shape


@functools.cache
def _classes():
    # Defined on first use: importing this module must not import TensorFlow.
    import keras
    import tensorflow as tf
    from keras import ops

    def images_of(data):
        """The images of a `(images, labels)` batch, or the batch itself."""
        return data[0] if isinstance(data, (tuple, list)) else data

    def per_replica(loss):
        """`loss`, a mean over this replica's batch, divided by the replicas in sync: the
        optimizer sums the replicas' gradients, so N replicas would step N times too far.
        Keras scales its own losses so (keras/src/losses/loss.py); metrics keep the mean."""
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return loss if replicas == 1 else loss * ops.cast(1 / replicas, loss.dtype)

    @keras.saving.register_keras_serializable(package="kerasrun")
    class VAE(keras.Model):
        """The book's VAE: `train_step` and `test_step` minimise the reconstruction + KL loss.

        `z = z_mean + exp(0.5 * z_log_var) * epsilon`: the usual form, the one its KL term
        assumes (z_log_var = log σ²); the book prints `exp(z_log_var)`. `model(images)`
        reconstructs them through `z_mean` (no noise).
        """

        def __init__(self, image_shape, latent_dim=2, kl_weight=5e-4, seed=None, **kwargs):
            super().__init__(**kwargs)
            self.image_shape = tuple(image_shape)
            self.latent_dim = latent_dim
            self.kl_weight = kl_weight
            self.seed = seed
            self.rescaling = keras.layers.Rescaling(1 / 255)
            self.encoder = vae_encoder(self.image_shape, latent_dim)
            self.decoder = vae_decoder(self.image_shape, latent_dim)
            self.seed_generator = keras.random.SeedGenerator(seed)
            self.trackers = {
                name: keras.metrics.Mean(name=name)
                for name in ("loss", "reconstruction_loss", "kl_loss")
            }
            self.built = True  # the encoder and decoder are functional models: built already

        @property
        def metrics(self):
            return list(self.trackers.values())

        def call(self, inputs, training=False):
            z_mean, _ = self.encoder(self.rescaling(inputs), training=training)
            return self.decoder(z_mean, training=training)

        def _vae_losses(self, images, training):
            x = ops.cast(self.rescaling(images), "float32")
            z_mean, z_log_var = self.encoder(x, training=training)
            epsilon = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
            z = z_mean + ops.exp(0.5 * z_log_var) * epsilon
            decoded = ops.cast(self.decoder(z, training=training), "float32")
            batch = ops.shape(x)[0]
            # Listing 8-26: binary_crossentropy of the flattened images, + 5e-4 × KL.
            xent = keras.losses.binary_crossentropy(
                ops.reshape(x, (batch, -1)), ops.reshape(decoded, (batch, -1))
            )
            kl = -self.kl_weight * ops.mean(
                1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1
            )
            return {
                "loss": ops.mean(xent + kl),
                "reconstruction_loss": ops.mean(xent),
                "kl_loss": ops.mean(kl),
            }

        def _track(self, losses):
            for name, value in losses.items():
                self.trackers[name].update_state(value)
            return {name: tracker.result() for name, tracker in self.trackers.items()}

        def train_step(self, data):
            images = images_of(data)
            with tf.GradientTape() as tape:
                losses = self._vae_losses(images, training=True)
                scaled = self.optimizer.scale_loss(per_replica(losses["loss"]))
            grads = tape.gradient(scaled, self.trainable_weights)
            self.optimizer.apply(grads, self.trainable_weights)
            return self._track(losses)

        def test_step(self, data):
            return self._track(self._vae_losses(images_of(data), training=False))

        def get_config(self):
            return {
                "name": self.name,
                "image_shape": list(self.image_shape),
                "latent_dim": self.latent_dim,
                "kl_weight": self.kl_weight,
                "seed": self.seed,
            }

    @keras.saving.register_keras_serializable(package="kerasrun")
    class DCGAN(keras.Model):
        """The book's GAN loop as a `train_step`: one discriminator step, one generator step.

        Generated images are labelled 1 and real ones 0 (the book's code), with label noise;
        the generator is trained to make the discriminator say 0 ("real"). `model(images)`
        is the discriminator's probability that each image is generated.
        """

        # No defaults: `dcgan` gives them (its signature is the schema), `get_config` saves them.
        def __init__(
            self,
            image_shape,
            *,
            latent_dim,
            discriminator_learning_rate,
            generator_learning_rate,
            clipvalue,
            label_noise,
            dropout,
            generator_filters,
            discriminator_filters,
            seed=None,
            **kwargs,
        ):
            super().__init__(**kwargs)
            self.image_shape = tuple(image_shape)
            self.latent_dim = latent_dim
            self.discriminator_learning_rate = discriminator_learning_rate
            self.generator_learning_rate = generator_learning_rate
            self.clipvalue = clipvalue
            self.label_noise = label_noise
            self.dropout = dropout
            self.generator_filters = generator_filters
            self.discriminator_filters = discriminator_filters
            self.seed = seed
            self.rescaling = keras.layers.Rescaling(1 / 127.5, offset=-1)  # [0, 255] → [-1, 1]
            self.generator = dcgan_generator(self.image_shape, latent_dim, generator_filters)
            self.discriminator = dcgan_discriminator(
                self.image_shape, dropout, discriminator_filters
            )
            self.seed_generator = keras.random.SeedGenerator(seed)
            self.trackers = {name: keras.metrics.Mean(name=name) for name in ("d_loss", "g_loss")}
            self.g_optimizer = None
            self.built = True  # the generator and discriminator are built already

        @property
        def metrics(self):
            return list(self.trackers.values())

        def call(self, inputs, training=False):
            return self.discriminator(self.rescaling(inputs), training=training)

        def compile(self, optimizer="rmsprop", loss=None, metrics=None, **kwargs):
            """Two copies of `optimizer`: the discriminator's (`model.optimizer`) and the
            generator's (`model.g_optimizer`), each with its learning rate and `clipvalue`.
            The losses are the model's own: `loss` and `metrics` must be empty."""
            if loss is not None or metrics:
                raise ValueError(
                    f"DCGAN computes its own losses. Received: loss={loss}, metrics={metrics}."
                )
            template = keras.optimizers.get(optimizer)
            if hasattr(template, "inner_optimizer"):  # a saved LossScaleOptimizer
                template = template.inner_optimizer

            def copy(learning_rate, name):
                config = template.get_config()
                config.update(learning_rate=learning_rate, clipvalue=self.clipvalue, name=name)
                return type(template).from_config(config)

            super().compile(
                optimizer=copy(self.discriminator_learning_rate, "discriminator_optimizer"),
                **kwargs,
            )
            self.g_optimizer = copy(self.generator_learning_rate, "generator_optimizer")
            if keras.config.dtype_policy().name == "mixed_float16":  # as compile() does for D
                self.g_optimizer = keras.optimizers.LossScaleOptimizer(self.g_optimizer)
            # Built now, each on its own model's weights: a restored backup then matches.
            self.optimizer.build(self.discriminator.trainable_variables)
            self.g_optimizer.build(self.generator.trainable_variables)

        def compile_from_config(self, config):
            self.compile(**keras.saving.deserialize_keras_object(config))

        def _gan_step(self, real_images, training):
            real = ops.cast(self.rescaling(real_images), "float32")
            batch = ops.shape(real)[0]
            # 1. The discriminator: generated (1) and real (0) images, noisy labels.
            z = keras.random.normal((batch, self.latent_dim), seed=self.seed_generator)
            generated = ops.cast(self.generator(z, training=training), "float32")
            images = ops.concatenate([generated, real], axis=0)
            labels = ops.concatenate([ops.ones((batch, 1)), ops.zeros((batch, 1))], axis=0)
            labels += self.label_noise * keras.random.uniform(
                ops.shape(labels), seed=self.seed_generator
            )
            with tf.GradientTape() as tape:
                predictions = self.discriminator(images, training=training)
                d_loss = ops.mean(keras.losses.binary_crossentropy(labels, predictions))
                scaled = self.optimizer.scale_loss(per_replica(d_loss))
            if training:
                weights = self.discriminator.trainable_weights
                self.optimizer.apply(tape.gradient(scaled, weights), weights)
            # 2. The generator: new noise, "misleading targets" (all real, 0).
            z = keras.random.normal((batch, self.latent_dim), seed=self.seed_generator)
            with tf.GradientTape() as tape:
                predictions = self.discriminator(
                    self.generator(z, training=training), training=training
                )
                g_loss = ops.mean(
                    keras.losses.binary_crossentropy(ops.zeros((batch, 1)), predictions)
                )
                scaled = self.g_optimizer.scale_loss(per_replica(g_loss)) if training else g_loss
            if training:
                weights = self.generator.trainable_weights
                self.g_optimizer.apply(tape.gradient(scaled, weights), weights)
            for name, value in (("d_loss", d_loss), ("g_loss", g_loss)):
                self.trackers[name].update_state(value)
            return {name: tracker.result() for name, tracker in self.trackers.items()}

        def train_step(self, data):
            return self._gan_step(images_of(data), training=True)

        def test_step(self, data):
            return self._gan_step(images_of(data), training=False)

        def get_config(self):
            return {
                "name": self.name,
                "image_shape": list(self.image_shape),
                "latent_dim": self.latent_dim,
                "discriminator_learning_rate": self.discriminator_learning_rate,
                "generator_learning_rate": self.generator_learning_rate,
                "clipvalue": self.clipvalue,
                "label_noise": self.label_noise,
                "dropout": self.dropout,
                "generator_filters": self.generator_filters,
                "discriminator_filters": self.discriminator_filters,
                "seed": self.seed,
            }

    return {"VAE": VAE, "DCGAN": DCGAN}


__all__ = [
    "custom_objects",
    "dcgan",
    "dcgan_discriminator",
    "dcgan_generator",
    "vae",
    "vae_decoder",
    "vae_encoder",
]
