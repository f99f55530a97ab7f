"""Precision, XLA and the distribution strategy: resolved once per run, logged and saved.

`auto` means what is fastest on the hardware: on a GPU, mixed precision and XLA; on a
CPU, float32 and no XLA (on a 2-core CPU XLA made the book's convnet 2.5x slower and
bfloat16 was slower still).

Several devices and machines, on TensorFlow's own engine (`tf.distribute`):

- `strategy=mirrored`: every local GPU (or, for a test on a CPU, `trainer.cpu_replicas`
  logical CPU devices), one replica each.
- `strategy=multi_worker`: `MultiWorkerMirroredStrategy` over the machines in `TF_CONFIG`,
  or in the SLURM job (`SlurmClusterResolver`) when there is no `TF_CONFIG`.

`data.batch_size` is the batch of ONE replica (what one GPU sees, as in the book); the
dataset is batched by the global batch, `data.batch_size` × replicas, which tf.distribute
splits between them. `trainer.scale_learning_rate=linear` multiplies the learning rate by
the number of replicas (the linear scaling rule, for a larger global batch).
"""

import json
import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from kerasrun import console
from kerasrun.config.compose import move_paths
from kerasrun.errors import ConfigError, check_int, is_number

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("auto", "default", "mirrored", "one_device", "multi_worker")


@dataclass
class Runtime:
    """What `trainer.*: auto` resolved to on this machine."""

    devices: str
    precision: str
    jit_compile: bool
    strategy: str
    num_replicas: int
    # CUDA_VISIBLE_DEVICES as the job saw it (hydra/launcher=processes gives each job a GPU).
    cuda_visible_devices: str = None
    process_id: int = None
    # Set by `train` once the data is known: what one replica sees, and the whole step's.
    per_replica_batch: int = None
    global_batch: int = None
    learning_rate_scale: float = 1.0
    # multi_worker: this process's place in the cluster; only the chief writes the run.
    task: str = None
    num_workers: int = 1
    is_chief: bool = True

    def as_dict(self):
        return asdict(self)


def import_tensorflow_quietly():
    """Imports TensorFlow with its C++ start-up chatter (oneDNN, CUDA probing) kept off the console.

    `TF_CPP_MIN_LOG_LEVEL` no longer silences the lines absl writes before it is
    initialised, so stderr is pointed at a temporary file for the import; what was
    written there is replayed only if the import fails.
    """
    import sys
    import tempfile

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")  # the CUDA probe logs here
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def cluster_task(strategy):
    """`(task_type, task_id, num_workers)` of this process in a `multi_worker` job.

    Read from `TF_CONFIG`, else from SLURM's variables (as `SlurmClusterResolver` reads
    them), without importing TensorFlow: `train` needs it before (where a failed worker
    records its failure). `(None, 0, 1)` for every other strategy.
    """
    if strategy != "multi_worker":
        return None, 0, 1
    if os.environ.get("TF_CONFIG"):
        try:
            tf_config = json.loads(os.environ["TF_CONFIG"])
        except ValueError as e:
            raise ConfigError(
                f"TF_CONFIG is not valid JSON ({e}). Received: TF_CONFIG="
                f"{os.environ['TF_CONFIG']!r}. Set it as in README: Several GPUs and several "
                "machines."
            ) from None
        task = tf_config.get("task", {})
        cluster = tf_config.get("cluster", {})
        workers = sum(len(cluster.get(kind, [])) for kind in ("chief", "worker"))
        return task.get("type"), int(task.get("index", 0)), max(workers, 1)
    if os.environ.get("SLURM_PROCID"):
        return "worker", int(os.environ["SLURM_PROCID"]), int(os.environ.get("SLURM_NTASKS", 1))
    raise ConfigError(
        "trainer.strategy=multi_worker needs a cluster: the TF_CONFIG environment variable, "
        "or a SLURM job step (srun). Received: trainer.strategy='multi_worker' with neither. "
        "Set TF_CONFIG on every machine (README: Several GPUs and several machines), or use "
        "trainer.strategy=mirrored for the GPUs of one machine."
    )


def is_chief(strategy):
    """Whether this process writes the run: always, except a non-chief `multi_worker` task.

    The chief is the `chief` task, or worker 0 when the cluster has none (TF's rule).
    """
    try:
        task_type, task_id, _ = cluster_task(strategy)
    except (ConfigError, ValueError):  # no cluster, or a broken TF_CONFIG: resolve() says so
        return True
    if task_type in (None, "chief"):
        return True
    cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {})
    return task_type == "worker" and task_id == 0 and "chief" not in cluster


def check_trainer(trainer):
    """Checks the `trainer` keys this module resolves, without TensorFlow (`train` calls it
    before anything starts; keys missing from an older run's config are not checked).

    Raises:
        ConfigError: a value outside the allowed ones, named with its key.
    """
    get = trainer.get
    _check("trainer.precision", get("precision", "auto"), PRECISIONS)
    _check("trainer.strategy", get("strategy", "auto"), STRATEGIES)
    check_int("trainer.cpu_replicas", get("cpu_replicas"), allow_none=True, example=2)
    jit_compile = get("jit_compile", "auto")
    if jit_compile not in ("auto", True, False):
        raise ConfigError(
            "trainer.jit_compile must be auto, true or false. "
            f"Received: trainer.jit_compile={jit_compile!r}."
        )
    scale_learning_rate = get("scale_learning_rate", False)
    if scale_learning_rate is not False and scale_learning_rate != "linear":
        raise ConfigError(
            "trainer.scale_learning_rate must be false or linear. "
            f"Received: trainer.scale_learning_rate={scale_learning_rate!r}. Use "
            "trainer.scale_learning_rate=linear to multiply the learning rate by the replicas."
        )


def resolve(precision="auto", jit_compile="auto", strategy="auto", cpu_replicas=None):
    """Resolves the `trainer` settings for this machine and applies them to Keras.

    Call it at the start of every job (sequential sweeps share a process): it clears the
    Keras session and sets the dtype policy explicitly, even for float32.

    Args:
        cpu_replicas: on a machine without GPUs, split the CPU into this many logical
            devices, so that `mirrored` has several replicas (to test a multi-device setup
            on a laptop or in CI; it does not make training faster).

    Returns:
        `(Runtime, tf.distribute.Strategy)`.
    """
    import keras
    import tensorflow as tf

    check_trainer(
        {
            "precision": precision,
            "jit_compile": jit_compile,
            "strategy": strategy,
            "cpu_replicas": cpu_replicas,
        }
    )

    gpus = grow_gpu_memory(tf)
    on_gpu = bool(gpus)
    if cpu_replicas and not on_gpu:
        _split_cpu(tf, cpu_replicas)

    keras.backend.clear_session()
    if precision == "auto":
        precision = "mixed_float16" if on_gpu else "float32"
    keras.mixed_precision.set_global_policy(precision)
    if jit_compile == "auto":
        jit_compile = on_gpu

    if strategy == "auto":
        strategy = "mirrored" if len(gpus) > 1 else "default"
    task_type, task_id, num_workers = cluster_task(strategy)
    if strategy == "mirrored":
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        dist = tf.distribute.MirroredStrategy(None if on_gpu or len(cpus) < 2 else cpus)
    elif strategy == "multi_worker":
        dist = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=_cluster_resolver(tf))
        _let_keras_fit_on_several_workers()
    elif strategy == "one_device":
        dist = tf.distribute.OneDeviceStrategy("/gpu:0" if on_gpu else "/cpu:0")
    else:
        dist = tf.distribute.get_strategy()

    devices = f"{len(gpus)} GPU" if on_gpu else "CPU"
    runtime = Runtime(
        devices,
        precision,
        bool(jit_compile),
        strategy,
        dist.num_replicas_in_sync,
        cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
        process_id=os.getpid(),
        task=f"{task_type} {task_id}" if task_type else None,
        num_workers=num_workers,
        is_chief=is_chief(strategy),
    )
    return runtime, dist


def set_up(trainer, *, seed, batch_size=None):
    """Applies the run's `trainer` settings to this process: TensorFlow imported quietly,
    precision, XLA and strategy resolved for this machine, a fresh Keras session, seeded, and
    the global batch and learning rate scale of the strategy's replicas. Logs what `auto`
    became.

    Args:
        trainer: the plain `trainer` config node.
        seed: the run's `seed`.
        batch_size: `data.batch_size`, one replica's batch, or `None`.

    Returns:
        `(Runtime, tf.distribute.Strategy)`.
    """
    import_tensorflow_quietly()
    import keras  # lazy: TensorFlow, after its start-up chatter is silenced

    rt, strategy = resolve(
        trainer["precision"],
        trainer["jit_compile"],
        trainer["strategy"],
        trainer.get("cpu_replicas"),  # .get: runs saved before these keys can be resumed
    )
    keras.utils.set_random_seed(seed)
    scale_batch_and_learning_rate(rt, batch_size, trainer.get("scale_learning_rate", False))
    log.info(console.describe_runtime(rt))
    return rt, strategy


def set_up_command(run_config=None):
    """Applies `train`'s runtime set-up to a command that uses a saved model (`evaluate`,
    `predict`, `visualize`, `export-model`), and logs it: TensorFlow imported quietly, GPU
    memory growth set before TensorFlow touches the GPU, a fresh Keras session, the dtype
    policy the run trained under and the run's seed.

    The loaded layers keep the dtype policy they were saved with; the global policy applies
    to what the command builds around them (Grad-CAM's and the filters' feature models), so
    it is the run's, read from config.yaml (`runtime.precision`, what `auto` became when it
    trained). Without a run (an ImageNet backbone: `predict backbone=`, DeepDream, style
    transfer), float32: what `keras.applications` and the optimisation of an image expect.
    The seed makes what is random in a command (the noise `kind=filters` starts from)
    repeat. No strategy and no XLA of its own: a command runs on one device.

    Args:
        run_config: the run's config.yaml as a dict (`Run.config`), or `None`.

    Returns:
        The `Runtime`: the devices, the precision applied, one replica.
    """
    import_tensorflow_quietly()
    import keras  # lazy: TensorFlow, after its start-up chatter is silenced

    run_config = run_config or {}
    saved = run_config.get("runtime") or {}
    # A run saved before `runtime` was recorded: its trainer's precision, resolved here.
    precision = saved.get("precision") or (run_config.get("trainer") or {}).get("precision")
    seed = run_config.get("seed") or 0
    rt, _ = resolve(precision or "float32", jit_compile=False, strategy="default")
    keras.utils.set_random_seed(seed)
    source = "the run's" if precision else "no run"
    log.info(f"Runtime: {rt.devices} · {rt.precision} ({source}) · seed {seed}")
    return rt


def grow_gpu_memory(tf):
    """Lets TensorFlow take GPU memory as it needs it, not all at once (several runs, or a
    command beside a training, can then share a GPU). Returns the GPUs.

    It must be set before TensorFlow touches the GPU; after that it raises, which a later
    job of a sequential sweep (same process) meets: the setting from its first job holds.
    """
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            pass  # already initialised by an earlier job in this process
    return gpus


def own_run_dir(config, run_dir, rt):
    """`(config, run_dir)` this process writes to: the run's own, or for a `multi_worker`
    worker that is not the chief, a temporary directory with every path of `config` under
    `run_dir` moved into it. TensorFlow's multi-worker pattern: a worker runs every step the
    chief runs (they train in lockstep), but only the chief writes the run."""
    if rt.is_chief:
        return config, Path(run_dir)
    own_dir = Path(tempfile.mkdtemp(prefix="kerasrun-worker-"))
    return move_paths(config, run_dir, own_dir), own_dir


def remove_own_run_dir(run_dir, rt, chief_run_dir):
    """A worker's temporary directory goes when it has finished; the chief's run stays."""
    if not rt.is_chief:
        shutil.rmtree(run_dir, ignore_errors=True)
        log.info(f"{rt.task}: finished; the chief wrote the run to {chief_run_dir}.")


def scale_batch_and_learning_rate(rt, batch_size, scale_learning_rate):
    """Records the per-replica and global batch and the learning rate factor in `rt`.

    Returns:
        The global batch (what the dataset is batched by), or `None` without a batch size.
    """
    check_trainer({"scale_learning_rate": scale_learning_rate})
    rt.learning_rate_scale = float(rt.num_replicas if scale_learning_rate == "linear" else 1)
    if batch_size is None:
        return None
    rt.per_replica_batch, rt.global_batch = batch_size, batch_size * rt.num_replicas
    return rt.global_batch


def scaled_learning_rate(learning_rate, scale):
    """`learning_rate` × `scale`, for `trainer.scale_learning_rate=linear`."""
    if not is_number(learning_rate):
        raise ConfigError(
            "trainer.scale_learning_rate=linear needs a number as optimizer.learning_rate. "
            f"Received: optimizer.learning_rate={learning_rate!r}. Set a number, or "
            "trainer.scale_learning_rate=false and scale it yourself."
        )
    return float(learning_rate) * scale


def _split_cpu(tf, n):
    """Splits the CPU into `n` logical devices (possible only before TensorFlow starts)."""
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(n)]
        )
    except RuntimeError:  # already started, e.g. by an earlier job of a sequential sweep
        pass
    found = len(tf.config.list_logical_devices("CPU"))
    if found != n:
        raise ConfigError(
            f"trainer.cpu_replicas cannot change within one process (TensorFlow has started "
            f"with {found} CPU devices). Received: trainer.cpu_replicas={n}. Run it as a "
            "separate `train` command."
        )


def _let_keras_fit_on_several_workers():
    """Works around Keras 3's two bugs with `MultiWorkerMirroredStrategy` (keras-team/keras#20585).

    Keras 3.15's TensorFlow trainer, on several workers, (1) averages each step's scalar
    metrics with `strategy.reduce("MEAN", axis=0)`, which fails on a scalar, and (2) before
    `fit` builds the model from a first batch by "reducing" the distributed batch, which
    fails too. Here: scalars are averaged over the replicas with `axis=None`, and the model
    is built from this worker's first batch as is. Everything else is Keras's own code.
    """
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer as tf_trainer

    reduce_per_replica = tf_trainer.reduce_per_replica
    if getattr(reduce_per_replica, "kerasrun", False):
        return  # already done in this process
    multi_worker = tf_trainer._collective_all_reduce_multi_worker

    def reduce_scalars_too(values, strategy, reduction="auto"):
        if reduction in ("auto", "mean") and multi_worker(strategy):
            return tree.map_structure(
                lambda v: strategy.reduce("MEAN", v, axis=0 if v.shape.rank else None), values
            )
        return reduce_per_replica(values, strategy, reduction)

    symbolic_build = tf_trainer.TensorFlowTrainer._maybe_symbolic_build

    def build_from_local_batch(self, iterator=None, data_batch=None):
        if iterator is not None and multi_worker(self.distribute_strategy):
            local = self.distribute_strategy.experimental_local_results
            for _, _, batches in iterator:
                data_batch = tree.map_structure(lambda v: local(v)[0], next(batches))
                break
            iterator = None
        return symbolic_build(self, iterator=iterator, data_batch=data_batch)

    reduce_scalars_too.kerasrun = True
    tf_trainer.reduce_per_replica = reduce_scalars_too
    tf_trainer.TensorFlowTrainer._maybe_symbolic_build = build_from_local_batch


def _cluster_resolver(tf):
    """TF_CONFIG's cluster if set, else the SLURM job's (one TensorFlow worker per task)."""
    resolvers = tf.distribute.cluster_resolver
    if os.environ.get("TF_CONFIG"):
        return resolvers.TFConfigClusterResolver()
    return resolvers.SlurmClusterResolver()


def effective_jit_compile(model, requested):
    """What Keras actually compiled with; warns when it silently turned XLA off."""
    actual = bool(getattr(model, "jit_compile", requested))
    if requested and not actual:
        log.warning(
            "XLA was requested but Keras turned it off for this model (a layer does not "
            "support it, e.g. cuDNN RNNs or Random* layers): training runs without XLA."
        )
    return actual


def _check(key, value, allowed):
    if value not in allowed:
        raise ConfigError(f"{key} must be one of {', '.join(allowed)}. Received: {key}={value!r}.")
