"""`Fit` and the book's second phase (5.3.2): fine-tuning recompiles the model as the run's
runtime compiled it in phase 1.

Real Hydra composition of `model=vgg16_finetune` (random weights, 32x32), built and compiled
by `ModelRecipe` as `train` does, trained by `Fit` and `fine_tune` in this process.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from hydra import compose, initialize_config_dir

from kerasrun.config.compose import conf_dir, plain
from kerasrun.data.bundle import DataBundle
from kerasrun.training import runtime
from kerasrun.training.callbacks import RunCallbacks
from kerasrun.training.fit import Fit, fine_tune
from kerasrun.training.recipe import ModelRecipe


@pytest.fixture(autouse=True)
def float32_afterwards():
    yield
    keras.mixed_precision.set_global_policy("float32")


def tiny_vgg16_finetune(*overrides):
    """The plain config of `train model=vgg16_finetune` with random weights, made small."""
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "model=vgg16_finetune",
                "model.weights=null",
                "model.units=8",
                "model.pooling=avg",
                *overrides,
            ],
        )
    # Only what a model needs: paths.* interpolate ${hydra:...}, set only in a real run.
    return {key: plain(cfg[key]) for key in ("model", "trainer", "optimizer", "seed")}


@pytest.mark.slow  # two XLA compilations of VGG16 (~15 s)
def test_fine_tuning_recompiles_with_the_precision_and_xla_of_phase_1():
    """What `auto` gives a GPU user, mixed_float16 + XLA, holds in phase 2 too: a
    LossScaleOptimizer at the fine-tuning learning rate, and XLA as phase 1 had it."""
    config = tiny_vgg16_finetune("trainer.precision=mixed_float16", "trainer.jit_compile=true")
    rt, strategy = runtime.set_up(config["trainer"], seed=0, batch_size=4)
    data = DataBundle.from_splits(
        {}, input_shape=(32, 32, 3), task="binary", class_names=["cats", "dogs"]
    )
    recipe = ModelRecipe(config, data, rt, strategy)
    model = recipe.build()
    rt.jit_compile = runtime.effective_jit_compile(model, rt.jit_compile)  # as train does
    assert rt.jit_compile is True

    images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices((images, np.array([0, 1, 0, 1]))).batch(4)
    fit = Fit(model, dataset, None, RunCallbacks([], None, None, None, None))
    history = fit.first_phase(1)
    phase_1 = model.optimizer
    block5_conv1 = model.get_layer("conv_base").get_layer("block5_conv1")
    before = block5_conv1.kernel.numpy()

    model_config = config["model"]
    history = fine_tune(
        fit,
        history,
        recipe.compile,
        unfreeze_from=model_config["unfreeze_from"],
        epochs=1,
        learning_rate=model_config["fine_tune_learning_rate"],
    )
    assert len(history["loss"]) == 2 and np.isfinite(history["loss"]).all()
    optimizer = model.optimizer
    assert optimizer is not phase_1  # recompiled
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    assert float(optimizer.learning_rate) == pytest.approx(1e-5)
    assert int(optimizer.iterations) == 1  # phase 2's step went through the loss scale
    assert model.jit_compile is rt.jit_compile is True
    # The unfrozen block trained in phase 2, still computing in float16.
    assert block5_conv1.trainable and not np.array_equal(block5_conv1.kernel.numpy(), before)
    assert keras.backend.standardize_dtype(block5_conv1.output.dtype) == "float16"
