"""Recurrent networks: the book's chapter 6.2-6.3 RNNs, LSTMs and GRUs, and 8.1's text generator.

They read text (int32 word indices of shape `(maxlen,)`, through an `Embedding` when
`num_words` is set) or time series (float32 `(timesteps, features)`, `num_words` null): see
`kerasrun.models.sequence`. The last layer is always `task.head()`.
"""

from kerasrun.errors import ConfigError, check_int, check_int_list, check_rate, is_int, require
from kerasrun.models.sequence import check_input, first_layers


def _check_units(units):
    """`units` as a non-empty list of widths (a plain int is one layer), or a `ConfigError`."""
    return check_int_list(
        "model.units",
        [units] if is_int(units) else units,
        example="[32,64]",
        why="one recurrent layer each; a single integer is one layer",
    )


def _check_activations(activation, count):
    """One activation per recurrent layer: a single name for all, or a list of `count`."""
    import keras

    activations = list(activation) if isinstance(activation, (list, tuple)) else [activation]
    require(
        len(activations) in (1, count),
        "`model.activation` must be one activation for every layer or a list with one per "
        f"entry of model.units ({count}). Received: model.activation={activation!r}. "
        "For example: model.activation=[tanh,relu].",
    )
    for name in activations:
        try:
            keras.activations.get(name)
        except (ValueError, TypeError) as error:
            raise ConfigError(
                "`model.activation` must name a Keras activation, e.g. tanh or relu, or list "
                f"one per layer. Received: model.activation={activation!r}."
            ) from error
    return activations * count if len(activations) == 1 else activations


def simple_rnn(*, input_shape, task, num_words=10000, embedding_dim=32, units=32, embeddings=None):
    """The book's 6.2: [Embedding] → SimpleRNN(units) → head.

    `imdb_simplernn`: Embedding(10000, 32) → SimpleRNN(32) → Dense(1, sigmoid), 322,113
    parameters.

    Args:
        num_words: the vocabulary size for word indices of shape (maxlen,); null = time series
            of shape (timesteps, features), no Embedding.
        embedding_dim: the size of each word vector (text only).
        units: the width of the SimpleRNN.
        embeddings: pretrained word vectors from the data (given by `train`, not a YAML key;
            see `word_embedding`), or `None`.
    """
    import keras
    from keras import layers

    input_shape = check_input(
        input_shape, model="simple_rnn", num_words=num_words, embedding_dim=embedding_dim
    )
    check_int("model.units", units, example=32)
    return keras.Sequential(
        [
            *first_layers(input_shape, num_words, embedding_dim, embeddings, model="simple_rnn"),
            layers.SimpleRNN(units),
            task.head(),
        ],
        name="simple_rnn",
    )


def _recurrent(
    layer_class,
    *,
    model,
    input_shape,
    task,
    num_words,
    embedding_dim,
    units,
    bidirectional,
    dropout,
    recurrent_dropout,
    activation,
    embeddings,
):
    """[Embedding] → one `layer_class` per entry of `units` [each Bidirectional] → head."""
    import keras
    from keras import layers

    input_shape = check_input(
        input_shape, model=model, num_words=num_words, embedding_dim=embedding_dim
    )
    units = _check_units(units)
    require(
        isinstance(bidirectional, bool),
        "`model.bidirectional` must be true or false. "
        f"Received: model.bidirectional={bidirectional!r}.",
    )
    check_rate("model.dropout", dropout)
    check_rate("model.recurrent_dropout", recurrent_dropout)
    activations = _check_activations(activation, len(units))

    network = keras.Sequential(
        first_layers(input_shape, num_words, embedding_dim, embeddings, model=model), name=model
    )
    for i, (width, function) in enumerate(zip(units, activations, strict=True)):
        layer = layer_class(
            width,
            activation=function,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            return_sequences=i < len(units) - 1,
        )
        network.add(layers.Bidirectional(layer) if bidirectional else layer)
    network.add(task.head())
    return network


def lstm(
    *,
    input_shape,
    task,
    num_words=10000,
    embedding_dim=32,
    units=(32,),
    bidirectional=False,
    dropout=0.0,
    recurrent_dropout=0.0,
    activation="tanh",
    embeddings=None,
):
    """The book's 6.2.3 and 6.3.8: [Embedding] → LSTM(units[0]) → ... → head.

    Every LSTM but the last returns sequences; each may be wrapped in Bidirectional.

    | experiment           | settings                         | parameters |
    |----------------------|----------------------------------|------------|
    | imdb_lstm (6.2.3)    | num_words=10000 (the defaults)   | 328,353    |
    | imdb_bilstm (6.3.8)  | bidirectional=true               | 336,705    |
    | imdb_lstm_reversed   | embedding_dim=128 (reversed data)| 1,300,641  |

    Args:
        num_words: the vocabulary size for word indices of shape (maxlen,); null = time series
            of shape (timesteps, features), no Embedding.
        embedding_dim: the size of each word vector (text only).
        units: the width of each stacked LSTM (a plain int is one layer).
        bidirectional: wraps every LSTM in Bidirectional (twice the parameters).
        dropout: the LSTMs' own input dropout rate (the same mask at every timestep).
        recurrent_dropout: the LSTMs' dropout rate on the recurrent state.
        activation: of every LSTM, or a list with one per entry of `units`.
        embeddings: pretrained word vectors from the data (given by `train`, not a YAML key;
            see `word_embedding`), or `None`.
    """
    from keras import layers

    return _recurrent(
        layers.LSTM,
        model="lstm",
        input_shape=input_shape,
        task=task,
        num_words=num_words,
        embedding_dim=embedding_dim,
        units=units,
        bidirectional=bidirectional,
        dropout=dropout,
        recurrent_dropout=recurrent_dropout,
        activation=activation,
        embeddings=embeddings,
    )


def gru(
    *,
    input_shape,
    task,
    num_words=None,
    embedding_dim=32,
    units=(32,),
    bidirectional=False,
    dropout=0.0,
    recurrent_dropout=0.0,
    activation="tanh",
    embeddings=None,
):
    """The book's 6.3.5-6.3.8 on Jena (14 features): [Embedding] → GRU(units[0]) → ... → head.

    Every GRU but the last returns sequences; each may be wrapped in Bidirectional.

    | experiment               | settings                                           | params |
    |--------------------------|----------------------------------------------------|--------|
    | jena_climate_gru         | the defaults                                       | 4,641  |
    | jena_climate_gru_dropout | dropout=0.2, recurrent_dropout=0.2                 | 4,641  |
    | jena_climate_stacked_gru | units=[32,64], dropout=0.1, recurrent_dropout=0.5, | 23,489 |
    |                          | activation=[tanh,relu]                             |        |
    | jena_climate_bigru       | bidirectional=true                                 | 9,281  |

    Args:
        num_words: null = time series of shape (timesteps, features); the vocabulary size for
            word indices of shape (maxlen,), which then go through an Embedding.
        embedding_dim: the size of each word vector (text only).
        units: the width of each stacked GRU (a plain int is one layer).
        bidirectional: wraps every GRU in Bidirectional (twice the parameters).
        dropout: the GRUs' own input dropout rate (the same mask at every timestep).
        recurrent_dropout: the GRUs' dropout rate on the recurrent state.
        activation: of every GRU, or a list with one per entry of `units`.
        embeddings: pretrained word vectors from the data (given by `train`, not a YAML key;
            see `word_embedding`), or `None`.
    """
    from keras import layers

    return _recurrent(
        layers.GRU,
        model="gru",
        input_shape=input_shape,
        task=task,
        num_words=num_words,
        embedding_dim=embedding_dim,
        units=units,
        bidirectional=bidirectional,
        dropout=dropout,
        recurrent_dropout=recurrent_dropout,
        activation=activation,
        embeddings=embeddings,
    )


def text_generation(*, input_shape, task, units=128):
    """The book's 8.1 character-level language model: LSTM(units) → Dense(n_chars, softmax).

    Listing 8-4: `LSTM(128, input_shape=(maxlen, len(chars)))` then the softmax over the
    characters (`task.head()`): 102,585 parameters for the book's 57 characters. It reads
    one-hot sequences of shape `(maxlen, n_chars)` from `data=text_file`; its sampler
    (`kerasrun.text_samples`) writes generated text after each epoch.

    Args:
        units: the LSTM's width (the book's 128).
    """
    import keras
    from keras import layers

    input_shape = tuple(input_shape)
    require(
        len(input_shape) == 2 and task.kind == "multiclass",
        "model=text_generation reads one-hot character sequences (maxlen, n_chars) to predict "
        "the next character: use data=text_file. Received: "
        f"input_shape={list(input_shape)}, task={task.kind}.",
    )
    check_int("model.units", units, example=128)
    return keras.Sequential(
        [keras.Input(shape=input_shape), layers.LSTM(units), task.head()],
        name="text_generation",
    )
