"""Convnets trained from scratch: the book's chapter 5.1 and 5.2 networks, and a small default.

Every model takes raw float32 images in [0, 255] and rescales them itself (its first layer is
`Rescaling(1/255)`, the book's `rescale=1./255`), so a saved `.keras` file predicts on raw images.
The last layer is always `task.head()`.
"""

from kerasrun.errors import ConfigError, check_int, check_int_list, check_rate, require


def feature_map_size(size, stages, kernel_size=3, padding="valid"):
    """The side of the last feature map, or 0 if an image of side `size` is too small.

    Args:
        size: the smaller side of the input image.
        stages: one entry per Conv2D: `True` if a MaxPooling2D(2) follows it.
        kernel_size: the convolutions' window.
        padding: `"valid"` convolutions shrink the map by `kernel_size - 1`.
    """
    for pooled in stages:
        if padding == "valid":
            size -= kernel_size - 1
        if size < (2 if pooled else 1):
            return 0
        if pooled:
            size //= 2
    return size


def _check_image_size(input_shape, stages, *, model, kernel_size=3, padding="valid", filters=None):
    """Fails before building when the poolings would shrink the feature map to nothing."""
    if feature_map_size(min(input_shape[:2]), stages, kernel_size, padding):
        return
    # The smallest side that works, so the message can say what to set.
    needed = next(s for s in range(1, 4097) if feature_map_size(s, stages, kernel_size, padding))
    received = f"model.filters={filters}, " if filters else ""
    fix = "Use fewer model.filters or set" if filters else "Set"
    raise ConfigError(
        f"model={model} needs images of at least {needed}x{needed} pixels for its "
        f"{sum(stages)} MaxPooling2D layers. Received: {received}"
        f"data.image_size={list(input_shape[:2])}. {fix} data.image_size to at least "
        f"[{needed}, {needed}]."
    )


def mnist_convnet(*, input_shape, task):
    """The book's 5.1 convnet for MNIST: 93,322 parameters on (28, 28, 1) with 10 classes.

    Conv2D(32) → MaxPooling2D → Conv2D(64) → MaxPooling2D → Conv2D(64) → Flatten → Dense(64).
    """
    import keras
    from keras import layers

    _check_image_size(input_shape, [True, True, False], model="mnist_convnet")
    return keras.Sequential(
        [
            keras.Input(shape=tuple(input_shape)),
            layers.Rescaling(1 / 255),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"),
            layers.Flatten(),
            layers.Dense(64, activation="relu"),
            task.head(),
        ],
        name="mnist_convnet",
    )


def small_convnet(*, input_shape, task, dropout=0.0):
    """The book's 5.2 cats-vs-dogs convnet: 3,453,121 parameters at (150, 150, 3), binary.

    Conv2D 32-64-128-128 (3x3, relu), each followed by MaxPooling2D(2) → Flatten →
    [Dropout] → Dense(512, relu).

    Args:
        dropout: rate of the Dropout after Flatten; 0 leaves it out (5.2.4), 5.2.5 uses 0.5.
    """
    import keras
    from keras import layers

    check_rate("model.dropout", dropout)
    _check_image_size(input_shape, [True] * 4, model="small_convnet")
    model = keras.Sequential(
        [keras.Input(shape=tuple(input_shape)), layers.Rescaling(1 / 255)], name="small_convnet"
    )
    for filters in (32, 64, 128, 128):
        model.add(layers.Conv2D(filters, 3, activation="relu"))
        model.add(layers.MaxPooling2D(2))
    model.add(layers.Flatten())
    if dropout > 0:
        model.add(layers.Dropout(dropout))
    model.add(layers.Dense(512, activation="relu"))
    model.add(task.head())
    return model


def convnet(
    *,
    input_shape,
    task,
    filters=(64, 128),
    kernel_size=3,
    padding="same",
    conv_dropout=0.0,
    units=128,
    dropout=0.5,
    batch_norm=False,
    kernel_initializer="he_uniform",
):
    """A small configurable convnet for any image of at least 8x8 pixels.

    One stage per entry of `filters`: Conv2D(relu) [→ BatchNormalization] [→ Dropout] →
    MaxPooling2D(2); then Flatten → Dense(units, relu) [→ Dropout] → head. With
    `filters=[32, 64, 128]`, `conv_dropout=0.25`, `units=512`, `dropout=0` at (64, 64, 3) it
    is the CNN lecture deck's 64-px cats-vs-dogs model (4,288,577 parameters).

    The defaults suit `train`'s default run on the 8x8 digits, only 200 RMSprop steps (10 epochs
    of 20 batches): with He initialization (made for ReLU) and Dropout(0.5) it reached 0.97-0.99
    test accuracy in about 8 s; Keras's Glorot default with `filters=[32, 64]`, `units=64` and
    no dropout reached 0.94-0.95.

    Args:
        filters: the number of filters of each stage.
        kernel_size: the convolution window, e.g. 3 for 3x3.
        padding: `"same"` keeps small images usable; `"valid"` is the book's default.
        conv_dropout: rate of the Dropout after each convolution; 0 leaves it out.
        units: the width of the Dense layer before the head.
        dropout: rate of the Dropout after that Dense layer; 0 leaves it out.
        batch_norm: adds BatchNormalization after each convolution.
        kernel_initializer: of the convolutions and the Dense layer, e.g. `"glorot_uniform"`
            (Keras's default, the book's and the lecture deck's).
    """
    import keras
    from keras import layers

    filters = check_int_list("model.filters", filters, example="[32,64]", why="one per stage")
    require(
        padding in ("same", "valid"),
        f"`model.padding` must be 'same' or 'valid'. Received: model.padding={padding!r}.",
    )
    check_int("model.kernel_size", kernel_size, example=3, why="3 for 3x3 windows")
    check_int("model.units", units, example=128)
    check_rate("model.conv_dropout", conv_dropout)
    check_rate("model.dropout", dropout)
    try:
        keras.initializers.get(kernel_initializer)
    except (ValueError, TypeError) as error:
        raise ConfigError(
            "`model.kernel_initializer` must name a Keras initializer, e.g. he_uniform or "
            f"glorot_uniform. Received: model.kernel_initializer={kernel_initializer!r}."
        ) from error
    _check_image_size(
        input_shape,
        [True] * len(filters),
        model="convnet",
        kernel_size=kernel_size,
        padding=padding,
        filters=filters,
    )

    model = keras.Sequential(
        [keras.Input(shape=tuple(input_shape)), layers.Rescaling(1 / 255)], name="convnet"
    )
    for n in filters:
        model.add(
            layers.Conv2D(
                n,
                kernel_size,
                padding=padding,
                activation="relu",
                kernel_initializer=kernel_initializer,
            )
        )
        if batch_norm:
            model.add(layers.BatchNormalization())
        if conv_dropout > 0:
            model.add(layers.Dropout(conv_dropout))
        model.add(layers.MaxPooling2D(2))
    model.add(layers.Flatten())
    model.add(layers.Dense(units, activation="relu", kernel_initializer=kernel_initializer))
    if dropout > 0:
        model.add(layers.Dropout(dropout))
    model.add(task.head())
    return model
