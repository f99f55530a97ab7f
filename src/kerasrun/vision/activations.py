"""Intermediate activations, the book's 5.4.1: what each conv and pooling layer makes of an image.

visualize run=<run> kind=activations image=cat.jpg              # the first 8 conv/pool layers
visualize run=<run> kind=activations image=cat.jpg layers=[conv2d,max_pooling2d]

One PNG per layer: its channels side by side, 16 a row, each normalised on its own and in
viridis, as the book's plots.
"""

import logging

from kerasrun.pictures import channel_grid, save_png
from kerasrun.rundir.run import load_images
from kerasrun.vision.layers import choose_layers, feature_model

log = logging.getLogger("kerasrun")


def activations(model, run, image, input_shape, out_dir, *, layers):
    """Writes each chosen layer's output for `image` as `out_dir/<image stem>/<layer>.png`.

    Args:
        model: the run's model.
        run: the opened run (unused: the same signature as the other kinds).
        image: the image's path.
        input_shape: the model's `(height, width, channels)`.
        out_dir: where the PNGs go.
        layers: layer names, or `None` for the book's first 8 conv/pool layers.

    Returns:
        `{tensorboard tag: uint8 image}`.
    """
    del run
    chosen = choose_layers(model, layers, kind="activations")
    pixels = load_images([image], input_shape)
    *features, _, _ = feature_model(model, chosen)(pixels, training=False)
    images = {}
    for (layer, _), feature in zip(chosen, features, strict=True):
        grid = channel_grid(feature.numpy()[0])
        path = save_png(grid, out_dir / image.stem / f"{layer.name}.png")
        h, w, c = feature.shape[1:]
        log.info(f"{layer.name}: {c} channels of {h}x{w} → {path}")
        images[f"activations/{image.stem}/{layer.name}"] = grid
    return images
