"""Sequence models: their two kinds of input, the book's 6.4 1D convnets and 6.3's
time-series baselines. The recurrent networks are in `kerasrun.models.recurrent`.

Two kinds of input:

- text: int32 word indices of shape `(maxlen,)` (e.g. `data=imdb data.encoding=sequence
  data.maxlen=500`); set `num_words` to the data's vocabulary and the model starts with
  `Embedding(num_words, embedding_dim)`;
- time series: float32 of shape `(timesteps, features)` (timesteps may be None); leave
  `num_words` null and the layers read the features directly.

`conv1d_gru`, `dense_timeseries` and `last_value` take time series only. The last layer is
always `task.head()` (`last_value` has none: it is the baseline).
"""

from kerasrun.errors import ConfigError, check_int, check_rate, is_int, require


def check_input(input_shape, *, model, num_words, embedding_dim):
    """The input shape as a tuple, once it fits `num_words` (text) or its absence (series)."""
    input_shape = tuple(input_shape)
    check_int(
        "model.num_words",
        num_words,
        allow_none=True,
        example=10000,
        why="the data's num_words for word indices, null for time series",
    )
    check_int("model.embedding_dim", embedding_dim, example=32)
    if num_words is not None:
        require(
            len(input_shape) == 1,
            f"model={model} with model.num_words={num_words} takes word indices of shape "
            "(maxlen,), e.g. data=imdb data.encoding=sequence data.maxlen=500; for time series "
            "of shape (timesteps, features) set model.num_words=null. "
            f"Received: input_shape={list(input_shape)}.",
        )
    else:
        require(
            len(input_shape) == 2,
            f"model={model} with model.num_words=null takes time series of shape (timesteps, "
            "features); for word indices of shape (maxlen,) (data=imdb data.encoding=sequence) "
            "set model.num_words to the data's num_words, e.g. model.num_words=10000. "
            f"Received: model.num_words=None, input_shape={list(input_shape)}.",
        )
    return input_shape


def check_series(input_shape, *, model, text_model):
    """The input shape as a tuple, once it is a time series `(timesteps, features)`."""
    input_shape = tuple(input_shape)
    require(
        len(input_shape) == 2,
        f"model={model} takes time series of shape (timesteps, features); for word indices "
        f"of shape (maxlen,) use model={text_model} with model.num_words set. "
        f"Received: input_shape={list(input_shape)}.",
    )
    return input_shape


def word_embedding(num_words, embedding_dim, embeddings=None, *, model):
    """`Embedding(num_words, embedding_dim)`, holding pretrained vectors if `embeddings` is given.

    Args:
        embeddings: `None` (a random, trainable Embedding), or the data's pretrained word
            vectors (`DataBundle.embeddings`): `{"matrix": float32 (num_words, embedding_dim),
            "trainable": bool}`. The matrix becomes the layer's initial weights (Keras's
            `weights=`, not a `Constant` initializer, which would copy it into the model's
            config); `trainable=False` freezes it, as the book's 6.1.3.
    """
    from keras import layers

    if embeddings is None:
        return layers.Embedding(num_words, embedding_dim)
    require(
        num_words is not None,
        f"Pretrained word vectors (data.embeddings.path) need word indices and an Embedding: "
        f"model={model} with model.num_words=null takes time series. Received: "
        "model.num_words=None. Set model.num_words to the data's max_tokens, or set "
        "data.embeddings.path=null.",
    )
    matrix = embeddings["matrix"]
    rows, dim = matrix.shape
    require(
        tuple(matrix.shape) == (num_words, embedding_dim),
        f"The pretrained word vectors are a ({rows}, {dim}) matrix (data.max_tokens={rows} words "
        f"of {dim}-d GloVe vectors), so model={model} needs an Embedding({rows}, {dim}). "
        f"Received: model.num_words={num_words}, model.embedding_dim={embedding_dim}. Set "
        f"model.num_words={rows} model.embedding_dim={dim} to match (or change data.max_tokens).",
    )
    return layers.Embedding(
        num_words,
        embedding_dim,
        weights=[matrix],
        trainable=bool(embeddings.get("trainable", False)),
    )


def first_layers(input_shape, num_words, embedding_dim, embeddings=None, *, model):
    """`Input` [→ `Embedding`]: int32 indices for text, float32 for time series."""
    import keras

    if num_words is None:
        if embeddings is not None:
            word_embedding(num_words, embedding_dim, embeddings, model=model)  # refuses them
        return [keras.Input(shape=input_shape)]
    return [
        keras.Input(shape=input_shape, dtype="int32"),
        word_embedding(num_words, embedding_dim, embeddings, model=model),
    ]


def sequence_length(length, num_conv, kernel_size, pool_size, *, pool_last=False):
    """The length after `num_conv` valid Conv1D layers, 0 if a sequence of `length` is too short.

    A MaxPooling1D(pool_size) follows every Conv1D but the last (also the last if `pool_last`).
    """
    for i in range(num_conv):
        length -= kernel_size - 1
        if length < 1:
            return 0
        if i < num_conv - 1 or pool_last:
            if length < pool_size:
                return 0
            length //= pool_size
    return length


def _check_length(input_shape, *, model, num_conv, kernel_size, pool_size, text):
    """Fails before building when the convolutions and poolings would leave no timestep."""
    length = input_shape[0]
    if length is None or sequence_length(length, num_conv, kernel_size, pool_size):
        return
    needed = next(
        n for n in range(1, 10**7) if sequence_length(n, num_conv, kernel_size, pool_size)
    )
    fix = (
        f"Set data.maxlen to at least {needed}"
        if text
        else f"Use sequences of at least {needed} timesteps"
    )
    raise ConfigError(
        f"model={model} needs sequences of at least {needed} steps for {num_conv} Conv1D "
        f"layers of kernel_size {kernel_size} with MaxPooling1D({pool_size}) between them. "
        f"Received: model.num_conv={num_conv}, model.kernel_size={kernel_size}, "
        f"model.pool_size={pool_size}, input_shape={list(input_shape)}. {fix}, or lower "
        "model.kernel_size, model.pool_size or model.num_conv."
    )


def conv1d(
    *,
    input_shape,
    task,
    num_words=10000,
    embedding_dim=128,
    filters=32,
    kernel_size=7,
    pool_size=5,
    num_conv=2,
    embeddings=None,
):
    """The book's 6.4.3-6.4.4 1D convnet: [Embedding] → Conv1D → MaxPooling1D → ... → head.

    `num_conv` Conv1D(filters, kernel_size, relu) layers with a MaxPooling1D(pool_size)
    between each two, then GlobalMaxPooling1D.

    | experiment        | settings                                        | parameters |
    |-------------------|-------------------------------------------------|------------|
    | imdb_conv1d       | the defaults, maxlen 500                        | 1,315,937  |
    | jena_climate_conv1d       | num_words=null, num_conv=3, kernel_size=5,      | 12,609     |
    |                   | pool_size=3 on (240, 14)                        |            |

    Args:
        num_words: the vocabulary size for word indices of shape (maxlen,); null = time series
            of shape (timesteps, features), no Embedding.
        embedding_dim: the size of each word vector (text only).
        filters: of every Conv1D.
        kernel_size: the window of every Conv1D ("valid" padding).
        pool_size: the window of every MaxPooling1D.
        num_conv: the number of Conv1D layers.
        embeddings: pretrained word vectors from the data (given by `train`, not a YAML key;
            see `word_embedding`), or `None`.
    """
    import keras
    from keras import layers

    input_shape = check_input(
        input_shape, model="conv1d", num_words=num_words, embedding_dim=embedding_dim
    )
    check_int("model.filters", filters, example=32)
    check_int("model.kernel_size", kernel_size, example=7)
    check_int("model.pool_size", pool_size, example=5)
    check_int("model.num_conv", num_conv, example=2)
    _check_length(
        input_shape,
        model="conv1d",
        num_conv=num_conv,
        kernel_size=kernel_size,
        pool_size=pool_size,
        text=num_words is not None,
    )

    model = keras.Sequential(
        first_layers(input_shape, num_words, embedding_dim, embeddings, model="conv1d"),
        name="conv1d",
    )
    for i in range(num_conv):
        if i:
            model.add(layers.MaxPooling1D(pool_size))
        model.add(layers.Conv1D(filters, kernel_size, activation="relu"))
    model.add(layers.GlobalMaxPooling1D())
    model.add(task.head())
    return model


def conv1d_gru(
    *,
    input_shape,
    task,
    filters=32,
    kernel_size=5,
    pool_size=3,
    units=32,
    dropout=0.1,
    recurrent_dropout=0.5,
):
    """The book's 6.4.4 `jena_climate_conv1d_gru`, time series only: 13,793 parameters on 14
    features.

    Conv1D(filters, kernel_size, relu) → MaxPooling1D(pool_size) → Conv1D(filters,
    kernel_size, relu) → GRU(units, dropout, recurrent_dropout) → head.

    Args:
        filters: of both Conv1D layers.
        kernel_size: the window of both Conv1D layers ("valid" padding).
        pool_size: the window of the MaxPooling1D.
        units: the width of the GRU.
        dropout: the GRU's own input dropout rate.
        recurrent_dropout: the GRU's dropout rate on the recurrent state.
    """
    import keras
    from keras import layers

    input_shape = check_series(input_shape, model="conv1d_gru", text_model="conv1d")
    check_int("model.filters", filters, example=32)
    check_int("model.kernel_size", kernel_size, example=5)
    check_int("model.pool_size", pool_size, example=3)
    check_int("model.units", units, example=32)
    check_rate("model.dropout", dropout)
    check_rate("model.recurrent_dropout", recurrent_dropout)
    _check_length(
        input_shape,
        model="conv1d_gru",
        num_conv=2,
        kernel_size=kernel_size,
        pool_size=pool_size,
        text=False,
    )
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv1D(filters, kernel_size, activation="relu"),
            layers.MaxPooling1D(pool_size),
            layers.Conv1D(filters, kernel_size, activation="relu"),
            layers.GRU(units, dropout=dropout, recurrent_dropout=recurrent_dropout),
            task.head(),
        ],
        name="conv1d_gru",
    )


def dense_timeseries(*, input_shape, task, units=32):
    """The book's 6.3.4 `jena_climate_dense`, time series only: Flatten → Dense(units, relu) → head.

    On (240, 14), Jena's lookback 1440 at step 6, it has 107,585 parameters.

    Args:
        units: the width of the hidden Dense(relu).
    """
    import keras
    from keras import layers

    input_shape = check_series(input_shape, model="dense_timeseries", text_model="lstm")
    require(
        input_shape[0] is not None,
        "model=dense_timeseries flattens the window, so it needs a fixed number of timesteps. "
        f"Received: input_shape={list(input_shape)}. Use a recurrent model such as model=gru "
        "for sequences of any length.",
    )
    check_int("model.units", units, example=32)
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Flatten(),
            layers.Dense(units, activation="relu"),
            task.head(),
        ],
        name="dense_timeseries",
    )


def last_value(*, input_shape, task, feature=None):
    """The book's 6.3.3 common-sense baseline as a model: predicts `inputs[:, -1, feature]`.

    "Tomorrow's temperature equals today's": the value of feature `feature` at the window's
    last row. It has no trainable weights, so run it with `trainer.epochs=0`
    (`experiment=jena_climate_naive`): its validation MAE is the book's 0.29 on Jena.

    Args:
        feature: the index of the target among the input features (Jena's `T (degC)` is 1,
            the book's `samples[:, -1, 1]`).
    """
    import keras
    import numpy as np
    from keras import layers

    input_shape = check_series(input_shape, model="last_value", text_model="lstm")
    features = input_shape[1]
    require(
        task.kind == "regression",
        f"model=last_value predicts a value, for regression data such as time series. "
        f"Received: a {task.kind} task. Use it with data=jena_climate or data=csv_timeseries.",
    )
    require(
        is_int(feature) and 0 <= feature < features,
        f"model.feature must be the index of the target among the {features} input features "
        f"(0 to {features - 1}). Received: model.feature={feature!r}. Set e.g. model.feature=1 "
        "(Jena's T (degC)).",
    )
    # Built-in layers only, so that the saved model loads in safe mode (no Lambda). All in
    # float32 whatever the policy (`auto` is mixed_float16 on a GPU): the prediction is a
    # copy of an input, which float16 would round, and a float32 output like every head.
    pick = layers.Dense(1, use_bias=False, trainable=False, dtype="float32", name="pick_feature")
    model = keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Cropping1D((input_shape[0] - 1, 0), dtype="float32"),  # the last row
            layers.Flatten(dtype="float32"),
            pick,
        ],
        name="last_value",
    )
    pick.set_weights([np.eye(features, 1, -feature, dtype="float32")])  # one-hot column
    return model
