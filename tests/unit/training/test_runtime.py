"""Runtime resolution: what `auto` becomes on this machine, and the checks before it."""

import keras
import pytest

from kerasrun.errors import ConfigError
from kerasrun.training import runtime


@pytest.fixture(autouse=True)
def float32_afterwards():
    yield
    keras.mixed_precision.set_global_policy("float32")


def test_auto_on_a_cpu_is_float32_without_xla_on_one_replica():
    rt, strategy = runtime.resolve()
    assert (rt.devices, rt.precision, rt.jit_compile, rt.strategy) == (
        "CPU",
        "float32",
        False,
        "default",
    )
    assert rt.num_replicas == strategy.num_replicas_in_sync == 1
    assert rt.is_chief and keras.mixed_precision.global_policy().name == "float32"


@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_an_explicit_precision_is_applied_to_keras(precision):
    rt, _ = runtime.resolve(precision=precision, jit_compile=True)
    assert rt.precision == precision and rt.jit_compile is True
    policy = keras.mixed_precision.global_policy()
    assert policy.name == precision and policy.variable_dtype == "float32"


def test_a_new_job_resets_the_policy_a_sequential_sweep_left():
    runtime.resolve(precision="mixed_float16")
    runtime.resolve(precision="float32")
    assert keras.mixed_precision.global_policy().name == "float32"


def test_set_up_records_the_global_batch_and_the_learning_rate_scale():
    trainer = {"precision": "auto", "jit_compile": "auto", "strategy": "auto"}
    rt, _ = runtime.set_up({**trainer, "scale_learning_rate": "linear"}, seed=1, batch_size=16)
    assert (rt.per_replica_batch, rt.global_batch, rt.learning_rate_scale) == (16, 16, 1.0)
    rt.num_replicas = 4  # what a 4-GPU machine would report
    assert runtime.scale_batch_and_learning_rate(rt, 16, "linear") == 64
    assert rt.learning_rate_scale == 4.0
    assert runtime.scaled_learning_rate(1e-3, rt.learning_rate_scale) == pytest.approx(4e-3)
    with pytest.raises(ConfigError, match="needs a number as optimizer.learning_rate"):
        runtime.scaled_learning_rate("fast", 4.0)


def test_a_command_gets_trains_set_up_with_the_runs_precision_and_seed():
    import numpy as np

    keras.layers.Dense(1)  # a name taken before: the command's session starts afresh
    rt = runtime.set_up_command({"runtime": {"precision": "mixed_float16"}, "seed": 7})
    assert (rt.devices, rt.precision, rt.num_replicas) == ("CPU", "mixed_float16", 1)
    assert keras.mixed_precision.global_policy().name == "mixed_float16"
    assert keras.layers.Dense(1).name == "dense"
    drawn = np.random.rand(3)
    runtime.set_up_command({"runtime": {"precision": "mixed_float16"}, "seed": 7})
    assert (np.random.rand(3) == drawn).all()  # seeded by the run's seed
    runtime.set_up_command({"runtime": {"precision": "mixed_float16"}, "seed": 8})
    assert (np.random.rand(3) != drawn).all()

    # A run saved before `runtime` was recorded: its trainer's precision. No run: float32.
    assert runtime.set_up_command({"trainer": {"precision": "mixed_bfloat16"}}).precision == (
        "mixed_bfloat16"
    )
    assert runtime.set_up_command().precision == "float32"
    assert keras.mixed_precision.global_policy().name == "float32"


@pytest.mark.parametrize(
    "trainer, message",
    [
        ({"precision": "float16"}, "trainer.precision must be one of auto, float32"),
        ({"strategy": "tpu"}, "trainer.strategy must be one of auto, default"),
        ({"jit_compile": "yes"}, "trainer.jit_compile must be auto, true or false"),
        ({"cpu_replicas": 0}, "trainer.cpu_replicas must be a positive integer or null"),
        ({"cpu_replicas": True}, "trainer.cpu_replicas must be a positive integer or null"),
        ({"scale_learning_rate": "sqrt"}, "trainer.scale_learning_rate must be false or linear"),
    ],
)
def test_check_trainer_names_the_key(trainer, message):
    with pytest.raises(ConfigError, match=message):
        runtime.check_trainer(trainer)


def test_a_worker_writes_into_a_directory_of_its_own(tmp_path):
    config = {"logger": {"csv": {"filename": str(tmp_path / "history.csv")}}, "seed": 0}
    chief = runtime.Runtime("CPU", "float32", False, "multi_worker", 2)
    assert runtime.own_run_dir(config, tmp_path, chief) == (config, tmp_path)
    worker = runtime.Runtime("CPU", "float32", False, "multi_worker", 2, is_chief=False)
    moved, own_dir = runtime.own_run_dir(config, tmp_path, worker)
    try:
        assert own_dir != tmp_path and own_dir.is_dir()
        assert moved["logger"]["csv"]["filename"] == str(own_dir / "history.csv")
        assert config["logger"]["csv"]["filename"] == str(tmp_path / "history.csv")
    finally:
        runtime.remove_own_run_dir(own_dir, worker, tmp_path)
    assert not own_dir.exists() and tmp_path.is_dir()
