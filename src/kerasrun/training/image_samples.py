"""What the book's generative image models make, after every epoch (samplers of `samples.py`).

- `vae`: the book's listing 8-28, the decoded 15x15 grid of latent points
  `norm.ppf(linspace(0.05, 0.95, 15))` in both latent dimensions (a map of the latent space).
- `dcgan`: the generator's images of one fixed batch of latent points, the same every epoch,
  so that epochs compare (the book saved one generated image every 100 steps).

Each epoch gives one tiled uint8 image: a `tf.summary.image` in TensorBoard's image tab
(`<run>/tensorboard/samples`, step = the epoch, counted from 0 like Keras's scalars) and a PNG
`<run>/samples/epoch_001.png` (epochs counted from 1, as the log shows them), beside the
TensorBoard folder. Without the tensorboard logger (`logger=[]`) nothing is written.
"""

import functools
import logging
from pathlib import Path
from statistics import NormalDist

from kerasrun.errors import check_int, require
from kerasrun.pictures import save_png, tile, to_uint8
from kerasrun.rundir.layout import SAMPLES

log = logging.getLogger("kerasrun")

MAX_COUNT = 64  # dcgan's images, vae's grid points a side: more make a grid no one can read


def latent_grid_points(grid_size=15):
    """Listing 8-28's points: `norm.ppf(np.linspace(0.05, 0.95, n))` in each dimension.

    Returns:
        A float32 array `(n * n, 2)`: row `i`, column `j` of the grid is `(x_j, y_i)`.
    """
    import numpy as np

    steps = np.linspace(0.05, 0.95, grid_size)
    axis = np.array([NormalDist().inv_cdf(p) for p in steps], "float32")
    return np.array([(x, y) for y in axis for x in axis], "float32")


def vae_latent_grid(model, grid_size=15):
    """The decoded grid of listing 8-28 as one uint8 image `(n*h, n*w, c)`.

    A latent space of more than 2 dimensions is walked in its first two (the others 0).
    """
    import numpy as np

    points = latent_grid_points(grid_size)
    z = np.zeros((len(points), model.latent_dim), "float32")
    z[:, : min(2, model.latent_dim)] = points[:, : model.latent_dim]
    decoded = np.asarray(model.decoder(z, training=False))  # in [0, 1] (sigmoid)
    return tile(list(to_uint8(decoded * 255)), per_row=grid_size, margin=0)


def dcgan_generated(model, z):
    """The generator's images of the latent points `z`, tiled: uint8 `(rows*h, cols*w, c)`."""
    import numpy as np

    generated = np.asarray(model.generator(z, training=False))  # in [-1, 1] (tanh)
    return tile(list(to_uint8((generated + 1) * 127.5)))


def vae_sampler(*, data, log_dir, grid_size=15):
    """The `vae` sampler: the decoded latent grid each epoch.

    Args:
        data: the run's `DataBundle` (unused: the grid needs no data).
        log_dir: TensorBoard's folder (`<run>/tensorboard`), or `None`.
        grid_size: points per side of the grid (the book's 15).
    """
    del data
    _check_count("grid_size", grid_size, example=15)
    return _callback_class()(
        log_dir,
        tag="latent_grid",
        make=lambda model: vae_latent_grid(model, grid_size),
    )


def dcgan_sampler(*, data, log_dir, count=16, seed=0):
    """The `dcgan` sampler: `count` generated images of fixed latent points each epoch.

    Args:
        data: the run's `DataBundle` (unused).
        log_dir: TensorBoard's folder (`<run>/tensorboard`), or `None`.
        count: images per epoch, tiled in a square-ish grid.
        seed: seed of the fixed latent points.
    """
    del data
    _check_count("count", count, example=16)
    # NumPy's generators take no negative seed: refused here, not at the end of epoch 1.
    check_int("model.samples.seed", seed, minimum=0, example=0)

    @functools.cache
    def points(latent_dim):  # drawn once: every epoch shows the same latent points
        import numpy as np

        rng = np.random.default_rng(seed)
        return rng.normal(size=(count, latent_dim)).astype("float32")

    return _callback_class()(
        log_dir,
        tag="generated",
        make=lambda model: dcgan_generated(model, points(model.latent_dim)),
    )


def _check_count(key, value, *, example):
    """Raises a `ConfigError` unless `model.samples.<key>` is an integer from 1 to `MAX_COUNT`."""
    key = f"model.samples.{key}"
    check_int(key, value, example=example, why=f"at most {MAX_COUNT}")
    require(
        value <= MAX_COUNT,
        f"{key} must be an integer from 1 to {MAX_COUNT}. "
        f"Received: {key}={value!r}. Set e.g. {key}={example}.",
    )


@functools.cache
def _callback_class():
    # Defined on first use: `train --help` must not import TensorFlow.
    import keras

    class ImageSamples(keras.callbacks.Callback):
        """Writes `make(model)` (a uint8 image) to TensorBoard and a PNG after every epoch.

        Args:
            log_dir: TensorBoard's folder; the images go to its `samples/` run and the PNGs
                to `samples/` beside it. `None`: nothing is written.
            tag: the image's TensorBoard tag.
            make: `make(model)` → uint8 `(h, w, c)`.
        """

        def __init__(self, log_dir, *, tag, make):
            super().__init__()
            self.log_dir = Path(log_dir) if log_dir else None
            self.tag, self.make = tag, make
            self.writer = None

        def on_train_begin(self, logs=None):
            if self.log_dir is None:
                log.warning("No tensorboard logger: the generated images are not saved.")
                return
            import tensorflow as tf

            self.writer = tf.summary.create_file_writer(str(self.log_dir / SAMPLES))

        def on_epoch_end(self, epoch, logs=None):
            if self.writer is None:
                return
            import tensorflow as tf

            image = self.make(self.model)
            with self.writer.as_default():
                tf.summary.image(self.tag, image[None], step=epoch)
            self.writer.flush()
            png = save_png(image, self.log_dir.parent / SAMPLES / f"epoch_{epoch + 1:03d}.png")
            log.info(f"Samples of epoch {epoch + 1}: {png} (TensorBoard: images, {self.tag})")

        def on_train_end(self, logs=None):
            if self.writer is not None:
                self.writer.close()
                self.writer = None

    return ImageSamples


__all__ = [
    "dcgan_generated",
    "dcgan_sampler",
    "latent_grid_points",
    "vae_latent_grid",
    "vae_sampler",
]
