"""Measures kerasrun's image pipeline against Keras's own loader and writes docs/pipeline.md.

Both read cats_and_dogs_filtered/train (2,000 JPEGs) at 150x150 in batches of 32, in the
same process on the same machine. Every file is read once beforehand so that all rows
read from the OS page cache: "cold" means the tf.data cache is empty (every image is
decoded), not that the disk is.

Usage:
    .venv/bin/python scripts/benchmark_pipeline.py [--root FOLDER] [--epochs 5]

`--root` defaults to ../shared/data/cats_and_dogs_filtered/train (beside the repository).
"""

import argparse
import datetime
import os
import platform
import statistics
import time
from pathlib import Path

from machine import cpu_model

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO.parent / "shared" / "data" / "cats_and_dogs_filtered" / "train"
OUT = REPO / "docs" / "pipeline.md"
BOOK_AUGMENT = {
    "rotation": 0.111,
    "translation": 0.2,
    "shear": 0.2,
    "zoom": 0.2,
    "flip": "horizontal",
}


def epoch_rates(ds, epochs):
    """Images per second of each full pass over `ds`."""
    rates = []
    for _ in range(epochs):
        start, count = time.perf_counter(), 0
        for images, _ in ds:
            count += int(images.shape[0])
        rates.append(count / (time.perf_counter() - start))
    return rates


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--epochs", type=int, default=5, help="passes per pipeline (>= 4)")
    args = parser.parse_args()
    epochs = max(args.epochs, 4)

    import keras
    import tensorflow as tf

    from kerasrun.data import build_data

    for path in sorted(args.root.rglob("*.jpg")):  # warm the OS page cache for every row
        path.read_bytes()

    def ours(**kwargs):
        bundle = build_data(
            "image_folder",
            root=str(args.root),
            image_size=[150, 150],
            batch_size=32,
            validation_split=0.0,
            seed=0,
            **kwargs,
        )
        return bundle.train_dataset

    pipelines = {
        "ours": ours(),
        "no_cache": ours(cache=False),
        "augmented": ours(augment=BOOK_AUGMENT),
        "keras": keras.utils.image_dataset_from_directory(
            str(args.root), image_size=(150, 150), batch_size=32, seed=0, verbose=False
        ).prefetch(tf.data.AUTOTUNE),
    }
    # Interleaved: one pass of each pipeline per round, so that a busy moment of the machine
    # slows every pipeline alike instead of one row. Round 0 is each pipeline's first epoch.
    load_before = os.getloadavg()
    rates = {name: [] for name in pipelines}
    for _ in range(epochs):
        for name, ds in pipelines.items():
            rates[name] += epoch_rates(ds, 1)
    load = f"{load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after"
    keras_name = "`image_dataset_from_directory(...).prefetch(AUTOTUNE)`"
    rows = [
        ("kerasrun, first epoch (decode + fill the cache)", rates["ours"][:1]),
        ("kerasrun, later epochs (from the uint8 cache)", rates["ours"][1:]),
        ("kerasrun, `cache=false` (decode every epoch)", rates["no_cache"]),
        ("kerasrun, later epochs + the book's augmentation", rates["augmented"][1:]),
        (f"{keras_name}, first epoch", rates["keras"][:1]),
        (f"{keras_name}, later epochs", rates["keras"][1:]),
    ]

    # Later epochs only: the first epoch of both decodes every file.
    median = {name: statistics.median(r[1:]) for name, r in rates.items()}
    summary = (
        f"From its cache, kerasrun's later epochs run {median['ours'] / median['keras']:.0f}x "
        "faster than `image_dataset_from_directory`, which decodes every file every epoch; "
        f"decoding itself costs about the same (first epoch {rates['ours'][0]:.0f} vs. "
        f"{rates['keras'][0]:.0f} images/s)."
    )
    table = [
        "| pipeline | images/s (median) | epochs measured | all epochs |",
        "|---|---:|---:|---|",
    ]
    for name, rates in rows:
        runs = ", ".join(f"{r:.0f}" for r in rates)
        table.append(f"| {name} | {statistics.median(rates):.0f} | {len(rates)} | {runs} |")
    print("\n".join(table))
    command = ".venv/bin/python scripts/benchmark_pipeline.py"
    if args.epochs != 5:
        command += f" --epochs {args.epochs}"
    if args.root != DEFAULT_ROOT:
        command += f" --root {args.root}"
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(
        TEMPLATE.format(
            table="\n".join(table),
            date=datetime.date.today().isoformat(),
            nproc=len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else os.cpu_count(),
            cpu=cpu_model(),
            load=load,
            versions=f"Python {platform.python_version()}, TensorFlow {tf.__version__}, "
            f"Keras {keras.__version__}, {platform.system()} {platform.release()}",
            gpu="none"
            if not tf.config.list_physical_devices("GPU")
            else "present (unused by tf.data)",
            root=args.root,
            summary=summary,
            command=command,
        )
    )
    print(f"Wrote {OUT}")


TEMPLATE = """\
# The image pipeline

The image datasets read from folders (`image_folder`, `cats_dogs`) go through one `tf.data`
pipeline, `src/kerasrun/data/images.py`; the array datasets (`digits`, `mnist`,
`fashion_mnist`, `cifar10`) start from `from_tensor_slices(arrays)` and share its second half
(`images.finish`: cache, shuffle, batch, float32, augment, prefetch).

```
list files (sorted class folders = labels) → FileCheck: unreadable files listed, not used
(Pillow, 4 threads, 0.9 s for 3,000 JPEGs, when the data is built) → from_tensor_slices
→ read + decode_image (Pillow for the few TF decodes wrongly) + resize, in parallel (AUTOTUNE)
→ uint8 → cache() → shuffle(all, seed, reshuffle each epoch)   [training only]
→ batch → float32 → augmentation layers (seeded)            [training only] → prefetch(AUTOTUNE)
```

- The cache holds uint8 images, 4x smaller than float32: 2,000 images at 150x150x3 take
  135 MB.
- Augmentation runs in the pipeline, not in the model, so the model stays free of random
  layers (XLA keeps working) and validation/test data is never augmented. The augmentation
  map is sequential on purpose: with parallel calls the random layers draw in a different
  order on every run, and a seeded run would not be reproducible.
- The shuffle buffer holds the whole split, so the first training batch waits until every
  image of the epoch has been read (then each epoch is a full reshuffle).
- The book's augmentation is the slowest row below: rotation, zoom, translation and shear
  are four Keras layers, each a full projective-transform pass over the batch. Fusing them
  into one affine transform (as the book's ImageDataGenerator did) would make one pass
  instead of four: the follow-up to take if augmentation ever starves a GPU.

## Throughput

Images/s over one full pass of cats_and_dogs_filtered/train (2,000 JPEGs) at 150x150 in
batches of 32; the median over the passes listed. The pipelines run interleaved, one pass
each per round, in one process. All rows read files from the OS page cache (every file was
read once before timing), so "first epoch" measures decoding, not the disk.

{table}

{summary}

- Data: `{root}`
- Machine: {nproc} CPUs ({cpu}), GPU: {gpu}
- Software: {versions}
- Measured {date}; 1-minute load average {load}: other jobs shared the machine, so
  compare rows with each other rather than with another machine.

Reproduce (from the repository root):

```
{command}
```
"""


if __name__ == "__main__":
    main()
