"""Neural style transfer, the book's 8.3: the content of one image in the style of another.

visualize kind=style_transfer image=tuebingen.jpg style_image=starry_night.jpg   # VGG19

As the book's listings 8-14 to 8-22: the generated image starts as the content image (resized
to `height`, the style image to the same size) and minimises, by L-BFGS (SciPy's, as the
book: `iterations` rounds of at most 20 loss evaluations, a PNG after each),

    content_weight * sum(square(F(generated) - F(content)))          at content_layer
    + style_weight / len(style_layers) * sum over style_layers of
          sum(square(gram(style) - gram(generated))) / (4 * 3**2 * (height * width)**2)
    + total_variation_weight * sum((dx**2 + dy**2) ** 1.25)

`gram` is the (channels x channels) matrix of the layer's feature maps; the `3` and the image
size in the style loss's denominator are the book's as printed. The features of the content
and style images are computed once (the book passes all three images through VGG19 at every
evaluation: the same loss, three times the work). The image is optimised in raw pixels, which
for VGG19 (`caffe` preprocessing: a mean subtracted, channels flipped) are the book's
variables shifted: L-BFGS takes the same steps, and the total variation is the same.
"""

import logging

from kerasrun.errors import require
from kerasrun.pictures import save_png, to_uint8
from kerasrun.vision import backbones

log = logging.getLogger("kerasrun")

# The book's listing 8-20.
CONTENT_LAYER = "block5_conv2"
STYLE_LAYERS = ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"]
MAXFUN = 20  # loss evaluations per L-BFGS round (the book's `maxfun=20`)
TV_POWER = 1.25


def gram_matrix(features):
    """The `(channels, channels)` Gram matrix of one image's feature maps `(h, w, channels)`."""
    import tensorflow as tf

    flat = tf.reshape(features, (-1, tf.shape(features)[-1]))
    return tf.matmul(flat, flat, transpose_a=True)


def total_variation(x):
    """The book's `total_variation_loss` of images `(1, h, w, c)`."""
    import tensorflow as tf

    a = tf.square(x[:, :-1, :-1, :] - x[:, 1:, :-1, :])
    b = tf.square(x[:, :-1, :-1, :] - x[:, :-1, 1:, :])
    return tf.reduce_sum(tf.pow(a + b, TV_POWER))


def style_transfer_loss(
    model,
    preprocess,
    content,
    style,
    *,
    content_layer,
    style_layers,
    content_weight,
    style_weight,
    total_variation_weight,
):
    """`loss_and_grads(x)`: the book's total loss of the image `x` `(1, h, w, 3)` and its gradient.

    `content` and `style` are raw RGB pixels of the same shape as `x`.
    """
    import tensorflow as tf

    content_target = model(preprocess(content), training=False)[content_layer]
    style_features = model(preprocess(style), training=False)
    style_grams = {n: gram_matrix(style_features[n][0]) for n in style_layers}
    size = float(content.shape[1] * content.shape[2])
    channels = 3  # the book's `channels = 3`

    @tf.function(input_signature=[tf.TensorSpec(content.shape, "float32")])
    def loss_and_grads(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            features = model(preprocess(x), training=False)
            content_loss = tf.reduce_sum(tf.square(features[content_layer] - content_target))
            loss = content_weight * content_loss
            for name in style_layers:
                difference = style_grams[name] - gram_matrix(features[name][0])
                layer_loss = tf.reduce_sum(tf.square(difference)) / (4.0 * channels**2 * size**2)
                loss += style_weight / len(style_layers) * layer_loss
            loss += total_variation_weight * total_variation(x)
        return loss, tape.gradient(loss, x)

    return loss_and_grads


def check_size(shape, backbone, height):
    """`shape` `(h, w)`; a `ConfigError` if a side is below what `backbone` takes."""
    smallest = backbones.min_size(backbone)
    require(
        min(shape) >= smallest,
        f"{backbone} needs images of at least {smallest} pixels; image at height={height} is "
        f"{shape[0]}x{shape[1]}. Received: height={height}. Set a larger height (the book's "
        "is 400).",
    )
    return shape


def style_transfer(
    image,
    out_dir,
    *,
    style_image,
    backbone,
    weights,
    height,
    content_layer,
    style_layers,
    content_weight,
    style_weight,
    total_variation_weight,
    iterations,
):
    """Writes `result_at_iteration_<i>.png` after each L-BFGS round, and `result.png`.

    Returns:
        `(images, losses)`: `{tensorboard tag: uint8 image}` and the loss at the start and
        after each round.
    """
    import numpy as np
    from PIL import Image
    from scipy.optimize import minimize

    content = backbones.read_photo(image, height)[None]
    h, w = check_size(content.shape[1:3], backbone, height)
    style = backbones.read_photo(style_image)  # resized to the content's size, as the book does
    style = np.asarray(
        Image.fromarray(to_uint8(style)).resize((w, h), Image.Resampling.BILINEAR),
        dtype="float32",
    )[None]
    names = list(dict.fromkeys([content_layer, *style_layers]))
    option = "content_layer" if content_layer not in style_layers else "style_layers"
    model, preprocess = backbones.feature_extractor(backbone, weights, names, option)
    loss_and_grads = style_transfer_loss(
        model,
        preprocess,
        content,
        style,
        content_layer=content_layer,
        style_layers=style_layers,
        content_weight=content_weight,
        style_weight=style_weight,
        total_variation_weight=total_variation_weight,
    )

    def evaluate(flat):  # SciPy's float64 vector in, (loss, gradient) out
        loss, grads = loss_and_grads(flat.reshape(content.shape).astype("float32"))
        return float(loss), grads.numpy().ravel().astype("float64")

    x = content.ravel().astype("float64")  # the book starts from the content image
    losses = [evaluate(x)[0]]
    log.info(f"Start: loss {losses[0]:.4g} ({h}x{w}, {backbone})")
    images = {}
    for i in range(iterations):
        result = minimize(evaluate, x, jac=True, method="L-BFGS-B", options={"maxfun": MAXFUN})
        x = result.x
        losses.append(float(result.fun))
        picture = to_uint8(x.reshape(content.shape)[0])
        path = save_png(picture, out_dir / f"result_at_iteration_{i}.png")
        log.info(f"Iteration {i}: loss {result.fun:.4g} ({result.nfev} evaluations) → {path}")
        images[f"style_transfer/result_at_iteration_{i}"] = picture
    log.info(f"Result: {save_png(picture, out_dir / 'result.png')}")
    images["style_transfer/result"] = picture
    return images, losses
