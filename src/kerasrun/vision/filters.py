"""Convnet filters, the book's 5.4.2: the input pattern each filter responds to most.

visualize run=<run> kind=filters                        # the first conv layer of each block
visualize run=<run> kind=filters layers=[conv2d_1] max_filters=9 steps=40

Gradient ascent in input space, from gray noise in *raw* [0, 255] pixels: the run's model
does its own preprocessing, so a step of 1.0 means one pixel level whatever that is.
NumPy and TensorFlow are imported inside the functions: importing this costs nothing.
"""

import logging

from kerasrun.pictures import deprocess_image, save_png, tile
from kerasrun.vision.layers import choose_layers, feature_model

log = logging.getLogger("kerasrun")

FILTER_MARGIN = 5  # pixels between patterns (the book's `margin = 5`)


def filters(model, run, image, input_shape, out_dir, *, layers, steps, step_size, max_filters):
    """Writes, per conv layer, the patterns of its first `max_filters` filters as one grid PNG.

    Args:
        model: the run's model.
        run: the opened run (its `seed` seeds the gray noise).
        image: unused (`None`): the patterns start from noise.
        input_shape: the model's `(height, width, channels)`.
        out_dir: where `<layer>.png` goes.
        layers: conv layer names, or `None` for the first conv layer at each resolution.
        steps, step_size: of the gradient ascent (the book's 40 and 1.0).
        max_filters: filters per layer.

    Returns:
        `{tensorboard tag: uint8 image}`.
    """
    del image
    chosen = choose_layers(model, layers, kind="filters")
    seed = int(run.config.get("seed") or 0)
    images = {}
    for layer, owner in chosen:
        extract = feature_model(model, [(layer, owner)])
        count = min(max_filters, layer.output.shape[-1])
        patterns, before, after, stuck = filter_patterns(
            extract, input_shape, count, steps=steps, step_size=step_size, seed=seed
        )
        grid = tile([deprocess_image(p) for p in patterns], margin=FILTER_MARGIN)
        path = save_png(grid, out_dir / f"{layer.name}.png")
        log.info(
            f"{layer.name}: {count} of {layer.output.shape[-1]} filters, {steps} steps: mean "
            f"activation {before:.3g} → {after:.3g} → {path}"
        )
        if stuck:
            log.info(
                f"  {stuck} of them had no gradient from the gray noise (a ReLU filter silent "
                "there): their patterns are that noise."
            )
        images[f"filters/{layer.name}"] = grid
    return images


def filter_patterns(extract, input_shape, count, *, steps, step_size, seed=0):
    """Gradient ascent on the input: patterns that maximise the first `count` filters.

    The book's `generate_pattern`, for `count` filters at once (one image each, independent
    in the batch): from gray noise `random * 20 + 128` in raw pixels, `steps` steps of
    `step_size` along the gradient of the filter's mean activation, divided by its RMS: each
    step moves the pixels by `step_size` levels (RMS), whatever the model's preprocessing.

    Args:
        extract: `feature_model(model, [the conv layer])`.

    Returns:
        `(patterns, mean activation before, mean activation after, stuck)`: the patterns as
        floats `(count, height, width, channels)` in raw pixel units, and how many of them
        never moved (a filter with no gradient at the start keeps its noise).
    """
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    images = tf.Variable(rng.random((count, *input_shape)) * 20 + 128, dtype="float32")
    # Image i maximises filter i: its own channel's mean activation.
    pick = tf.one_hot(tf.range(count), count, dtype="float32")

    def losses():
        features, _, _ = extract(images, training=False)
        means = tf.reduce_mean(features[..., :count], axis=(1, 2))  # (count, count)
        return tf.reduce_sum(means * pick, axis=1)

    @tf.function
    def ascent_step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(losses())
        grads = tape.gradient(loss, images)
        rms = tf.sqrt(tf.reduce_mean(tf.square(grads), axis=(1, 2, 3), keepdims=True))
        # The book adds 1e-5 to the RMS; raw-pixel gradients through Rescaling(1/255) and a
        # mean over a 148x148 map are ~1e-7, so that 1e-5 would shrink every step 100-fold.
        grads /= tf.maximum(rms, 1e-20)
        images.assign_add(grads * step_size)

    start = images.numpy()
    before = float(tf.reduce_mean(losses()))
    for _ in range(steps):
        ascent_step()
    patterns = images.numpy()
    stuck = int(np.all(patterns == start, axis=(1, 2, 3)).sum())
    return patterns, before, float(tf.reduce_mean(losses())), stuck
