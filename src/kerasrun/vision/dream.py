"""DeepDream, the book's 8.2: gradient ascent on a photo to excite some layers of a convnet.

visualize kind=deepdream image=photo.jpg                          # the book: InceptionV3
visualize kind=deepdream image=photo.jpg layers={mixed3:1.0} octaves=4

As the book's listings 8-8 to 8-13: the loss is the sum over `layers` of
`coeff * sum(square(activation[:, 2:-2, 2:-2, :])) / size(activation)` (border pixels excluded,
to avoid artifacts); each step adds `step * grads / max(mean(|grads|), 1e-7)`; `iterations`
steps per octave, stopping early when the loss exceeds `max_loss`; `octaves` scales, each
`octave_scale` times larger than the previous, the smallest first; after each, the detail
lost by shrinking the photo is put back in (`same_size_original - upscaled_shrunk_original`).

The image being dreamed is kept in [-1, 1] (InceptionV3's `preprocess_input`, so the book's
`step=0.01` means the same thing): for another backbone it is mapped to raw pixels and through
that backbone's own `preprocess_input`, so the same step size works for any of them.
"""

import logging

from kerasrun.errors import require
from kerasrun.pictures import save_png, to_uint8
from kerasrun.vision import backbones

log = logging.getLogger("kerasrun")

# The book's listing 8-9: mixed layers of InceptionV3 and how much each adds to the loss.
LAYERS = {"mixed2": 0.2, "mixed3": 3.0, "mixed4": 2.0, "mixed5": 1.5}
BORDER = 2  # pixels of each activation map left out of the loss (the book's `2:-2`)


def check_sizes(shape, octaves, octave_scale, smallest):
    """The `(height, width)` of each octave, smallest first (the book's `successive_shapes`).

    Raises:
        ConfigError: the smallest octave is below the backbone's minimum image size.
    """
    height, width = shape
    shapes = [
        (int(height / octave_scale**i), int(width / octave_scale**i)) for i in range(octaves)
    ][::-1]
    require(
        min(shapes[0]) >= smallest,
        f"octaves={octaves} at octave_scale={octave_scale} shrink the {height}x{width} image to "
        f"{shapes[0][0]}x{shapes[0][1]}, below the backbone's {smallest} pixels. Received: "
        f"octaves={octaves}. Use fewer octaves or a larger image (the book: about 300-400 px).",
    )
    return shapes


def deepdream(
    image,
    out_dir,
    *,
    backbone,
    weights,
    layers,
    octaves,
    octave_scale,
    iterations,
    step,
    max_loss,
    height,
):
    """Dreams `image`; writes `dream_at_scale_<h>x<w>.png` per octave and `final_dream.png`.

    Args:
        image: the photo's path.
        out_dir: where the PNGs go (created).
        backbone, weights: see `kerasrun.vision.backbones`.
        layers: `{layer name: coefficient}`.
        octaves, octave_scale, iterations, step, max_loss: the book's listing 8-12.
        height: resize the photo to this height first; `None` keeps its size (as the book).

    Returns:
        `(images, losses)`: `{tensorboard tag: uint8 image}` and, per octave, the loss before
        each step taken.
    """
    import tensorflow as tf

    pixels = backbones.read_photo(image, height)
    shapes = check_sizes(pixels.shape[:2], octaves, octave_scale, backbones.min_size(backbone))
    model, preprocess = backbones.feature_extractor(backbone, weights, list(layers), "layers")
    coefficients = {name: float(c) for name, c in layers.items()}

    def loss_of(x):
        features = model(preprocess((x + 1.0) * 127.5), training=False)
        loss = tf.constant(0.0)
        for name, coeff in coefficients.items():
            activation = features[name]
            size = tf.cast(tf.reduce_prod(tf.shape(activation)), "float32")
            inner = activation[:, BORDER:-BORDER, BORDER:-BORDER, :]
            loss += coeff * tf.reduce_sum(tf.square(inner)) / size
        return loss

    @tf.function(input_signature=[tf.TensorSpec((1, None, None, 3), "float32")])
    def loss_and_grads(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = loss_of(x)
        grads = tape.gradient(loss, x)
        return loss, grads / tf.maximum(tf.reduce_mean(tf.abs(grads)), 1e-7)

    def resize(x, shape):  # the book's scipy.ndimage.zoom(order=1): bilinear
        return tf.image.resize(x, shape, method="bilinear")

    original = tf.constant(pixels[None] / 127.5 - 1.0)  # InceptionV3's preprocess_input
    x = resize(original, shapes[0])
    shrunk_original = x
    images, losses = {}, []
    for i, shape in enumerate(shapes):
        x = resize(x, shape)
        x, octave_losses = gradient_ascent(loss_and_grads, x, iterations, step, max_loss)
        losses.append(octave_losses)
        # Put back the detail the shrunk photo lost (the book's lost_detail).
        same_size_original = resize(original, shape)
        x += same_size_original - resize(shrunk_original, shape)
        shrunk_original = same_size_original
        dream = to_uint8((x[0].numpy() + 1.0) * 127.5)
        name = f"dream_at_scale_{shape[0]}x{shape[1]}"
        path = save_png(dream, out_dir / f"{name}.png")
        log.info(
            f"Octave {i + 1}/{len(shapes)} {shape[0]}x{shape[1]}: {len(octave_losses)} steps, "
            f"loss {octave_losses[0]:.4g} → {octave_losses[-1]:.4g} → {path}"
        )
        images[f"deepdream/{name}"] = dream
    final = to_uint8((x[0].numpy() + 1.0) * 127.5)
    log.info(f"Final dream: {save_png(final, out_dir / 'final_dream.png')}")
    images["deepdream/final_dream"] = final
    return images, losses


def gradient_ascent(loss_and_grads, x, iterations, step, max_loss):
    """The book's `gradient_ascent`: `iterations` steps, stopping once the loss > `max_loss`.

    Returns:
        `(x, losses)`: the image after the steps, and the loss before each step taken.
    """
    losses = []
    for _ in range(iterations):
        loss, grads = loss_and_grads(x)
        loss = float(loss)
        if max_loss is not None and loss > max_loss:
            log.info(f"  loss {loss:.4g} > max_loss={max_loss}: next octave")
            break
        losses.append(loss)
        x += step * grads
    return x, losses or [loss]
