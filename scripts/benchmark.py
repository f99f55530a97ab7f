"""Measures issue 7's speed targets and writes docs/performance.md.

1. Input pipeline: kerasrun's tf.data pipeline against `keras.utils.image_dataset_from_directory`
   + `prefetch` on cats_and_dogs_filtered/train (2,000 JPEGs) at 150x150 and 64x64, with and
   without the reduced-resolution JPEG decode; in this process, one pass of each per round.
2. Training overhead: the real `train` CLI against a plain Keras script (`--plain`) with the same
   model (kerasrun's `small_convnet` builder), the same tf.data pipeline, batch, steps and
   validation steps; subprocesses, run alternately. Both time an epoch the same way, from the
   epoch's start to the end of the last `on_epoch_end` (so `train`'s checkpoints, backup,
   TensorBoard and CSV logs count).
3. Start-up: `train --help` and `train --cfg job` wall time (and whether TensorFlow got
   imported), and the "First step after X s" line of a default (digits) run.
4. GPU (scripts/benchmark_gpu.py): what `auto` resolves to, and small_convnet's and
   vgg16_finetune's images/s at float32, mixed_float16 and mixed_float16 + XLA. Without a GPU
   it says so in one line and measures nothing.

Usage (from the repository root):
    .venv/bin/python scripts/benchmark.py [--rounds 3] [--root FOLDER] [--only pipeline,...]
"""

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmark_gpu import NO_GPU, gpu_names, gpu_section
from machine import machine_line

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO.parent / "shared" / "data" / "cats_and_dogs_filtered"
OUT = REPO / "docs" / "performance.md"
TRAIN = str(Path(sys.executable).with_name("train"))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
SECTIONS = ("pipeline", "training", "startup", "gpu")
RESULTS = REPO / "docs" / "performance.json"  # rows per section, so `--only` keeps the others
# Training benchmark: the book's 150x150 convnet, batch 32, an epoch of the book's size (one
# pass over the 2,000 training images); epoch 1 is warm-up (tracing, filling the cache).
TRAIN_EPOCHS, TRAIN_STEPS, VALIDATION_STEPS, BATCH = 3, 62, 4, 32
PIPELINE_ROUNDS = 9  # passes vary by ±10% here: 5 rounds could not tell 1.16x from 0.97x


def median(values):
    return statistics.median(values) if values else float("nan")


# ---------------------------------------------------------------- 1. input pipeline


def pass_rate(ds):
    """Images per second of one full pass over `ds`, from `iter()` to its last batch.

    The iterator is deleted after the clock stops: with tf.data's autotuning on, deleting
    one waits, at random, up to about 0.6 s for its background threads (measured here).
    Timed to the end of the `for` loop, that wait put about half of all passes near 1,570
    images/s whatever the pipeline. `model.fit` does not wait for it between epochs.
    """
    start, count = time.perf_counter(), 0
    iterator = iter(ds)
    for images, _ in iterator:
        count += int(images.shape[0])
        end = time.perf_counter()
    del iterator
    return count / (end - start)


# The book's 5.2.5 augmentation (ImageDataGenerator's settings as kerasrun's data.augment).
BOOK_AUGMENT = {
    "rotation": 0.111,
    "translation": 0.2,
    "shear": 0.2,
    "zoom": 0.2,
    "flip": "horizontal",
}


def pipeline_rates(root, size, rounds, later=2, options=False):
    """`{variant: {"first": [...], "later": [...]}}` images/s per round, each variant rebuilt
    per round ("later": the median of the round's later passes).

    `options` adds kerasrun's other settings: `cache=disk` (a new cache folder per round),
    `cache=false`, the book's augmentation (and the same as stacked Keras layers), and
    decoding alone.
    """
    import keras
    import tensorflow as tf

    from kerasrun.data.augment import build_augmenter
    from kerasrun.data.images import class_folders, jpeg_ratios, list_class_folder
    from kerasrun.data.pipeline import files_dataset, finish

    paths, labels = list_class_folder(root, class_folders(root))
    scratch = tempfile.TemporaryDirectory()
    ratios = jpeg_ratios(paths, size)

    def decode_only():
        # The floor of any first epoch that decodes these files: each JPEG decoded at the
        # pipeline's ratio, and nothing else (no resize, no cache, no images batched).
        def decode(ratio):
            def shape(path):
                image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3, ratio=ratio)
                return tf.shape(image), 0

            return shape

        groups = [
            tf.data.Dataset.from_tensor_slices(
                [p for p, r in zip(paths, ratios, strict=True) if r == ratio]
            ).map(decode(ratio), num_parallel_calls=tf.data.AUTOTUNE)
            for ratio in sorted(set(ratios))
        ]
        ds = groups[0]
        for group in groups[1:]:
            ds = ds.concatenate(group)
        return ds.batch(BATCH).prefetch(tf.data.AUTOTUNE)

    def keras_layers(cached):
        # The same transforms as the Keras layers they are defined by, stacked, in a sequential
        # map (the layers draw from their own seed generators): kerasrun's augmentation
        # before it became one affine warp.
        fill = {"fill_mode": "nearest", "dtype": "float32"}
        layers = keras.layers.Pipeline(
            [
                keras.layers.RandomFlip("horizontal", seed=0),
                keras.layers.RandomRotation(BOOK_AUGMENT["rotation"], **fill, seed=1),
                keras.layers.RandomZoom(BOOK_AUGMENT["zoom"], **fill, seed=2),
                keras.layers.RandomTranslation(*[BOOK_AUGMENT["translation"]] * 2, **fill, seed=3),
                keras.layers.RandomShear(*[BOOK_AUGMENT["shear"]] * 2, **fill, seed=4),
            ]
        )
        return cached.map(lambda x, y: (layers(x, training=True), y)).prefetch(tf.data.AUTOTUNE)

    def ours(reduced=True, **kwargs):
        ds = files_dataset(paths, labels, image_size=size, reduced_decode=reduced)
        return finish(ds, batch_size=BATCH, training=True, size=len(paths), name="train", **kwargs)

    variants = {
        "kerasrun": ours,
        "kerasrun, full-size decode": lambda: ours(False),
        "keras": lambda: keras.utils.image_dataset_from_directory(
            str(root), image_size=size, batch_size=BATCH, seed=0, verbose=False
        ).prefetch(tf.data.AUTOTUNE),
    }
    if options:
        variants["kerasrun, cache=disk"] = lambda: ours(cache=tempfile.mkdtemp(dir=scratch.name))
        variants["kerasrun, cache=false"] = lambda: ours(cache=False)
        variants["kerasrun, book augmentation"] = lambda: ours(
            augmenter=build_augmenter(BOOK_AUGMENT)
        )
        variants["kerasrun, book augmentation as Keras layers"] = lambda: keras_layers(ours())
        variants["decoding alone"] = decode_only
    rates = {name: {"first": [], "later": []} for name in variants}
    for _ in range(rounds):  # interleaved: a busy moment of the machine slows every variant
        for name, make in variants.items():
            ds = make()
            rates[name]["first"].append(pass_rate(ds))
            # (one later pass of the slow stacked layers: 9 s each)
            passes = 1 if name.endswith("Keras layers") else later
            rates[name]["later"].append(median([pass_rate(ds) for _ in range(passes)]))
    return rates


def pipeline_section(args):
    root = args.root / "train"
    for path in sorted(root.rglob("*.jpg")):  # warm the OS page cache: decode, not disk
        path.read_bytes()
    results = {}
    # Rates: the median pass of each variant; ratios: the median of the rounds' ratios (the
    # two sides of a ratio ran one after the other, under the same load).
    rounds = max(args.rounds, PIPELINE_ROUNDS)
    for size in ((150, 150), (64, 64)):
        results[size] = pipeline_rates(root, size, rounds, options=size == (150, 150))
        print(size, results[size], flush=True)
    big, small = results[(150, 150)], results[(64, 64)]

    def row(name, target, threshold, rates, side, other, epochs, note=""):
        pairs = zip(rates[side][epochs], rates[other][epochs], strict=True)
        ratio = median([a / b for a, b in pairs])
        rate = {n: median(rates[n][epochs]) for n in (side, other)}
        return (
            name,
            target,
            ratio,
            threshold,
            f"{rate[side]:.0f} vs. {rate[other]:.0f} images/s{note}",
        )

    keras_64 = f" (`image_dataset_from_directory`: {median(small['keras']['first']):.0f})"
    rows = [
        row(
            "Pipeline 150x150, first epoch (decode + cache) vs. `image_dataset_from_directory`",
            "≥ 1.5×", 1.5, big, "kerasrun", "keras", "first",
        ),
        row(
            "Pipeline 150x150, later epochs (from the cache) vs. `image_dataset_from_directory`",
            "≥ 5×", 5.0, big, "kerasrun", "keras", "later",
        ),
        row(
            "Reduced JPEG decode (1/2) at 150x150: first epoch vs. full-size decode",
            "faster", 1.0, big, "kerasrun", "kerasrun, full-size decode", "first",
        ),
        row(
            "Reduced JPEG decode (1/4) at 64x64: first epoch vs. full-size decode",
            "faster", 1.0, small, "kerasrun", "kerasrun, full-size decode", "first", keras_64,
        ),
        row(
            "Book augmentation (5.2.5), later epochs: one affine warp per image vs. the same "
            "transforms as stacked Keras layers",
            "faster", 1.0, big, "kerasrun, book augmentation",
            "kerasrun, book augmentation as Keras layers", "later",
        ),
    ]  # fmt: skip
    for variant, epochs in (
        ("kerasrun, cache=disk", "first"),
        ("kerasrun, cache=disk", "later"),
        ("kerasrun, cache=false", "later"),
        ("kerasrun, book augmentation", "later"),
        ("decoding alone", "first"),
    ):
        name = (
            f"Pipeline 150x150, `{variant.split(', ')[-1]}`, {epochs} epoch"
            f"{'s' if epochs == 'later' else ''} vs. `image_dataset_from_directory`"
        )
        rows.append(row(name, "(diagnostic)", 0.0, big, variant, "keras", epochs))
    return rows


# ---------------------------------------------------------------- 2. training overhead


def plain_keras(root):
    """The plain Keras script: kerasrun's data pipeline and model builder, `model.fit`, no
    callbacks but a timer. Prints `EPOCH_SECONDS s1 s2 ...`."""
    import keras

    from kerasrun.data import build_data
    from kerasrun.models import build_model
    from kerasrun.tasks import Task

    class Timer(keras.callbacks.Callback):
        """From the epoch's start to the end of its last `on_epoch_end` (Timer is last)."""

        seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)

    keras.utils.set_random_seed(42)
    data = build_data("cats_dogs", root=str(root), image_size=[150, 150], batch_size=BATCH, seed=42)
    task = Task(data.task, max(data.num_classes, 1))
    model = build_model("small_convnet", input_shape=data.input_shape, task=task)
    model.compile(
        optimizer=keras.optimizers.RMSprop(1e-3),
        loss=task.loss,
        metrics=task.metrics,
        jit_compile=False,  # as `train`'s jit_compile=auto on a CPU
    )
    model.fit(
        data.train_dataset.repeat(),
        validation_data=data.validation_dataset,
        epochs=TRAIN_EPOCHS,
        steps_per_epoch=TRAIN_STEPS,
        validation_steps=VALIDATION_STEPS,
        verbose=2,  # one line per epoch, as a script's log file would have
        callbacks=[Timer()],
    )
    print("EPOCH_SECONDS", *Timer.seconds, flush=True)


def run(command, cwd=None, timeout=1200):
    result = subprocess.run(
        command, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode:
        raise RuntimeError(f"{command} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def train_epoch_seconds(root, *overrides):
    """`train`'s epoch times, from its console lines `Epoch 2/3 · 9.4 s · ...`."""
    with tempfile.TemporaryDirectory() as cwd:
        out = run(
            [
                TRAIN,
                "model=small_convnet",
                "data=cats_dogs",
                f"data.root={root}",
                f"data.batch_size={BATCH}",
                f"trainer.epochs={TRAIN_EPOCHS}",
                f"trainer.steps_per_epoch={TRAIN_STEPS}",
                f"trainer.validation_steps={VALIDATION_STEPS}",
                *overrides,
            ],
            cwd=cwd,
        )
    return [float(s) for s in re.findall(r"Epoch \d+/\d+ · ([\d.]+) s", out)]


def plain_epoch_seconds(root):
    out = run([sys.executable, __file__, "--plain", "--root", str(root)])
    return [float(s) for s in out.split("EPOCH_SECONDS", 1)[1].split()]


def training_section(args):
    images = TRAIN_STEPS * BATCH
    sides = {"train": train_epoch_seconds, "plain": plain_epoch_seconds}
    if args.diagnose:
        # To tell the share of the epoch-end savers (checkpoint, backup, TensorBoard) in any
        # gap from the rest of `train`.
        sides["bare"] = lambda root: train_epoch_seconds(
            root, "callbacks=[terminate_on_nan]", "logger=[csv]"
        )
    rates = {name: [] for name in sides}
    for _ in range(args.rounds):  # alternated: train, plain, bare, train, plain, bare, ...
        for name, measure in sides.items():
            seconds = measure(args.root)
            rates[name] += [images / s for s in seconds[1:]]  # epoch 1 is warm-up
            print(name, [f"{s:.2f}" for s in seconds], flush=True)
    ours, plain = median(rates["train"]), median(rates["plain"])
    rows = [
        (
            f"Training overhead: `train` vs. plain `model.fit` (small_convnet, 150x150, batch "
            f"{BATCH}, {TRAIN_STEPS} steps + {VALIDATION_STEPS} validation steps per epoch)",
            "≥ 0.97×",
            ours / plain,
            0.97,
            f"{ours:.1f} vs. {plain:.1f} images/s (epochs 2–{TRAIN_EPOCHS}, "
            f"{len(rates['train'])} epochs each: train "
            + ", ".join(f"{r:.1f}" for r in rates["train"])
            + "; plain "
            + ", ".join(f"{r:.1f}" for r in rates["plain"])
            + ")",
        )
    ]
    if args.diagnose:
        bare = median(rates["bare"])
        rows.append(
            (
                "Training: `train callbacks=[terminate_on_nan] logger=[csv]` vs. plain "
                "`model.fit` (without the checkpoint, backup and TensorBoard of the row above)",
                "(diagnostic)",
                bare / plain,
                0.0,
                f"{bare:.1f} vs. {plain:.1f} images/s ("
                + ", ".join(f"{r:.1f}" for r in rates["bare"])
                + ")",
            )
        )
    return rows


# ---------------------------------------------------------------- 3. start-up


def imports_tensorflow(flag):
    """Whether `train <flag>` imports TensorFlow (checked in `sys.modules`, in a fresh process)."""
    code = (
        f"import sys; sys.argv = ['train', {flag!r}]\n"
        "from kerasrun.train import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('TENSORFLOW', 'tensorflow' in sys.modules)\n"
    )
    with tempfile.TemporaryDirectory() as cwd:
        out = run([sys.executable, "-c", code], cwd=cwd)
    return out.rsplit("TENSORFLOW", 1)[1].split()[0] == "True"


def startup_section(args):
    flags = {"--help": ["--help"], "--cfg job": ["--cfg", "job"]}
    seconds = {name: [] for name in flags}
    with tempfile.TemporaryDirectory() as cwd:
        for _ in range(5):  # alternated
            for name, flag in flags.items():
                start = time.perf_counter()
                run([TRAIN, *flag], cwd=cwd)
                seconds[name].append(time.perf_counter() - start)
    rows = []
    for name in flags:
        tf = imports_tensorflow(flags[name][0])
        value = median(seconds[name])
        rows.append(
            (
                f"Start-up: `train {name}` (wall time, median of 5)",
                "< 1.5 s, no TensorFlow",
                value,
                None if tf else 1.5,  # importing TensorFlow fails the row whatever the time
                f"{value:.2f} s ({', '.join(f'{s:.2f}' for s in seconds[name])}); "
                f"TensorFlow imported: {'yes' if tf else 'no'}",
            )
        )
    first = []
    for _ in range(3):
        with tempfile.TemporaryDirectory() as cwd:
            out = run([TRAIN, "trainer.epochs=1"], cwd=cwd)
        found = re.search(r"First step after ([\d.]+) s", out)
        first.append(float(found.group(1)) if found else float("nan"))
    rows.append(
        (
            "Start-up: command to first training step, `train trainer.epochs=1` (digits)",
            "reported",
            median(first),
            0.0,
            f"{median(first):.1f} s ({', '.join(f'{s:.1f}' for s in first)}), "
            "from the run's `First step after X s` line",
        )
    )
    return rows


# ---------------------------------------------------------------- the page


def verdict(value, threshold, target):
    if target == "(diagnostic)":
        return "—"
    if threshold is None or value != value:  # TensorFlow imported, or no value (NaN)
        return "fail"
    if target.startswith("<"):
        return "pass" if value < threshold else "fail"
    return "pass" if value >= threshold else "fail"


def write_page(sections, args):
    """Stores `sections` ({name: {"rows", "date", "load", "minutes", "command"}}) in
    docs/performance.json over the sections measured before, and renders docs/performance.md
    from all of them."""
    import keras
    import tensorflow as tf

    stored = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    stored.update(sections)
    stored = {name: stored[name] for name in SECTIONS if name in stored}
    RESULTS.write_text(json.dumps(stored, indent=1, ensure_ascii=False) + "\n")
    table = ["| measurement | target | measured | result | details |", "|---|---|---:|---|---|"]
    for section in stored.values():
        for name, target, value, threshold, details in section["rows"]:
            unit = " s" if name.startswith("Start-up") else "×"
            table.append(
                f"| {name} | {target} | {value:.2f}{unit} | "
                f"{verdict(value, threshold, target)} | {details} |"
            )
    print("\n".join(table))
    when = "\n".join(
        f"- {name}: measured {s['date']} in {s['minutes']:.0f} minutes, load average "
        f"{s['load']} (`{s['command']}`)" + (f"; on {s['machine']}" if "machine" in s else "")
        for name, s in stored.items()
    )
    # Notes written by hand below the generated part are kept.
    old = OUT.read_text() if OUT.exists() else ""
    notes = old[old.index(NOTES) :] if NOTES in old else ""
    OUT.write_text(
        TEMPLATE.format(
            table="\n".join(table),
            machine=machine_line(),
            software=f"TensorFlow {tf.__version__}, Keras {keras.__version__}, "
            f"{platform.system()} {platform.release()}",
            gpu="none" if not tf.config.list_physical_devices("GPU") else "present",
            when=when,
            rounds=args.rounds,
            root=args.root,
            steps=TRAIN_STEPS,
            batch=BATCH,
            pipeline_rounds=max(args.rounds, PIPELINE_ROUNDS),
        )
        + (f"\n{notes}" if notes else "")
    )
    print(f"Wrote {OUT} and {RESULTS}")


def command_line(args, name):
    command = f".venv/bin/python scripts/benchmark.py --only {name}"
    if args.rounds != 3:
        command += f" --rounds {args.rounds}"
    if args.root != DEFAULT_ROOT:
        command += f" --root {args.root}"
    return command + (" --diagnose" if args.diagnose and name == "training" else "")


NOTES = "## Notes on these runs"
TEMPLATE = """\
# Performance

Issue 7's speed targets, measured by `scripts/benchmark.py` on one machine in one run.
The image pipeline itself (its stages, the cache, augmentation costs) is described in
[pipeline.md](pipeline.md).

{table}

How each row is measured:

- **Pipeline**: one full pass over `{root}/train` (2,000 JPEGs, about 500x375) in batches of
  32, images/s; each variant is rebuilt every round (so every round has a first epoch), one
  pass of each per round, at least {pipeline_rounds} rounds, the median pass of each (a
  ratio: the median of the rounds' ratios, its two sides measured one after the other); later
  epochs = 2 more passes per round. A pass is timed from `iter()` to its last batch: deleting
  a tf.data iterator can wait up to about 0.6 s for its autotuning thread, at random, which
  `model.fit` does not wait for between epochs (it put half the passes of the previous
  version of this script near 1,570 images/s, whatever the pipeline).
  Files are read once beforehand (OS page cache): first epochs measure decoding, not the
  disk. The file check `train` runs once before training (`FileCheck`, about 0.3 ms per
  file) is not in these rows, nor is reading the JPEG headers for the decode ratio when the
  pipeline is built (Pillow, 4 threads, about 0.1 s for the 2,000 files). "Full-size
  decode" is kerasrun's pipeline with `reduced_decode=False`: the same, but every JPEG
  decoded at full size before the resize. "Decoding alone" decodes each JPEG at the
  pipeline's ratio and does nothing else: no first epoch that decodes these files can be
  faster. "Book augmentation as Keras layers" applies the same transforms with
  `keras.layers.RandomFlip`, `RandomRotation`, `RandomZoom`, `RandomTranslation` and
  `RandomShear` stacked, as kerasrun did before they became one affine warp.
- **Training overhead**: `train` (a subprocess of the real CLI, with its default callbacks:
  checkpoint, backup, TerminateOnNaN, TensorBoard, CSV, the epoch log) against a plain Keras
  script (`scripts/benchmark.py --plain`: the same `small_convnet` builder, the same
  `build_data("cats_dogs", ...)` pipeline, `model.fit(verbose=2)`), run alternately,
  {rounds} runs each. Images/s = training images of an epoch / the epoch's seconds, from the
  epoch's start to the end of its last callback (so it includes the validation steps, the
  same on both sides); epoch 1 (tracing, filling the cache) is left out. `train`'s epoch
  times come from its console line, which rounds to 0.1 s (about 1% of an epoch here).
  What `train` does more per epoch: at the epoch's end it saves `checkpoints/best.keras`
  when `val_loss` improved (28 MB for this model, about 0.36 s here) and the backup's weights
  (about 0.27 s), and writes TensorBoard and CSV rows; per step, its callbacks only check a
  flag or the loss (`TerminateOnNaN`, the signal handler, the epoch log), and the progress
  bar is drawn only on a terminal. An epoch is the book's: one pass over the 2,000 training
  images ({steps} steps of {batch}), about 20 s on two quiet cores, of which the saves are
  about 3%. `--diagnose` adds a row without them (`callbacks=[terminate_on_nan]
  logger=[csv]`). Epoch times vary by up to ±25% when other jobs share the machine, more
  than the 3% the target allows: the measurements here ran at a higher priority than those
  jobs (`nice -n -10`), and the ratio should be read with the per-epoch values.
- **GPU** (only where there is one; `scripts/benchmark_gpu.py`): the real `train` on
  cats_and_dogs_filtered at 150x150, batch 32 per replica, `model.weights=null`, one run per
  setting (`trainer.precision` and `trainer.jit_compile`: float32 without XLA,
  mixed_float16 without and with XLA, `auto`), 6 epochs of 124 steps each (vgg16_finetune:
  6 more of fine-tuning); images/s is the median of epochs 2–6 (epoch 1 traces, compiles
  and fills the cache), each against float32 on the same model and phase. What `auto`
  became, and the effective XLA setting, are read from the run's `config.yaml`. That
  section ran on its own machine (named in its line below), not necessarily the one above.
- **Start-up**: wall time of the `train` console script, alternated, median of 5; whether
  TensorFlow was imported is checked in `sys.modules` of a fresh interpreter running the same
  `main()`. The first-step time is the `First step after X s` line `train` logs (from the
  process's start, read from `/proc`, to the end of the first training step), median of 3.

- Machine: {machine}; GPU: {gpu}
- Software: {software}
- When, by section (1-, 5-, 15-minute load averages before and after; the machine is shared
  with other jobs, so compare the two sides of a row, measured alternately under the same
  load, rather than absolute numbers), and the command that measures it again from the
  repository root (without `--only`, all three sections):

{when}
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each side (>= 3)")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument(
        "--diagnose", action="store_true", help="training: also time train without its savers"
    )
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain:
        return plain_keras(args.root)
    args.rounds = max(args.rounds, 3)
    sections = {}
    for name in args.only.split(","):
        load_before, start = os.getloadavg(), time.perf_counter()
        extra = {}
        if name == "gpu":
            gpus = gpu_names()
            if not gpus:
                print(NO_GPU)
                continue
            rows, extra = gpu_section(args, gpus), {"machine": machine_line()}
        else:
            rows = globals()[f"{name}_section"](args)
        sections[name] = {
            **extra,
            "rows": rows,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "minutes": (time.perf_counter() - start) / 60,
            "load": " / ".join(
                ", ".join(f"{a:.2f}" for a in load) for load in (load_before, os.getloadavg())
            ),
            "command": command_line(args, name),
        }
    if sections:
        write_page(sections, args)


if __name__ == "__main__":
    main()
