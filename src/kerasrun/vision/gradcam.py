"""Grad-CAM, the book's 5.4.3: where in an image the evidence for a class is.

visualize run=<run> kind=gradcam image=cat.jpg                  # the predicted class
visualize run=<run> kind=gradcam image=cat.jpg class_index=1 layer=conv2d

The last conv layer's channels, each weighted by the mean gradient of the class score over
it: a heatmap at that layer's resolution, overlaid on the image at the image's own size.
NumPy, Pillow and TensorFlow are imported inside the functions: importing this costs nothing.
"""

import logging

from kerasrun.errors import require
from kerasrun.pictures import JET, colorize, overlay_heatmap, read_rgb, save_png
from kerasrun.rundir.run import load_images
from kerasrun.vision.layers import choose_layers, feature_model

log = logging.getLogger("kerasrun")


def check_class_index(class_index, num_classes):
    """Raises a `ConfigError` unless `class_index` is `None` or below `num_classes`."""
    require(
        class_index is None or class_index < num_classes,
        f"class_index must be below the run's {num_classes} classes. "
        f"Received: class_index={class_index}. Set a class number from 0 to {num_classes - 1}.",
    )


def class_names(model, run):
    """The run's class names, or `0, 1, ...` (at least two) for a run that saved none."""
    return run.class_names or [str(i) for i in range(max(2, model.outputs[0].shape[-1]))]


def gradcam_model(model, layer):
    """`(conv layer, extract)`: the layer to explain (`None`: the last conv layer, also inside
    a pretrained `conv_base`) and its `feature_model` for `grad_cams`."""
    ((conv, owner),) = choose_layers(model, None if layer is None else [layer], kind="gradcam")
    return conv, feature_model(model, [(conv, owner)])


def gradcam(model, run, image, input_shape, out_dir, *, layer, class_index):
    """The book's 5.4.3: the Grad-CAM heatmap of a class over `image`, and its overlay.

    Writes `<image stem>.png` (the overlay, at the image's size) and `<image stem>_heatmap.png`
    (the heatmap in jet, at the model's input size) into `out_dir`.

    Returns:
        `{tensorboard tag: uint8 image}`.
    """
    import numpy as np
    from PIL import Image

    conv, extract = gradcam_model(model, layer)
    names = class_names(model, run)
    check_class_index(class_index, len(names))
    heatmap, probabilities = grad_cam(
        model, extract, load_images([image], input_shape), class_index
    )
    predicted = int(np.argmax(probabilities))
    target = predicted if class_index is None else class_index
    log.info(f"Predicted: {names[predicted]} ({probabilities[predicted]:.4f}) for {image.name}")
    if target != predicted:
        log.info(f"Explaining class_index={target}: {names[target]} ({probabilities[target]:.4f})")
    if not heatmap.any():
        log.warning(
            f"The Grad-CAM heatmap of {names[target]} on {conv.name} is zero everywhere: "
            "nothing this layer sees raises that class's score."
        )
    height, width = input_shape[:2]
    heatmap_image = np.asarray(
        Image.fromarray(colorize(heatmap, JET)).resize((width, height), Image.Resampling.NEAREST)
    )
    overlay = overlay_heatmap(read_rgb(image), heatmap)
    path = save_png(overlay, out_dir / f"{image.stem}.png")
    save_png(heatmap_image, out_dir / f"{image.stem}_heatmap.png")
    log.info(
        f"Grad-CAM of {names[target]} on {conv.name} ({heatmap.shape[0]}x"
        f"{heatmap.shape[1]}) → {path} (+ {image.stem}_heatmap.png)"
    )
    return {f"gradcam/{image.stem}": overlay, f"gradcam/{image.stem}_heatmap": heatmap_image}


def grad_cam(model, extract, images, class_index):
    """The book's Grad-CAM: the conv layer's channels weighted by the mean gradient of a class.

    The class score is the head's logit (`-logit` for class 0 of a sigmoid), as in the
    Grad-CAM paper; the book differentiates the softmax output, which saturates.

    Args:
        model: the run's model (its last layer is the head).
        extract: `feature_model(model, [the conv layer])`.
        images: one image, `(1, height, width, channels)` in raw pixels.
        class_index: the class to explain (see `check_class_index`); `None` for the
            predicted one.

    Returns:
        `(heatmap, probabilities)`: the heatmap `(h, w)` in [0, 1] at the layer's resolution
        (`max(heatmap, 0) / max(heatmap)`), and the model's probability of each class.
    """
    heatmaps, probabilities = grad_cams(model, extract, images, class_index)
    return heatmaps[0], probabilities[0]


def grad_cams(model, extract, images, class_index):
    """`grad_cam` for a batch of images `(n, height, width, channels)` in one pass.

    Each image's class score depends on that image only (the model runs in inference mode),
    so the gradient of their sum gives every image its own gradient.

    Returns:
        `(heatmaps, probabilities)`: `(n, h, w)`, each in [0, 1], and `(n, classes)`.
    """
    import numpy as np
    import tensorflow as tf

    with tf.GradientTape() as tape:
        conv_output, head_input, predictions = extract(tf.constant(images), training=False)
        probabilities = _class_probabilities(predictions)
        if class_index is None:
            targets = tf.argmax(probabilities, axis=-1, output_type="int32")
        else:
            targets = tf.fill([tf.shape(probabilities)[0]], class_index)
        logits = head_logits(model, head_input)
        if logits is None:  # not a sigmoid/softmax Dense head: the book's probability
            scores = tf.gather(probabilities, targets, batch_dims=1)
        elif logits.shape[-1] == 1:  # sigmoid: the logit argues for class 1, against class 0
            scores = tf.where(targets == 1, logits[:, 0], -logits[:, 0])
        else:
            scores = tf.gather(logits, targets, batch_dims=1)
        score = tf.reduce_sum(scores)
    grads = tape.gradient(score, conv_output)
    pooled_grads = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)  # a weight per channel
    heatmaps = np.maximum(tf.reduce_mean(conv_output * pooled_grads, axis=-1).numpy(), 0)
    peaks = heatmaps.max(axis=(1, 2), keepdims=True)
    heatmaps = np.divide(heatmaps, peaks, out=np.zeros_like(heatmaps), where=peaks > 0)
    return heatmaps, probabilities.numpy()


def head_logits(model, head_input):
    """The model's class scores before its sigmoid or softmax, or `None` for another head.

    Grad-CAM differentiates these, as the Grad-CAM paper does: a confident sigmoid or
    softmax output (0.9999) is flat, its gradient almost zero, and the heatmap blank.
    """
    from keras import ops

    head = model.layers[-1]
    config = head.get_config()
    if type(head).__name__ != "Dense" or config.get("activation") not in ("sigmoid", "softmax"):
        return None
    # The head computes in float32 (also under mixed precision): so do its logits.
    return ops.matmul(ops.cast(head_input, head.kernel.dtype), head.kernel) + head.bias


def _class_probabilities(prediction):
    """A model's output as one probability per class: a sigmoid's `p` is `[1 - p, p]`."""
    import tensorflow as tf

    if prediction.shape[-1] == 1:
        return tf.concat([1 - prediction, prediction], axis=-1)
    return prediction
