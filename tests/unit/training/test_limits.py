"""`trainer.limit` and `trainer.test_steps`: what keeps `debug=default` small in every phase.
The real runs under `debug=default` are in tests/cli/test_debug.py."""

import numpy as np
import pytest

from kerasrun.data import DataBundle
from kerasrun.errors import ConfigError
from kerasrun.training.limits import apply_limit, check_limit
from kerasrun.training.recipe import evaluate_and_save


def run_config(model, limit, **trainer):
    trainer = {"kfold": None, "final_epochs": None, "limit": limit, **trainer}
    return {"trainer": trainer, "model": model}


def test_the_limit_lowers_what_a_model_or_an_experiment_set():
    finetune = {"name": "vgg16_finetune", "unfreeze_from": "block5_conv1", "fine_tune_epochs": 100}
    limit = {"epochs": 1, "folds": 2, "samples": 4}
    config = apply_limit(run_config(finetune, limit, kfold=4, final_epochs=80))
    assert config["model"]["fine_tune_epochs"] == 1 and config["trainer"]["final_epochs"] == 1
    # A sampler's size that its YAML leaves to the default (text_generation's 400 characters).
    text = apply_limit(run_config({"name": "text_generation", "samples": {}}, limit))
    assert text["model"]["samples"] == {"length": 4}
    vae = apply_limit(run_config({"name": "vae", "samples": {"grid_size": 3}}, limit))
    assert vae["model"]["samples"] == {"grid_size": 3}  # under the cap: as it was
    # No cap, or nothing it applies to: the config as it was (no fine-tuning, no K-fold).
    unlimited = run_config(finetune, {"epochs": None, "folds": None, "samples": None})
    assert apply_limit(unlimited) == unlimited
    plain = run_config({"name": "convnet"}, limit, final_epochs=80)
    assert apply_limit(plain) == plain


@pytest.mark.parametrize(
    "limit, received",
    [
        ({"epochs": 0}, "trainer.limit.epochs=0"),
        ({"epoch": 1}, "trainer.limit=['epoch']"),
        (3, "trainer.limit=3"),
    ],
)
def test_a_bad_limit_is_one_line(limit, received):
    with pytest.raises(ConfigError, match="trainer.limit") as excinfo:
        check_limit({"limit": limit})
    assert received in str(excinfo.value) and "\n" not in str(excinfo.value)


def test_test_steps_bound_the_evaluation(tmp_path):
    import keras
    import tensorflow as tf

    # A model that always answers class 0, on a test split whose first 2 batches are class 0
    # and whose last 2 are class 1: 2 steps score 1.0, the whole split 0.5.
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, activation="sigmoid")])
    model.layers[0].set_weights([np.zeros((1, 1)), np.array([-10.0])])
    model.compile(loss="binary_crossentropy", metrics=["accuracy"])
    labels = np.array([0] * 8 + [1] * 8, "int32")
    test = tf.data.Dataset.from_tensor_slices((np.zeros((16, 1), "float32"), labels)).batch(4)
    data = DataBundle(None, None, test, input_shape=(1,), task="binary")
    history = {"loss": [0.5], "val_loss": [0.5]}
    accuracy = {}
    for steps in (2, None):
        config = {"trainer": {"kfold": None, "test_steps": steps}, "monitor": "val_loss"}
        metrics = evaluate_and_save(
            model, data, history, config=config, run_dir=tmp_path, started=0.0
        )
        accuracy[steps] = metrics["test_accuracy"]
    assert accuracy == {2: 1.0, None: 0.5}
