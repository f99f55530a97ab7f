"""A trained convnet's conv and pooling layers, and a model from raw images to their outputs.

What the book's 5.4 starts from: `layer_outputs = [layer.output for layer in model.layers[:8]]`
and `activation_model = keras.Model(model.input, layer_outputs)`. Here the layers may also sit
inside a nested backbone (a pretrained run's `conv_base`), and the model returned also gives
the head's input and the predictions, so that Grad-CAM can differentiate a class score.

Keras is imported inside the functions: importing this module costs nothing (`visualize --help`).
"""

from kerasrun.errors import require

# Layer classes by name, so that choosing layers needs no Keras import. Conv layers are what
# `filters` and `gradcam` use; `activations` also shows the pooling layers, as the book does.
CONV_LAYERS = ("Conv2D", "SeparableConv2D", "DepthwiseConv2D")
POOL_LAYERS = ("MaxPooling2D", "AveragePooling2D")
MAX_ACTIVATION_LAYERS = 8  # the book's `model.layers[:8]`: 4 conv and 4 pool layers


def conv_pool_layers(model):
    """`[(layer, owner), ...]`: the model's conv and pooling layers, in order.

    `owner` is the model that holds the layer: `model` itself, or a nested model such as a
    pretrained run's `conv_base` (searched at any depth).
    """
    found = []
    for layer in model.layers:
        if type(layer).__name__ in CONV_LAYERS + POOL_LAYERS:
            found.append((layer, model))
        elif _is_model(layer):
            found += conv_pool_layers(layer)
    return found


def _is_model(layer):
    return hasattr(layer, "layers") and hasattr(layer, "inputs")


def _holds(container, model):
    """Whether `model` is `container` or nested (at any depth) inside it."""
    return container is model or any(
        _holds(layer, model) for layer in container.layers if _is_model(layer)
    )


def _is_conv(layer):
    return type(layer).__name__ in CONV_LAYERS


def choose_layers(model, names, *, kind):
    """The `(layer, owner)` pairs `kind` shows: `names` checked, or the book's defaults.

    Args:
        model: the run's model.
        names: layer names, or `None` for the defaults of `kind`.
        kind: `"activations"` (conv and pooling layers), `"filters"` or `"gradcam"` (conv).

    Raises:
        ConfigError: a name is not a conv (or, for activations, pooling) layer of the model;
            the message lists the ones there are.
    """
    candidates = conv_pool_layers(model)
    if kind != "activations":
        candidates = [(layer, owner) for layer, owner in candidates if _is_conv(layer)]
    what = "conv/pool" if kind == "activations" else "conv"
    require(
        candidates,
        f"kind={kind} needs a model with {what} layers; {model.name} has none. Choose a run "
        "with a convnet.",
    )
    if names is None:
        return _default_layers(candidates, kind)
    by_name = {layer.name: (layer, owner) for layer, owner in candidates}
    unknown = [n for n in names if n not in by_name]
    key, received = ("layer", names[0]) if kind == "gradcam" else ("layers", names)
    require(
        not unknown,
        f"{key} must name {what} layers of the model: {name_list(list(by_name))}. "
        f"Received: {key}={received} ({', '.join(unknown)} is not one). Choose from these names.",
    )
    return [by_name[n] for n in names]


def name_list(names, most=24):
    """`a, b, c`; a long list (a backbone's) as its first and last names around a count."""
    if len(names) <= most:
        return ", ".join(names)
    half = most // 2
    hidden = len(names) - 2 * half
    return f"{', '.join(names[:half])}, ... ({hidden} more), {', '.join(names[-half:])}"


def _default_layers(candidates, kind):
    if kind == "activations":
        return candidates[:MAX_ACTIVATION_LAYERS]
    if kind == "gradcam":  # the last conv layer: the most abstract one that still has a map
        return candidates[-1:]
    # filters: the first conv layer at each resolution, i.e. the first of each block
    # (VGG16: block1_conv1 ... block5_conv1, the layers the book shows).
    chosen, sizes = [], set()
    for layer, owner in candidates:
        size = tuple(layer.output.shape[1:3])
        if size not in sizes:
            sizes.add(size)
            chosen.append((layer, owner))
    return chosen[:MAX_ACTIVATION_LAYERS]


def feature_model(model, chosen):
    """A `keras.Model`: raw images → `[outputs of the chosen layers..., head input, predictions]`.

    Like the book's activation model, but built on a fresh trace of `model`'s graph: a
    `Sequential` re-adds its layers on every `add()`, so `layer.output` is often a tensor of an
    older graph, from which the predictions cannot be reached (and Grad-CAM's gradient would
    be `None`). Layers of a nested backbone are reached by replacing its call in the trace with
    a backbone that also returns them, so one differentiable model goes from the raw image to
    the layer outputs and the predictions. The head's input is there for Grad-CAM's logits.

    Args:
        model: the run's model.
        chosen: `(layer, owner)` pairs from `choose_layers`, all of one owner.
    """
    import keras

    owners = {id(owner): owner for _, owner in chosen}
    require(
        len(owners) == 1,
        "visualize shows layers of one model at a time (the model or its backbone). "
        f"Received: layers={[layer.name for layer, _ in chosen]}. Choose layers of one of them.",
    )
    (owner,) = owners.values()
    wanted = [layer for layer, _ in chosen]
    child = None
    if owner is not model:  # the layer of `model` that holds the backbone
        child = next(layer for layer in model.layers if _is_model(layer) and _holds(layer, owner))
        inner = feature_model(child, chosen)
    found = {}

    def call(layer, *args, **kwargs):
        if layer is child:
            *features, _, output = inner(*args, **kwargs)
            found.update(zip(map(id, wanted), features, strict=True))
            return output
        if layer is model.layers[-1]:
            found["head_input"] = args[0]
        output = layer(*args, **kwargs)
        if any(layer is w for w in wanted):
            found[id(layer)] = output
        return output

    inputs, outputs = _trace(model, call)
    features = [found[id(layer)] for layer in wanted]
    return keras.Model(inputs, features + [found["head_input"], outputs])


def _trace(model, call):
    """`model`'s graph rebuilt on a new input, each layer applied with `call(layer, x, ...)`.

    Returns:
        `(inputs, output)`, for models of one input and one output (all of kerasrun's).
    """
    import keras

    if isinstance(model, keras.Sequential):
        inputs = keras.Input(batch_shape=model.inputs[0].shape, dtype=model.inputs[0].dtype)
        x = inputs
        for layer in model.layers:
            x = call(layer, x)
        return inputs, x
    # The layers themselves (not copies), called through `call`: the same weights.
    clone = keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call)
    return clone.input, clone.output
