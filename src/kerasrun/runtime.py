"""Precision, XLA and the distribution strategy: resolved once per run, logged and saved.

`auto` means what is fastest on the hardware: on a GPU, mixed precision and XLA; on a
CPU, float32 and no XLA (on a 2-core CPU XLA made the book's convnet 2.5x slower and
bfloat16 was slower still).
"""

import logging
import os
from dataclasses import asdict, dataclass

from kerasrun.errors import ConfigError

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("auto", "default", "mirrored", "one_device")


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


def resolve(precision="auto", jit_compile="auto", strategy="auto"):
    """Resolves the `trainer` settings for this machine and applies them to Keras.

    Call it at the start of every job (sequential sweeps share a process): it clears the
    Keras session and sets the dtype policy explicitly, even for float32.

    Returns:
        `(Runtime, tf.distribute.Strategy)`.
    """
    import keras
    import tensorflow as tf

    _check("trainer.precision", precision, PRECISIONS)
    _check("trainer.strategy", strategy, STRATEGIES)
    if jit_compile not in ("auto", True, False):
        raise ConfigError(
            "trainer.jit_compile must be auto, true or false. "
            f"Received: trainer.jit_compile={jit_compile!r}."
        )

    # Memory growth must be set before TensorFlow touches the GPU; after that it raises.
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            pass  # already initialised by an earlier job in this process
    on_gpu = bool(gpus)

    keras.backend.clear_session()
    if precision == "auto":
        precision = "mixed_float16" if on_gpu else "float32"
    keras.mixed_precision.set_global_policy(precision)
    if jit_compile == "auto":
        jit_compile = on_gpu

    if strategy == "auto":
        strategy = "mirrored" if len(gpus) > 1 else "default"
    if strategy == "mirrored":
        dist = tf.distribute.MirroredStrategy()
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
    )
    return runtime, dist


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
