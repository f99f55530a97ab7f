"""Densely connected networks: the book's chapter 3 and 4 vector models and 6.1.2's embedding.

`mlp` takes vectors (IMDB and Reuters multi-hot, Boston Housing's standardized features);
`embedding_flatten` takes padded sequences of word indices. The last layer is always
`task.head()`.
"""

from kerasrun.errors import (
    ConfigError,
    check_int,
    check_int_list,
    check_number,
    check_rate,
    require,
)
from kerasrun.models.sequence import word_embedding


def _check_units(units):
    """The list of widths in `units` (may be empty), or a `ConfigError`."""
    return check_int_list(
        "model.units", units, example="[16,16]", why="one Dense layer each", allow_empty=True
    )


def mlp(*, input_shape, task, units=(16, 16), activation="relu", dropout=0.0, l2=0.0):
    """A stack of Dense layers on vectors.

    One Dense(u, activation) [→ Dropout] per entry of `units`, then the head. The book's models:

    | experiment          | units      | other              | task            | parameters |
    |---------------------|------------|--------------------|-----------------|------------|
    | imdb_dense (3.4)    | [16, 16]   |                    | binary, 10000-d | 160,305    |
    | reuters_dense (3.5) | [64, 64]   |                    | 46 classes      | 647,214    |
    | reuters_bottleneck  | [64, 4]    |                    | 46 classes      | 640,554    |
    | boston (3.6)        | [64, 64]   |                    | regression, 13  | 5,121      |
    | imdb_capacity_small | [4, 4]     |                    | binary          | 40,029     |
    | imdb_capacity_big   | [512, 512] |                    | binary          | 5,383,681  |
    | imdb_l2 (4.4.2)     | [16, 16]   | l2=0.001           | binary          | 160,305    |
    | imdb_dropout (4.4.3)| [16, 16]   | dropout=0.5        | binary          | 160,305    |

    Args:
        units: the width of each hidden Dense layer; [] connects the input to the head.
        activation: of the hidden layers, e.g. `"relu"`.
        dropout: rate of the Dropout after each hidden layer; 0 leaves it out.
        l2: the L2 penalty of the hidden layers' kernels (the book's `l2(0.001)`); 0 = none.
    """
    import keras
    from keras import layers

    input_shape = tuple(input_shape)
    require(
        len(input_shape) == 1,
        "model=mlp takes vectors (data=imdb, reuters, boston_housing); for images use "
        f"model=convnet. Received: input_shape={list(input_shape)}.",
    )
    units = _check_units(units)
    check_rate("model.dropout", dropout)
    check_number(
        "model.l2", l2, minimum=0, example=0.001, why="an L2 penalty, the book's 0.001; 0 = none"
    )
    try:
        keras.activations.get(activation)
    except (ValueError, TypeError) as error:
        raise ConfigError(
            "`model.activation` must name a Keras activation, e.g. relu or tanh. "
            f"Received: model.activation={activation!r}."
        ) from error

    model = keras.Sequential([keras.Input(shape=input_shape)], name="mlp")
    for width in units:
        regularizer = keras.regularizers.l2(l2) if l2 > 0 else None
        model.add(layers.Dense(width, activation=activation, kernel_regularizer=regularizer))
        if dropout > 0:
            model.add(layers.Dropout(dropout))
    model.add(task.head())
    return model


def embedding_flatten(
    *, input_shape, task, num_words=10000, embedding_dim=8, units=(), embeddings=None
):
    """The book's 6.1.2 and 6.1.3: Embedding → Flatten → [Dense(u, relu) ...] → head.

    Takes int32 word indices of shape `(maxlen,)`. With maxlen 20 and a binary task it is
    `imdb_embedding_flatten`: Embedding(10000, 8) → Flatten → Dense(1, sigmoid), 80,161
    parameters. `imdb_raw_glove_200` (6.1.3) is Embedding(10000, 100) holding frozen GloVe
    vectors → Flatten → Dense(32, relu) → Dense(1, sigmoid) on 100 words: 1,320,065
    parameters, 1,000,000 of them frozen.

    Args:
        num_words: the vocabulary size: indices must be below it (the data's `num_words`).
        embedding_dim: the size of each word vector.
        units: the width of each hidden Dense(relu) after Flatten; [] = none (the book's).
        embeddings: pretrained word vectors from the data (given by `train`, not a YAML key):
            `{"matrix": float32 (num_words, embedding_dim), "trainable": bool}`, or `None` for
            a random, trainable Embedding.
    """
    import keras
    from keras import layers

    input_shape = tuple(input_shape)
    require(
        len(input_shape) == 1,
        "model=embedding_flatten takes sequences of word indices of shape (maxlen,), e.g. "
        f"data=imdb with a maxlen. Received: input_shape={list(input_shape)}.",
    )
    check_int("model.num_words", num_words, example=10000, why="the data's num_words")
    check_int("model.embedding_dim", embedding_dim, example=8)
    units = _check_units(units)

    model = keras.Sequential(
        [
            keras.Input(shape=input_shape, dtype="int32"),
            word_embedding(num_words, embedding_dim, embeddings, model="embedding_flatten"),
            layers.Flatten(),
        ],
        name="embedding_flatten",
    )
    for width in units:
        model.add(layers.Dense(width, activation="relu"))
    model.add(task.head())
    return model
