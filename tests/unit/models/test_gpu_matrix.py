"""The GPU matrix, run on the CPU: what `auto` gives a GPU user, for every model option.

Every option of `conf/model/` (composed by Hydra from the real `conf/`, made tiny) is built
and compiled by `ModelRecipe`, as `train` does, after `runtime.set_up`, and trains a few
steps with SGD under each setting of `SETTINGS`: every precision, XLA off and on (on in
`auto`'s GPU combination, mixed_float16 + XLA), and one against two replicas
(`trainer.strategy=mirrored trainer.cpu_replicas=2`).

Splitting the CPU into two devices must happen before TensorFlow starts its devices, which
a pytest worker that runs other test files cannot promise; so ONE subprocess (this file run
as a script) trains every model under every setting and writes what it saw to a JSON
report, and the tests below judge it, one per model and property.
"""

import copy
import functools
import gc
import json
import math
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pytest

from helpers import REPO, subprocess_env
from kerasrun.config.compose import conf_dir, plain
from kerasrun.data.bundle import DataBundle
from kerasrun.training import runtime
from kerasrun.training.recipe import ModelRecipe

pytestmark = pytest.mark.slow  # one subprocess trains 26 models (~3 min of CPU)

BATCH = 4  # one replica's batch (data.batch_size)
STEPS = 12  # at most: a LossScaleOptimizer may skip overflowing steps before it applies one
COMPUTE = {"float32": "float32", "mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}
# (trainer.precision, trainer.jit_compile): every value of every axis for every model, not
# the product (CI's budget: each setting costs a build, a trace, and with XLA a compilation).
# mixed_float16 runs as auto's GPU combination, with XLA; the first setting is the reference
# the others' first updates are compared with; the replicas run float32 without XLA.
SETTINGS = {
    "float32": ("float32", False),
    "mixed_bfloat16": ("mixed_bfloat16", False),
    "mixed_float16+xla": ("mixed_float16", True),  # what `auto` resolves to on a GPU
}
# model option: (its input, the task, overrides that make it tiny and deterministic). Inputs:
# images (h, w, c) in [0, 255]; ("words", maxlen) word indices below 30; ("onehot", maxlen,
# n_chars); any other shape a normal series. Dropout 0 where the model has a key for it, so
# that each setting's first update can be compared with float32's.
TINY = ["model.units=8", "model.dropout=0"]
VGG16 = ["model.weights=null", "model.pooling=avg", *TINY]
WORDS = ["model.num_words=30", "model.embedding_dim=4"]
CASES = {
    "convnet": ((8, 8, 1), "multiclass", ["model.filters=[4,8]", *TINY]),
    "small_convnet": ((48, 48, 3), "binary", []),
    "mnist_convnet": ((28, 28, 1), "multiclass", []),
    "pretrained": ((32, 32, 3), "multiclass", VGG16),
    "vgg16_feature_extraction": ((32, 32, 3), "binary", VGG16),
    "vgg16_finetune": ((32, 32, 3), "binary", VGG16),
    "lenet": ((28, 28, 1), "multiclass", []),
    "alexnet": ((16, 16, 3), "multiclass", TINY),
    "vgg": ((32, 32, 3), "multiclass", ["model.depth=11", *TINY]),
    "nin": ((16, 16, 3), "multiclass", ["model.dropout=0"]),
    "separable_convnet": ((32, 32, 3), "multiclass", []),
    "inception_small": ((8, 8, 3), "multiclass", ["model.width=0.25", "model.dropout=0"]),
    "resnet_small": ((8, 8, 3), "multiclass", ["model.filters=4"]),
    "densenet_small": ((8, 8, 3), "multiclass", ["model.blocks=[1,1]", "model.growth_rate=4"]),
    "vae": ((8, 8, 1), "multiclass", ["model.seed=0"]),
    "dcgan": (
        (24, 24, 1),
        "multiclass",
        [
            "model.latent_dim=4",
            "model.generator_filters=8",
            "model.discriminator_filters=8",
            "model.dropout=0",
            "model.seed=0",
        ],
    ),
    "mlp": ((10,), "binary", ["model.units=[4]"]),
    "embedding_flatten": (("words", 12), "binary", ["model.num_words=30"]),
    "simple_rnn": (("words", 12), "binary", [*WORDS, "model.units=4"]),
    "lstm": (("words", 12), "binary", [*WORDS, "model.units=[4]"]),
    "gru": ((12, 3), "regression", ["model.units=[4]"]),
    "conv1d": (
        ("words", 30),
        "binary",
        [*WORDS, "model.filters=4", "model.kernel_size=3", "model.pool_size=2"],
    ),
    "conv1d_gru": (
        (30, 3),
        "regression",
        ["model.filters=4", "model.units=4", "model.dropout=0", "model.recurrent_dropout=0"],
    ),
    "dense_timeseries": ((12, 3), "regression", ["model.units=4"]),
    "last_value": ((12, 3), "regression", ["model.feature=1"]),
    "text_generation": (("onehot", 10, 5), "multiclass", ["model.units=4"]),
}
MODELS = sorted(CASES)


def test_every_model_option_is_in_the_matrix():
    assert MODELS == sorted(p.stem for p in (REPO / "conf" / "model").glob("*.yaml"))


# --- the tests: they judge what the subprocess saw --------------------------------------------


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """`{model: {setting: facts, "replicas": facts}}` from one subprocess (see `main`)."""
    path = tmp_path_factory.mktemp("gpu_matrix") / "report.json"
    env = subprocess_env()
    env["PYTHONPATH"] += f":{REPO / 'tests'}"  # `import helpers`, as pytest's pythonpath does
    # XLA compiles the same programs with less LLVM optimisation: a third less CPU time for
    # the XLA settings, the same updates (this suite checks results, not speed).
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0".strip()
    result = subprocess.run(
        [sys.executable, __file__, str(path)],
        capture_output=True,
        text=True,
        timeout=1800,
        env=env,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    return json.loads(path.read_text())


def each_setting(report, name):
    assert set(report[name]) == {*SETTINGS, "replicas"}, report[name].get("error")
    return [(setting, report[name][setting]) for setting in SETTINGS]


@pytest.mark.parametrize("name", MODELS)
def test_every_setting_trains_with_finite_losses(report, name):
    for setting, seen in each_setting(report, name):
        assert seen["losses"], setting
        for key, values in seen["losses"].items():
            assert all(math.isfinite(v) for v in values), (setting, key, values)


@pytest.mark.parametrize("name", MODELS)
def test_hidden_layers_compute_in_the_policys_dtype(report, name):
    """Every layer with weights, but the outputs of the model and its sub-models (heads,
    the VAE's z_mean and z_log_var), computes in the precision's dtype."""
    for setting, seen in each_setting(report, name):
        assert seen["policy"] == SETTINGS[setting][0]
        if name != "last_value":  # no hidden layer: a float32 copy of an input
            assert seen["hidden"], setting
        compute = COMPUTE[seen["policy"]]
        wrong = {layer: dtype for layer, dtype in seen["hidden"].items() if dtype != compute}
        assert not wrong, (setting, wrong)


@pytest.mark.parametrize("name", MODELS)
def test_every_output_is_float32(report, name):
    """`model(x)`, and the images a VAE's decoder or a GAN's generator makes."""
    for setting, seen in each_setting(report, name):
        assert seen["outputs"] and set(seen["outputs"].values()) == {"float32"}, (setting, seen)


@pytest.mark.parametrize("name", MODELS)
def test_mixed_float16_scales_the_loss_of_every_optimizer(report, name):
    """A LossScaleOptimizer (both of a GAN's), whose scale is applied: without `scale_loss`
    in a `train_step` the update would be 2**15 times too small (judged against float32 in
    `test_every_setting_updates_the_weights_as_float32_does`)."""
    for setting, seen in each_setting(report, name):
        expected = "LossScaleOptimizer" if seen["policy"] == "mixed_float16" else "SGD"
        count = 2 if name == "dcgan" else 1
        assert seen["optimizers"] == [expected] * count, setting
        if expected == "LossScaleOptimizer":
            assert all(scale > 1 for scale in seen["loss_scales"]), (setting, seen)


@pytest.mark.parametrize("name", MODELS)
def test_every_setting_updates_the_weights_as_float32_does(report, name):
    """The first SGD step, per optimizer's weights (a GAN's generator and discriminator),
    has float32's size under every setting: the loss scale is undone exactly once (a loss
    left unscaled gives 2**-15 of it). The bounds are loose because XLA draws other random
    numbers: the VAE's noise and the GAN's latent points differ, and so does the step."""
    reference = report[name]["float32"]["updates"]
    if name == "last_value":
        assert reference == {}  # nothing to train: the book's baseline as a model
    for setting, seen in each_setting(report, name):
        assert set(seen["updates"]) == set(reference), setting
        for part, size in seen["updates"].items():
            assert reference[part] > 0, (part, reference)
            assert 0.25 < size / reference[part] < 4, (setting, part, size, reference[part])


@pytest.mark.parametrize("name", MODELS)
def test_xla_is_compiled_where_asked(report, name):
    for setting, seen in each_setting(report, name):
        assert seen["jit_compile"] is SETTINGS[setting][1], setting


@pytest.mark.parametrize("name", MODELS)
def test_one_and_two_replicas_make_the_same_update(report, name):
    """Two replicas, each given the one-replica batch (a global batch of it twice), make
    the same first SGD step as one replica: the replicas' gradients are averaged, not
    summed. (The same examples per replica keep BatchNormalization's batch statistics and
    the seeded noise of a VAE or GAN equal to one replica's.)"""
    seen = report[name]["replicas"]
    assert seen["num_replicas"] == 2
    if name == "last_value":
        return  # no trainable weights
    assert seen["largest_update"] > 0
    assert seen["largest_difference"] <= 1e-3 * seen["largest_update"], seen


# --- the subprocess: train every model under every setting and write what it saw ------------


def inputs(shape, task, n=BATCH):
    """`(input_shape, class_names, x, y)`: a small batch of what the model reads."""
    rng = np.random.default_rng(0)
    if shape[0] == "words":
        input_shape, x = (shape[1],), rng.integers(1, 30, size=(n, shape[1])).astype("int32")
    elif shape[0] == "onehot":
        _, maxlen, chars = shape
        input_shape = (maxlen, chars)
        x = np.eye(chars, dtype="float32")[rng.integers(0, chars, size=(n, maxlen))]
    elif len(shape) == 3:
        input_shape, x = shape, rng.uniform(0, 255, size=(n, *shape)).astype("float32")
    else:
        input_shape, x = shape, rng.normal(size=(n, *shape)).astype("float32")
    classes = {"multiclass": input_shape[-1] if shape[0] == "onehot" else 3, "binary": 2}
    num_classes = classes.get(task, 0)
    if num_classes:
        y = (np.arange(n) % num_classes).astype("int32")
    else:
        y = np.linspace(-1, 1, n).astype("float32")
    return tuple(input_shape), [str(i) for i in range(num_classes)], x, y


@functools.cache
def compose_config(name):
    """The run config of `train model=<name> optimizer=sgd ...` (its tiny overrides), plain."""
    from hydra import compose, initialize_config_dir

    overrides = [f"model={name}", "optimizer=sgd", "optimizer.momentum=0.0", *CASES[name][2]]
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    # Only the nodes a model needs: paths.* interpolate ${hydra:...}, set only in a real run.
    return {key: plain(cfg[key]) for key in ("model", "trainer", "optimizer", "seed")}


def weight_parts(model):
    """Trainable weights by optimizer: a GAN's generator and discriminator apart."""
    parts = ("encoder", "decoder", "generator", "discriminator")
    subs = [getattr(model, part) for part in parts if hasattr(model, part)]
    groups = {sub.name: sub.trainable_variables for sub in subs} or {
        "model": model.trainable_variables
    }
    return {part: weights for part, weights in groups.items() if weights}


def hidden_dtypes(model):
    """`{layer path: dtype of its output}` of every layer with weights in `model` and its
    functional sub-models, but the layers that make a (sub-)model's outputs."""
    import keras

    outputs = {id(t._keras_history.operation) for t in getattr(model, "outputs", None) or []}
    found = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found.update(hidden_dtypes(layer))
        elif layer.weights and id(layer) not in outputs:
            found[f"{model.name}/{layer.name}"] = keras.backend.standardize_dtype(
                layer.output.dtype
            )
    return found


def output_dtypes(model, x):
    import keras

    dtype = keras.backend.standardize_dtype
    outputs = {"model": dtype(model(x).dtype)}
    for part in ("decoder", "generator"):  # what image_samples shows each epoch
        if hasattr(model, part):
            sub = getattr(model, part)
            outputs[part] = dtype(sub(np.zeros((2, *sub.input.shape[1:]), "float32")).dtype)
    return outputs


MIRRORED = {}


def train_a_few_steps(name, precision, jit_compile, *, strategy="default", initial=None):
    """Builds model `name` as `train` does, trains 3 SGD steps on one batch (twice over
    when the strategy has two replicas); returns `(model, facts, initial weights, first
    update)`."""
    import keras
    import tensorflow as tf

    started = time.process_time()
    config = copy.deepcopy(compose_config(name))
    trainer = dict(config["trainer"], precision=precision, jit_compile=jit_compile)
    trainer.update(strategy=strategy, cpu_replicas=2)  # the split is made once, at the start
    rt, dist = runtime.set_up(trainer, seed=0, batch_size=BATCH)
    if strategy == "mirrored":
        # One MirroredStrategy for every model: a second one in the process restarts the
        # collective ops' instance keys and the all-reduce fails ("Shape mismatch in the
        # collective instance 100").
        dist = MIRRORED.setdefault("strategy", dist)
    shape, task = CASES[name][:2]
    input_shape, class_names, x, y = inputs(shape, task)
    data = DataBundle.from_splits({}, input_shape=input_shape, task=task, class_names=class_names)
    recipe = ModelRecipe(dict(config, trainer=trainer), data, rt, dist)
    model = recipe.build()
    rt.jit_compile = runtime.effective_jit_compile(model, rt.jit_compile)
    if initial is None:
        initial = model.get_weights()
    else:
        model.set_weights(initial)
    replicas = rt.num_replicas
    batch = (np.concatenate([x] * replicas), np.concatenate([y] * replicas))
    dataset = tf.data.Dataset.from_tensor_slices(batch).batch(rt.global_batch).repeat()
    parts = weight_parts(model)
    before = {part: [v.numpy() for v in weights] for part, weights in parts.items()}

    class FirstUpdate(keras.callbacks.Callback):
        """Each part's first update, and the steps before it: a LossScaleOptimizer skips
        a step whose scaled gradients overflow float16 (and halves its scale), as on a GPU;
        the weights are then unchanged, so its first update is on float32's first batch."""

        update, skipped = {}, {}

        def on_train_batch_end(self, batch, logs=None):
            for part, weights in parts.items():
                if part not in self.update:
                    changes = [v.numpy() - b for v, b in zip(weights, before[part], strict=True)]
                    if any(change.any() for change in changes):
                        self.update[part] = np.concatenate([c.ravel() for c in changes])
                        self.skipped[part] = batch
            if batch and len(self.update) == len(parts):  # a few steps, each part updated
                self.model.stop_training = True

    first = FirstUpdate()
    history = model.fit(dataset, steps_per_epoch=STEPS, epochs=1, verbose=0, callbacks=[first])
    update = {part: first.update.get(part, np.zeros(1)) for part in parts}
    optimizers = [model.optimizer] + ([model.g_optimizer] if hasattr(model, "g_optimizer") else [])
    facts = {
        "policy": keras.config.dtype_policy().name,
        "jit_compile": bool(model.jit_compile),
        "num_replicas": replicas,
        "losses": {k: [float(v) for v in vs] for k, vs in history.history.items()},
        "hidden": hidden_dtypes(model),
        "outputs": output_dtypes(model, x),
        "optimizers": [type(o).__name__ for o in optimizers],
        "loss_scales": [float(o.dynamic_scale) for o in optimizers if hasattr(o, "dynamic_scale")],
        "updates": {part: float(np.linalg.norm(u)) for part, u in update.items()},
        "skipped_steps": first.skipped,
        "cpu_seconds": time.process_time() - started,
    }
    return facts, initial, update


def measure(name):
    """What model `name` did under every setting, and with two replicas."""
    seen, initial = {}, None
    for setting, (precision, jit_compile) in SETTINGS.items():
        facts, initial, update = train_a_few_steps(name, precision, jit_compile, initial=initial)
        seen[setting] = facts
        if setting == "float32":
            one_replica = update
    facts, _, two_replicas = train_a_few_steps(
        name, "float32", False, strategy="mirrored", initial=initial
    )
    largest = max([np.abs(u).max() for u in one_replica.values()], default=0.0)
    difference = max(
        [np.abs(two_replicas[p] - u).max() for p, u in one_replica.items()], default=0.0
    )
    seen["replicas"] = {
        "cpu_seconds": facts["cpu_seconds"],
        "num_replicas": facts["num_replicas"],
        "largest_update": float(largest),
        "largest_difference": float(difference),
    }
    return seen


def main(path, names=MODELS):
    """Writes the report of models `names` to `path` (run by the `report` fixture; by hand:
    `python tests/unit/models/test_gpu_matrix.py report.json vae dcgan`)."""
    report = {}
    for name in names:
        # Keras's clear_session(), in every set_up, runs gc.collect() over every object
        # TensorFlow holds (~0.5 s each time); the models before this one are done with.
        gc.collect()
        gc.freeze()
        started = time.process_time()
        try:
            report[name] = measure(name)
        except Exception:  # the tests of this model fail with it; the others still run
            report[name] = {"error": traceback.format_exc()}
            print(report[name]["error"], file=sys.stderr)
        print(f"{name}: {time.process_time() - started:.1f} s of CPU", flush=True)
    Path(path).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:] or MODELS)
