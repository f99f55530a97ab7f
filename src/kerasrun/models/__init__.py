"""The model registry: `model=<name>` selects `conf/model/<name>.yaml`; its `name:` picks a builder.

A builder takes `input_shape`, `task` (a `kerasrun.tasks.Task`) and the keys of its YAML
file as keyword arguments, and returns an uncompiled `keras.Model`.
"""

from kerasrun.errors import ConfigError, require
from kerasrun.models import (
    classic,
    classic_blocks,
    convnets,
    dense,
    generative,
    pretrained,
    recurrent,
    sequence,
)
from kerasrun.registry import call_builder, lookup

MODELS = {
    "convnet": convnets.convnet,
    "small_convnet": convnets.small_convnet,
    "mnist_convnet": convnets.mnist_convnet,
    "pretrained": pretrained.pretrained,
    "mlp": dense.mlp,
    "embedding_flatten": dense.embedding_flatten,
    "simple_rnn": recurrent.simple_rnn,
    "lstm": recurrent.lstm,
    "gru": recurrent.gru,
    "conv1d": sequence.conv1d,
    "conv1d_gru": sequence.conv1d_gru,
    "dense_timeseries": sequence.dense_timeseries,
    "last_value": sequence.last_value,
    "text_generation": recurrent.text_generation,
    # One builder, two recipes: vgg16_finetune.yaml adds the keys of the book's phase 2.
    "vgg16_feature_extraction": pretrained.vgg16,
    "vgg16_finetune": pretrained.vgg16,
    # Classic architectures from their papers, trained from scratch (classic*.py).
    "lenet": classic.lenet,
    "alexnet": classic.alexnet,
    "vgg": classic.vgg,
    "nin": classic.nin,
    "separable_convnet": classic.separable_convnet,
    "inception_small": classic_blocks.inception_small,
    "resnet_small": classic_blocks.resnet_small,
    "densenet_small": classic_blocks.densenet_small,
    # The book's chapter 8: they learn the images, not the labels (Task("generative")).
    "vae": generative.vae,
    "dcgan": generative.dcgan,
}
GENERATIVE = ("vae", "dcgan")


def build_model(name, *, input_shape, task, embeddings=None, **kwargs):
    """Builds model `name` for `input_shape` and `task` from its plain config (without `name`).

    `embeddings` (pretrained word vectors from the data, see `DataBundle.embeddings`) goes to
    builders that take it, the ones with a word `Embedding`; other models refuse it.
    """
    import inspect

    builder = lookup(MODELS, name, group="model")
    given = dict(input_shape=input_shape, task=task)
    if embeddings is not None:
        takers = sorted(
            k for k, b in MODELS.items() if "embeddings" in inspect.signature(b).parameters
        )
        require(
            name in takers,
            f"Pretrained word vectors (data.embeddings.path) need a model with a word "
            f"Embedding: {', '.join(takers)}. Received: model={name}. Pick one of them, or "
            "set data.embeddings.path=null.",
        )
        given["embeddings"] = embeddings
    return call_builder(builder, kwargs, group="model", name=name, **given)


def load_model(path):
    """Loads a `.keras` file written by `train`, in safe mode (no Lambda or arbitrary code).

    Pretrained models hold kerasrun's preprocessing layer, which Keras can only rebuild once
    it is registered: this registers it first.
    """
    import keras

    try:
        return keras.models.load_model(
            path,
            custom_objects={**pretrained.custom_objects(), **generative.custom_objects()},
            safe_mode=True,
        )
    except ValueError as e:
        if "safe_mode" not in str(e) and "unsafe" not in str(e):
            raise
        raise ConfigError(
            f"{path} holds Python code (a Lambda layer or a custom object), which kerasrun "
            f"never runs from a file: Keras's safe mode refused it. Received: {path}. Rebuild "
            "the model from Keras layers, or load it yourself with safe_mode=False if you "
            "trust whoever wrote it."
        ) from None


__all__ = ["GENERATIVE", "MODELS", "build_model", "load_model"]
