"""The GPU section of scripts/benchmark.py (`--only gpu`), for a machine with a GPU.

What `trainer.precision=auto` and `trainer.jit_compile=auto` resolve to there, and the
images/s of `small_convnet` and `vgg16_finetune` (both phases; `model.weights=null`) at 150x150,
batch 32, through the real `train` CLI at float32, mixed_float16, mixed_float16 + XLA and
`auto`: one run of each, the median of its epochs after the first (tracing, filling the
cache). Each row compares one setting with float32 on the same model and phase.

Where TensorFlow sees no GPU, the section says so in one line and measures nothing.
Install TensorFlow's CUDA libraries with `pip install -e ".[gpu]"` (README: GPUs).
"""

import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

TRAIN = str(Path(sys.executable).with_name("train"))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
EPOCHS, STEPS, VALIDATION_STEPS, BATCH = 6, 124, 4, 32  # 124 steps: two passes of 2,000 images
VARIANTS = {  # name: (trainer.precision, trainer.jit_compile)
    "float32": ("float32", "false"),
    "mixed_float16": ("mixed_float16", "false"),
    "mixed_float16 + XLA": ("mixed_float16", "true"),
    "auto": ("auto", "auto"),
}
MODELS = {  # model option: its overrides (vgg16_finetune: both phases, as long as each other)
    "small_convnet": [],
    "vgg16_finetune": ["model.weights=null", f"model.fine_tune_epochs={EPOCHS}"],
}
NO_GPU = (
    "gpu: TensorFlow sees no GPU on this machine, so nothing was measured (docs/performance.md "
    'is unchanged); on a machine with an NVIDIA GPU: pip install -e ".[gpu]", then this again.'
)
EPOCH_LINE = re.compile(r"^(fine-tune )?Epoch (\d+)/\d+ · ([\d.]+) s", re.MULTILINE)


def gpu_names():
    """The GPUs TensorFlow sees, by name (`[]` without one). Listing the physical devices
    does not create a context: no GPU memory is taken from the `train` runs."""
    import tensorflow as tf

    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        names.append(details.get("device_name", gpu.name))
    return names


def train_rates(root, model, precision, jit_compile):
    """One `train` run: `({phase: [images/s of each epoch after the first]}, its runtime)`,
    the runtime as `config.yaml` records it (what `auto` became, the effective XLA)."""
    with tempfile.TemporaryDirectory() as cwd:
        command = [
            TRAIN,
            f"model={model}",
            "data=cats_dogs",
            f"data.root={root if root.is_dir() else 'null'}",  # null: downloads the zip
            "data.image_size=[150,150]",
            f"data.batch_size={BATCH}",
            f"trainer.precision={precision}",
            f"trainer.jit_compile={jit_compile}",
            f"trainer.epochs={EPOCHS}",
            f"trainer.steps_per_epoch={STEPS}",
            f"trainer.validation_steps={VALIDATION_STEPS}",
            *MODELS[model],
        ]
        result = subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, text=True)
        if result.returncode:
            raise RuntimeError(f"{command} failed:\n{result.stderr[-3000:]}")
        (run_dir,) = (Path(cwd) / "outputs" / "runs").iterdir()
        runtime = yaml.safe_load((run_dir / "config.yaml").read_text())["runtime"]
    seconds = {}
    for fine_tune, _, s in EPOCH_LINE.findall(result.stdout):
        seconds.setdefault("phase 2" if fine_tune else "phase 1", []).append(float(s))
    images = STEPS * (runtime.get("global_batch") or BATCH)  # x replicas (mirrored)
    rates = {phase: [images / s for s in values[1:]] for phase, values in seconds.items()}
    return rates, runtime


def describe(runtime):
    """`mixed_float16, XLA on, strategy default (1 replica)`, from config.yaml's `runtime`."""
    xla = "XLA on" if runtime.get("jit_compile") else "XLA off"
    replicas = runtime.get("num_replicas", 1)
    strategy = f"strategy {runtime.get('strategy')} ({replicas} replica{'s' * (replicas != 1)})"
    return f"{runtime.get('precision')}, {xla}, {strategy}"


def gpu_section(args, gpus):
    """The section's rows: for each model and phase, each setting against float32."""
    rows = []
    for model in MODELS:
        measured = {}
        for variant, (precision, jit_compile) in VARIANTS.items():
            measured[variant] = train_rates(args.root, model, precision, jit_compile)
            print(model, variant, measured[variant], flush=True)
        for phase in measured["float32"][0]:
            phased = len(measured["float32"][0]) > 1  # vgg16_finetune: each phase its row
            name = f"{model} ({phase})" if phased else model
            base = statistics.median(measured["float32"][0][phase])
            for variant in list(VARIANTS)[1:]:
                rates, runtime = measured[variant]
                rate = statistics.median(rates[phase])
                label = f"`auto` ({describe(runtime)})" if variant == "auto" else variant
                rows.append(
                    (
                        f"GPU, {name}: {label} vs. float32 (150x150, batch {BATCH})",
                        "faster",
                        rate / base,
                        1.0,
                        f"{rate:.0f} vs. {base:.0f} images/s (epochs 2–{EPOCHS}"
                        + (" of the phase: " if phased else ": ")
                        + ", ".join(f"{r:.0f}" for r in rates[phase])
                        + f"); {', '.join(gpus)}",
                    )
                )
    return rows
