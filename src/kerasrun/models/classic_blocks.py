"""Classic convnets built from modules: GoogLeNet's Inception, ResNet's residual blocks and
DenseNet's dense blocks, trained from scratch (the book's 7.1.4-7.1.5 patterns, full size).

As in `classic.py`: raw [0, 255] images in, `task.head()` out, and a `stem` key that keeps the
paper's ImageNet stem (7x7 stride 2 + max pooling) from 128 px and uses a 3x3 stride-1 stem
below (CIFAR-10's 32x32), as the papers' own CIFAR models and most re-implementations do.
"""

from kerasrun.errors import check_int, check_int_list, check_number, check_rate, require
from kerasrun.models.classic import check_fits, check_width, conv, inputs, pick_stem

# GoogLeNet's table 1: (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj) of each module;
# None marks a MaxPool(3, 2) between stages.
GOOGLENET = [
    (64, 96, 128, 16, 32, 32),  # 3a
    (128, 128, 192, 32, 96, 64),  # 3b
    None,
    (192, 96, 208, 16, 48, 64),  # 4a
    (160, 112, 224, 24, 64, 64),  # 4b
    (128, 128, 256, 24, 64, 64),  # 4c
    (112, 144, 288, 32, 64, 64),  # 4d
    (256, 160, 320, 32, 128, 128),  # 4e
    None,
    (256, 160, 320, 32, 128, 128),  # 5a
    (384, 192, 384, 48, 128, 128),  # 5b
]


def inception_small(*, input_shape, task, stem="auto", width=1.0, dropout=0.4, batch_norm=False):
    """GoogLeNet (Szegedy et al. 2014): nine Inception modules, without the auxiliary heads.

    imagenet stem: Conv2D(64, 7x7, stride 2) → MaxPool(3, 2) → Conv2D(64, 1x1) →
    Conv2D(192, 3x3) → MaxPool(3, 2); the small stem drops the stride and the first pooling.
    Modules 3a-3b → MaxPool → 4a-4e → MaxPool → 5a-5b → GlobalAveragePooling2D → Dropout →
    head. A module concatenates four branches: 1x1; 1x1 → 3x3; 1x1 → 5x5; MaxPool(3, 1) → 1x1.

    Args:
        stem: `auto`, `imagenet` or `small`.
        width: multiplies every module's filters (1 = the paper's; 0.5 is 4x cheaper).
        dropout: before the head; 0.4 in the paper.
        batch_norm: BatchNormalization before each activation (Inception v2 added it).
    """
    import keras
    from keras import layers

    check_width(width)
    check_rate("model.dropout", dropout)
    stem = pick_stem(stem, input_shape, model="inception_small", original_from=128)
    down = [(3, 2, "same")] * 3
    first = [(7, 2, "same"), (3, 2, "same")] if stem == "imagenet" else []
    check_fits(input_shape, first + down, model="inception_small", stem=stem)

    def n(filters):
        return max(1, round(filters * width))

    def c(x, filters, kernel_size, name, strides=1):
        return conv(x, n(filters), kernel_size, strides=strides, batch_norm=batch_norm,
                    name=name)  # fmt: skip

    image, x = inputs(input_shape)
    if stem == "imagenet":
        x = c(x, 64, 7, "conv1", strides=2)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    else:
        x = c(x, 64, 3, "conv1")
    x = c(x, 64, 1, "conv2_reduce")
    x = c(x, 192, 3, "conv2")
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    names = iter(["3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"])
    for module in GOOGLENET:
        if module is None:
            x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
            continue
        name = f"inception{next(names)}"
        one, r3, three, r5, five, proj = module
        branches = [
            c(x, one, 1, f"{name}_1x1"),
            c(c(x, r3, 1, f"{name}_3x3_reduce"), three, 3, f"{name}_3x3"),
            c(c(x, r5, 1, f"{name}_5x5_reduce"), five, 5, f"{name}_5x5"),
            c(layers.MaxPooling2D(3, strides=1, padding="same")(x), proj, 1, f"{name}_pool_proj"),
        ]
        x = layers.Concatenate(name=name)(branches)
    x = layers.GlobalAveragePooling2D()(x)
    if dropout > 0:
        x = layers.Dropout(dropout)(x)
    return keras.Model(image, task.head()(x), name="inception_small")


RESNET_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


def resnet_small(*, input_shape, task, depth=18, stem="auto", filters=64):
    """ResNet-18/34 (He et al. 2015): basic residual blocks, batch normalization throughout.

    Stem → four stages of basic blocks (3x3 conv-BN-relu, 3x3 conv-BN, + shortcut, relu) with
    `filters` × 1, 2, 4, 8 filters, each stage after the first halving the map →
    GlobalAveragePooling2D → head. A shortcut is the identity, or a 1x1 stride-2 conv + BN
    (the paper's option B) where the shape changes. Convolutions before a BN have no bias.
    At 224x224x3 with 1000 classes the trainable parameters are torchvision's: ResNet-18
    11,689,512 and ResNet-34 21,797,672; Keras also counts BN's moving mean and variance.

    Args:
        depth: 18 or 34.
        stem: `auto`, `imagenet` (7x7 stride 2 + MaxPool) or `small` (3x3 stride 1).
        filters: of the first stage (64 in the paper).
    """
    import keras
    from keras import layers

    require(
        depth in RESNET_BLOCKS,
        f"`model.depth` must be 18 or 34 for resnet_small. Received: model.depth={depth!r}.",
    )
    check_int("model.filters", filters, example=64, why="of the first stage; the paper's 64")
    stem = pick_stem(stem, input_shape, model="resnet_small", original_from=128)
    first = [(7, 2, "same"), (3, 2, "same")] if stem == "imagenet" else []
    check_fits(input_shape, first + [(3, 2, "same")] * 3, model="resnet_small", stem=stem)

    def bn_relu(x, relu=True):
        x = layers.BatchNormalization()(x)
        return layers.Activation("relu")(x) if relu else x

    image, x = inputs(input_shape)
    if stem == "imagenet":
        x = bn_relu(layers.Conv2D(filters, 7, strides=2, padding="same", use_bias=False)(x))
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    else:
        x = bn_relu(layers.Conv2D(filters, 3, padding="same", use_bias=False)(x))
    for stage, blocks in enumerate(RESNET_BLOCKS[depth]):
        width = filters * 2**stage
        for block in range(blocks):
            strides = 2 if stage > 0 and block == 0 else 1
            shortcut = x
            if strides != 1 or x.shape[-1] != width:
                # Subsampling, then a 1x1 conv: the same as a 1x1 stride-2 conv, which crashed
                # TensorFlow 2.21's oneDNN kernels (segfault) for 8 -> 16 filters on a batch of 3.
                if strides > 1:
                    shortcut = layers.MaxPooling2D(1, strides=strides)(shortcut)
                shortcut = layers.Conv2D(width, 1, use_bias=False)(shortcut)
                shortcut = bn_relu(shortcut, relu=False)
            y = layers.Conv2D(width, 3, strides=strides, padding="same", use_bias=False)(x)
            y = bn_relu(y)
            y = bn_relu(layers.Conv2D(width, 3, padding="same", use_bias=False)(y), relu=False)
            x = layers.Activation("relu", name=f"stage{stage + 1}_block{block + 1}")(
                layers.Add()([y, shortcut])
            )
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(image, task.head()(x), name=f"resnet{depth}")


def densenet_small(
    *, input_shape, task, blocks=(6, 12, 24, 16), growth_rate=32, compression=0.5, stem="auto"
):
    """DenseNet-BC (Huang et al. 2017): dense blocks joined by compressing transitions.

    Stem (2 × growth_rate filters; imagenet: 7x7 stride 2 conv-BN-relu + MaxPool(3, 2),
    small: one 3x3 conv as in the paper's CIFAR models) → dense blocks, each layer
    BN-relu-Conv(1x1, 4k)-BN-relu-Conv(3x3, k) concatenated to its input, with a transition
    (BN-relu-Conv 1x1 × compression → AveragePooling(2)) between blocks → BN-relu →
    GlobalAveragePooling2D → head. `blocks=[6,12,24,16]`, `growth_rate=32` is DenseNet-121
    (7,978,856 trainable parameters at 224x224x3 with 1000 classes; Keras's DenseNet121 counts
    8,062,504 with BN's moving statistics); `blocks=[16,16,16]`, `growth_rate=12` is the
    paper's DenseNet-BC (L=100, k=12) for CIFAR ("0.8M" parameters).

    Args:
        blocks: layers in each dense block.
        growth_rate: k, the filters each layer adds.
        compression: θ, the fraction of channels a transition keeps (0.5 in DenseNet-BC).
        stem: `auto`, `imagenet` or `small`.
    """
    import keras
    from keras import layers

    blocks = check_int_list(
        "model.blocks",
        blocks,
        example="[6,12,24,16]",
        why="the layers of each dense block; DenseNet-121's [6,12,24,16]",
    )
    check_int("model.growth_rate", growth_rate, example=32, why="k, the filters each layer adds")
    check_number(
        "model.compression",
        compression,
        above=0,
        maximum=1,
        example=0.5,
        why="0.5 in DenseNet-BC, 1 = no compression",
    )
    stem = pick_stem(stem, input_shape, model="densenet_small", original_from=128)
    first = [(7, 2, "same"), (3, 2, "same")] if stem == "imagenet" else []
    transitions = [(2, 2, "valid")] * (len(blocks) - 1)
    check_fits(input_shape, first + transitions, model="densenet_small", stem=stem)

    def bn_relu_conv(x, filters, kernel_size):
        x = layers.Activation("relu")(layers.BatchNormalization(epsilon=1.001e-5)(x))
        return layers.Conv2D(filters, kernel_size, padding="same", use_bias=False)(x)

    image, x = inputs(input_shape)
    if stem == "imagenet":
        x = layers.Conv2D(2 * growth_rate, 7, strides=2, padding="same", use_bias=False)(x)
        x = layers.Activation("relu")(layers.BatchNormalization(epsilon=1.001e-5)(x))
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    else:
        x = layers.Conv2D(2 * growth_rate, 3, padding="same", use_bias=False)(x)
    for i, n in enumerate(blocks, 1):
        for j in range(n):
            y = bn_relu_conv(bn_relu_conv(x, 4 * growth_rate, 1), growth_rate, 3)
            x = layers.Concatenate(name=f"block{i}_layer{j + 1}")([x, y])
        if i < len(blocks):
            x = bn_relu_conv(x, int(x.shape[-1] * compression), 1)
            x = layers.AveragePooling2D(2, strides=2, name=f"transition{i}")(x)
    x = layers.Activation("relu")(layers.BatchNormalization(epsilon=1.001e-5)(x))
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(image, task.head()(x), name="densenet_small")
