"""Pictures from arrays: colormaps, grids of channels, heatmap overlays, PNGs and TensorBoard.

Shared by `visualize`'s kinds (`kerasrun.vision`: the book's 5.4, DeepDream, style transfer,
Grad-CAM frames) and the generative models' samples (`kerasrun.training.image_samples`);
NumPy, Pillow and TensorFlow are imported inside the functions, so importing this costs
nothing.
"""

import math
from pathlib import Path

from kerasrun.errors import ConfigError

IMAGES_PER_ROW = 16  # the book's activation grids
HEATMAP_INTENSITY = 0.4  # the book's `heatmap * 0.4 + img`
GRID_MARGIN = 1  # activations: pixels between channels


def _colormap(stops):
    """A 256-entry RGB lookup table, linear between equally spaced colour `stops`."""
    import numpy as np

    stops = np.asarray(stops, dtype="float64")
    positions = np.linspace(0, 1, len(stops))
    x = np.linspace(0, 1, 256)
    table = np.stack([np.interp(x, positions, stops[:, i]) for i in range(3)], axis=-1)
    return np.round(table).astype("uint8")


# matplotlib's viridis (the book's activation plots) and OpenCV's COLORMAP_JET (its heatmaps),
# as a few of their colours: close enough to read, without matplotlib or OpenCV.
VIRIDIS = ((68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37))
JET = ((0, 0, 128), (0, 0, 255), (0, 255, 255), (255, 255, 0), (255, 0, 0), (128, 0, 0))


def colorize(values, stops):
    """`values` in [0, 1] (any shape) as uint8 RGB through the colormap `stops`."""
    import numpy as np

    index = np.clip(np.round(np.asarray(values) * 255), 0, 255).astype("int64")
    return _colormap(stops)[index]


def channel_grid(feature):
    """A layer output `(h, w, channels)` as one viridis image: 16 channels a row.

    Each channel is normalised on its own as in the book (minus its mean, divided by its
    std, × 64 + 128, clipped to [0, 255]); a channel that is constant comes out mid-gray.
    """
    import numpy as np

    x = feature - feature.mean(axis=(0, 1))
    x = x / (feature.std(axis=(0, 1)) + 1e-5) * 64 + 128
    x = np.clip(x, 0, 255) / 255
    return tile([colorize(x[..., i], VIRIDIS) for i in range(x.shape[-1])], IMAGES_PER_ROW)


def tile(images, per_row=None, margin=GRID_MARGIN):
    """Equal-size uint8 images `(h, w, c)` in a grid, `per_row` a row (default: square-ish).

    The grid is `rows*h + (rows-1)*margin` by `cols*w + (cols-1)*margin`, white between.
    """
    import numpy as np

    count = len(images)
    cols = min(per_row or math.ceil(math.sqrt(count)), count)
    rows = math.ceil(count / cols)
    h, w, c = images[0].shape
    grid = np.full((rows * h + (rows - 1) * margin, cols * w + (cols - 1) * margin, c), 255)
    for i, image in enumerate(images):
        top, left = (i // cols) * (h + margin), (i % cols) * (w + margin)
        grid[top : top + h, left : left + w] = image
    return grid.astype("uint8")


def deprocess_image(x):
    """The book's `deprocess_image`: a pattern, normalised, as uint8 `(h, w, 3)` (or 1 channel)."""
    import numpy as np

    x = (x - x.mean()) / (x.std() + 1e-5) * 0.1 + 0.5
    return (np.clip(x, 0, 1) * 255).astype("uint8")


def overlay_heatmap(original, heatmap):
    """The heatmap, resized (bilinear) to `original`'s size, in jet, over `original` (uint8).

    The book adds `heatmap * 0.4` to the image; this blends `0.4 * heatmap + 0.6 * image`,
    which keeps the same weight but never saturates bright pixels to white.
    """
    import numpy as np
    from PIL import Image

    height, width = original.shape[:2]
    resized = Image.fromarray(heatmap.astype("float32"), mode="F").resize(
        (width, height), Image.Resampling.BILINEAR
    )
    colored = colorize(np.clip(np.asarray(resized), 0, 1), JET).astype("float32")
    return to_uint8(HEATMAP_INTENSITY * colored + (1 - HEATMAP_INTENSITY) * original)


def to_uint8(pixels):
    """Raw pixels in [0, 255] (any float) as a uint8 image, clipped as the book's deprocess."""
    import numpy as np

    return np.clip(np.round(pixels), 0, 255).astype("uint8")


def read_rgb(path):
    """The image file at `path` as uint8 RGB `(h, w, 3)`, at its own size (any format)."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as opened:
        return np.asarray(opened.convert("RGB"))


def save_png(array, path):
    """Writes the uint8 `array` (`(h, w)`, `(h, w, 1)` or `(h, w, 3)`) as a PNG; returns `path`."""
    from PIL import Image

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array[..., 0] if array.ndim == 3 and array.shape[-1] == 1 else array).save(
            path
        )
    except OSError as e:
        raise ConfigError(
            f"Cannot write {path} ({type(e).__name__}: {e}). Set output=<a writable folder>."
        ) from None
    return path


def write_tensorboard_images(log_dir, images):
    """Each `{tag: uint8 image}` as a `tf.summary.image` in `log_dir` (step 0)."""
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        for tag, image in images.items():
            image = image if image.ndim == 3 else image[..., None]
            tf.summary.image(tag, image[None], step=0)
    writer.close()
