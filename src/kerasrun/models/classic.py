"""Classic convnets from their papers, trained from scratch: LeNet, AlexNet, VGG, NiN and the
book's separable convnet (7.3.1). GoogLeNet, ResNet and DenseNet are in `classic_blocks.py`.

Every model takes raw float32 images in [0, 255] and rescales them itself (`Rescaling(1/255)`
first), and ends with `task.head()`, so binary, multiclass and regression data all work.

The papers assume 28-32 px (LeNet) or 224-227 px (the rest) inputs. A `stem` key adapts the
first layers to small images such as CIFAR-10's 32x32: `auto` keeps the paper's stem when the
image is large enough for it and uses a small stride-1 stem otherwise (see each builder).
An image too small for the network is refused before building, with the size that works.

`batch_norm=True` (for the networks that had none) puts BatchNormalization between each
convolution and its activation, as in Ioffe & Szegedy (2015); the convolution then has no bias.
"""

import math

from kerasrun.errors import ConfigError, check_int, check_number, check_rate, require

STEMS = ("auto", "imagenet", "small")


# --- shared checks and layers ----------------------------------------------------------------


def shrink(size, ops):
    """The side of the last feature map after `ops`, or 0 if a layer runs out of pixels.

    Args:
        size: the smaller side of the input image.
        ops: `(kernel, stride, padding)` of each layer that changes the size, in order.
            A `"same"` layer with stride > 1 needs at least `stride` pixels to halve.
    """
    for kernel, stride, padding in ops:
        if padding == "valid":
            if size < kernel:
                return 0
            size = (size - kernel) // stride + 1
        else:
            if size < stride:
                return 0
            size = math.ceil(size / stride)
    return size


def min_size(ops):
    """The smallest image side `ops` can take."""
    return next(s for s in range(1, 4097) if shrink(s, ops))


def check_fits(input_shape, ops, *, model, stem=None):
    """Raises a `ConfigError` before building if the image is too small for `ops`."""
    side = min(input_shape[:2])
    if shrink(side, ops):
        return
    needed = min_size(ops)
    with_stem = f" with model.stem={stem}" if stem else ""
    other = " or model.stem=small" if stem == "imagenet" else ""
    raise ConfigError(
        f"model={model}{with_stem} needs images of at least {needed}x{needed} pixels. "
        f"Received: data.image_size={list(input_shape[:2])}. "
        f"Set data.image_size=[{needed},{needed}] or larger{other}."
    )


def pick_stem(stem, input_shape, *, model, original_from):
    """`"imagenet"` or `"small"`: `auto` is the paper's stem for images of `original_from` px."""
    require(
        stem in STEMS,
        f"`model.stem` must be one of {', '.join(STEMS)}. Received: model.stem={stem!r}. "
        f"auto uses the paper's stem from {original_from} px and a small one below.",
    )
    if stem == "auto":
        return "imagenet" if min(input_shape[:2]) >= original_from else "small"
    return stem


def check_width(width):
    """`model.width`, the multiplier of every layer's filters, or a `ConfigError`."""
    check_number(
        "model.width",
        width,
        above=0,
        example=0.5,
        why="it multiplies every layer's filters; 1 = the paper's",
    )


def conv(x, filters, kernel_size, *, strides=1, padding="same", batch_norm=False,
         activation="relu", name=None):  # fmt: skip
    """Conv2D(activation), or Conv2D (no bias) → BatchNormalization → activation."""
    from keras import layers

    if not batch_norm:
        return layers.Conv2D(
            filters, kernel_size, strides=strides, padding=padding, activation=activation,
            name=name,
        )(x)  # fmt: skip
    x = layers.Conv2D(
        filters, kernel_size, strides=strides, padding=padding, use_bias=False, name=name
    )(x)
    x = layers.BatchNormalization(name=name and f"{name}_bn")(x)
    return layers.Activation(activation, name=name and f"{name}_{activation}")(x)


def dense(x, units, *, batch_norm=False, activation="relu", dropout=0.0, name=None):
    """Dense(activation) [→ Dropout], or Dense (no bias) → BatchNormalization → activation."""
    from keras import layers

    if batch_norm:
        x = layers.Dense(units, use_bias=False, name=name)(x)
        x = layers.BatchNormalization(name=name and f"{name}_bn")(x)
        x = layers.Activation(activation)(x)
    else:
        x = layers.Dense(units, activation=activation, name=name)(x)
    return layers.Dropout(dropout)(x) if dropout > 0 else x


def inputs(input_shape):
    """The model's Input and its rescaled tensor."""
    import keras

    image = keras.Input(shape=tuple(input_shape), name="image")
    return image, keras.layers.Rescaling(1 / 255, name="rescaling")(image)


# --- the models -------------------------------------------------------------------------------


def lenet(*, input_shape, task, activation="sigmoid", pooling="average", batch_norm=False):
    """LeNet-5 (LeCun et al. 1998), as the lecture deck and Dive into Deep Learning write it.

    Conv2D(6, 5x5) → pool 2 → Conv2D(16, 5x5) → pool 2 → Flatten → Dense(120) → Dense(84) →
    head. Images under 32 px (MNIST's 28x28) get a "same"-padded first convolution, so they
    take the path of the paper's 32x32 (padded) digits; 32 px and more use "valid".
    The paper's C1 has 156 parameters, C5 48,120 and F6 10,164 (at 32x32 input).

    Args:
        activation: `"sigmoid"` (the paper's squashing units, the deck's) or e.g. `"relu"`.
        pooling: `"average"` (the paper's subsampling) or `"max"`.
        batch_norm: BatchNormalization before each activation (not in the paper).
    """
    import keras
    from keras import layers

    require(
        pooling in ("average", "max"),
        f"`model.pooling` must be average or max. Received: model.pooling={pooling!r}.",
    )
    try:
        keras.activations.get(activation)
    except (ValueError, TypeError):
        raise ConfigError(
            "`model.activation` must name a Keras activation, e.g. sigmoid (the paper's) or "
            f"relu. Received: model.activation={activation!r}."
        ) from None
    first = "same" if min(input_shape[:2]) < 32 else "valid"
    check_fits(input_shape, [(5, 1, first), (2, 2, "valid"), (5, 1, "valid"), (2, 2, "valid")],
               model="lenet")  # fmt: skip
    pool = layers.AveragePooling2D if pooling == "average" else layers.MaxPooling2D
    image, x = inputs(input_shape)
    x = conv(x, 6, 5, padding=first, batch_norm=batch_norm, activation=activation, name="c1")
    x = pool(2, name="s2")(x)
    x = conv(x, 16, 5, padding="valid", batch_norm=batch_norm, activation=activation, name="c3")
    x = pool(2, name="s4")(x)
    x = layers.Flatten()(x)
    x = dense(x, 120, batch_norm=batch_norm, activation=activation, name="c5")
    x = dense(x, 84, batch_norm=batch_norm, activation=activation, name="f6")
    return keras.Model(image, task.head()(x), name="lenet")


def alexnet(*, input_shape, task, stem="auto", units=4096, dropout=0.5, batch_norm=False):
    """AlexNet (Krizhevsky, Sutskever & Hinton 2012) as one tower, like the deck's.

    imagenet stem: Conv2D(96, 11x11, stride 4) → MaxPool(3, 2) → Conv2D(256, 5x5) →
    MaxPool(3, 2); small stem (for images under 67 px, e.g. CIFAR-10): Conv2D(96, 3x3) →
    MaxPool(3, 2) → Conv2D(256, 5x5) → MaxPool(3, 2). Then Conv2D 384-384-256 (3x3) →
    MaxPool(3, 2) → Flatten → Dense(units) → Dropout → Dense(units) → Dropout → head.
    At 227x227x3 with 1000 classes: 62,378,344 parameters (the paper says "60 million":
    its two GPU towers' convolutions see half the channels).

    Args:
        stem: `auto`, `imagenet` (needs 67 px) or `small`.
        units: width of the two Dense layers; 4096 in the paper.
        dropout: after each Dense layer; 0.5 in the paper.
        batch_norm: BatchNormalization before each activation (the paper used local
            response normalization, left out here as in most re-implementations).
    """
    import keras
    from keras import layers

    check_int("model.units", units, example=4096, why="the paper's 4096")
    check_rate("model.dropout", dropout)
    stem = pick_stem(stem, input_shape, model="alexnet", original_from=67)
    first = [(11, 4, "valid")] if stem == "imagenet" else []
    check_fits(input_shape, first + [(3, 2, "valid")] * 3, model="alexnet", stem=stem)
    image, x = inputs(input_shape)
    if stem == "imagenet":
        x = conv(x, 96, 11, strides=4, padding="valid", batch_norm=batch_norm, name="conv1")
    else:
        x = conv(x, 96, 3, batch_norm=batch_norm, name="conv1")
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    x = conv(x, 256, 5, batch_norm=batch_norm, name="conv2")
    x = layers.MaxPooling2D(3, strides=2, name="pool2")(x)
    for i, filters in enumerate((384, 384, 256), start=3):
        x = conv(x, filters, 3, batch_norm=batch_norm, name=f"conv{i}")
    x = layers.MaxPooling2D(3, strides=2, name="pool5")(x)
    x = layers.Flatten()(x)
    x = dense(x, units, batch_norm=batch_norm, dropout=dropout, name="fc6")
    x = dense(x, units, batch_norm=batch_norm, dropout=dropout, name="fc7")
    return keras.Model(image, task.head()(x), name="alexnet")


# Convolutions per block of VGG's configurations A (11), B (13), D (16) and E (19).
VGG_BLOCKS = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}


def vgg(*, input_shape, task, depth=16, units=4096, dropout=0.5, batch_norm=False):
    """VGG (Simonyan & Zisserman 2014), configurations A/B/D/E by `depth`, from scratch.

    Five blocks of 3x3 Conv2D (64, 128, 256, 512, 512 filters), each ending in MaxPool(2) →
    Flatten → Dense(units) → Dropout → Dense(units) → Dropout → head. Layer names are
    `keras.applications`' (`block1_conv1`, ...). At 224x224x3 with 1000 classes: VGG16
    138,357,544 and VGG19 143,667,240 parameters. Needs 32 px (five halvings); at 32x32
    the last feature map is 1x1x512, as in the usual CIFAR-10 VGGs (with `units=512`).

    Args:
        depth: 11, 13, 16 or 19 weight layers.
        units: width of the two Dense layers; 4096 in the paper.
        dropout: after each Dense layer; 0.5 in the paper.
        batch_norm: BatchNormalization before each activation (VGG-BN; not in the paper).
    """
    import keras
    from keras import layers

    require(
        depth in VGG_BLOCKS,
        f"`model.depth` must be one of {', '.join(map(str, VGG_BLOCKS))} for VGG. "
        f"Received: model.depth={depth!r}.",
    )
    check_int("model.units", units, example=4096, why="the paper's 4096")
    check_rate("model.dropout", dropout)
    check_fits(input_shape, [(2, 2, "valid")] * 5, model="vgg")
    image, x = inputs(input_shape)
    widths = (64, 128, 256, 512, 512)
    for block, (n, filters) in enumerate(zip(VGG_BLOCKS[depth], widths, strict=True), 1):
        for i in range(1, n + 1):
            x = conv(x, filters, 3, batch_norm=batch_norm, name=f"block{block}_conv{i}")
        x = layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = dense(x, units, batch_norm=batch_norm, dropout=dropout, name="fc1")
    x = dense(x, units, batch_norm=batch_norm, dropout=dropout, name="fc2")
    return keras.Model(image, task.head()(x), name=f"vgg{depth}")


def nin(*, input_shape, task, stem="auto", dropout=0.5, batch_norm=False):
    """Network in Network (Lin, Chen & Yan 2013), the deck's / Dive into Deep Learning's.

    Four mlpconv blocks (a Conv2D and two 1x1 Conv2D, relu): 96 (11x11, stride 4) →
    MaxPool(3, 2) → 256 (5x5) → MaxPool(3, 2) → 384 (3x3) → MaxPool(3, 2) → Dropout →
    one map per output (3x3) → GlobalAveragePooling2D → head. No Dense layer: the last block
    makes a map per class, averaged. The head (`task.head()`, for any task) adds a small
    Dense on those averages (110 parameters for 10 classes).
    The small stem (under 128 px) makes the first block 5x5, stride 1.

    Args:
        stem: `auto`, `imagenet` (needs 67 px) or `small`.
        dropout: before the last block; 0.5 in the paper.
        batch_norm: BatchNormalization before each activation (not in the paper).
    """
    import keras
    from keras import layers

    check_rate("model.dropout", dropout)
    stem = pick_stem(stem, input_shape, model="nin", original_from=128)
    first = [(11, 4, "valid")] if stem == "imagenet" else []
    check_fits(input_shape, first + [(3, 2, "valid")] * 3, model="nin", stem=stem)

    def mlpconv(x, filters, kernel_size, strides, padding, name):
        x = conv(x, filters, kernel_size, strides=strides, padding=padding,
                 batch_norm=batch_norm, name=f"{name}_conv")  # fmt: skip
        x = conv(x, filters, 1, batch_norm=batch_norm, name=f"{name}_mlp1")
        return conv(x, filters, 1, batch_norm=batch_norm, name=f"{name}_mlp2")

    image, x = inputs(input_shape)
    if stem == "imagenet":
        x = mlpconv(x, 96, 11, 4, "valid", "block1")
    else:
        x = mlpconv(x, 96, 5, 1, "same", "block1")
    x = layers.MaxPooling2D(3, strides=2)(x)
    x = mlpconv(x, 256, 5, 1, "same", "block2")
    x = layers.MaxPooling2D(3, strides=2)(x)
    x = mlpconv(x, 384, 3, 1, "same", "block3")
    x = layers.MaxPooling2D(3, strides=2)(x)
    if dropout > 0:
        x = layers.Dropout(dropout)(x)
    x = mlpconv(x, task.units, 3, 1, "same", "block4")
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(image, task.head()(x), name="nin")


def separable_convnet(*, input_shape, task, batch_norm=False):
    """The book's 7.3.1 depthwise separable convnet (its chapter 9 template for images).

    SeparableConv2D 32-64 → MaxPool(2) → 64-128 → MaxPool(2) → 64-128 (3x3, relu, "valid") →
    GlobalAveragePooling2D → Dense(32, relu) → head. The book builds it for 64x64x3 and
    10 classes (38,949 parameters in Keras; the book prints no summary); it needs 32 px.

    Args:
        batch_norm: BatchNormalization before each activation (the same section introduces it).
    """
    import keras
    from keras import layers

    v = (3, 1, "valid")
    check_fits(input_shape, [v, v, (2, 2, "valid"), v, v, (2, 2, "valid"), v, v],
               model="separable_convnet")  # fmt: skip
    image, x = inputs(input_shape)
    for i, filters in enumerate((32, 64, None, 64, 128, None, 64, 128)):
        if filters is None:
            x = layers.MaxPooling2D(2)(x)
        elif batch_norm:
            x = layers.SeparableConv2D(filters, 3, use_bias=False, name=f"sepconv{i}")(x)
            x = layers.BatchNormalization()(x)
            x = layers.Activation("relu")(x)
        else:
            x = layers.SeparableConv2D(filters, 3, activation="relu", name=f"sepconv{i}")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(32, activation="relu")(x)
    return keras.Model(image, task.head()(x), name="separable_convnet")
