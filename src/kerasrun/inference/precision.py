"""A model trained under mixed precision, computing in float32 for a runtime that cannot
compute like TensorFlow in float16 (`export-model format=tflite` or `onnx`).

    serving = float32_copy(model)      # same weights, every layer's policy float32
    compute_dtype(model)               # "float16" under mixed_float16, else "float32"
"""

from kerasrun.models.pretrained import custom_objects


def float32_copy(model):
    """`model` computing in float32 with the same weights, or `model` itself when it does.

    Under `mixed_float16` the weights are float32 already (only the computation is float16),
    so nothing is lost: every layer's saved dtype policy becomes float32 in the model's
    config, the copy is built from it and takes the model's weights, variable by variable.
    """
    import keras

    config = keras.saving.serialize_keras_object(model)
    policies = _mixed_policies(config)
    if not policies:
        return model
    for policy in policies:
        policy["name"] = "float32"
    # What the config leaves to the global policy (a Sequential's own) is float32 too.
    global_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        copy = keras.saving.deserialize_keras_object(
            config, custom_objects=custom_objects(), safe_mode=True
        )
    finally:
        keras.mixed_precision.set_global_policy(global_policy)
    paths = [v.path for v in model.weights]
    if [v.path for v in copy.weights] != paths:  # set_weights goes by position
        raise RuntimeError(f"The float32 copy of {model.name} does not have its variables.")
    copy.set_weights(model.get_weights())
    return copy


def compute_dtype(model):
    """`"float32"`, or the lower precision some of its layers compute in (`"float16"`, ...)."""
    import keras

    config = keras.saving.serialize_keras_object(model)
    names = sorted({policy["name"] for policy in _mixed_policies(config)})
    return names[0].removeprefix("mixed_") if names else "float32"


def _mixed_policies(config):
    # The config dicts of every mixed DTypePolicy in a serialized model, nested models too.
    if isinstance(config, list):
        return [policy for value in config for policy in _mixed_policies(value)]
    if not isinstance(config, dict):
        return []
    policy = config.get("config")
    if config.get("class_name") == "DTypePolicy" and isinstance(policy, dict):
        return [policy] if str(policy.get("name", "")).startswith("mixed_") else []
    return [policy for value in config.values() for policy in _mixed_policies(value)]
