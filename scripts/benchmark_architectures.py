"""Times one CIFAR-10 epoch of each classic architecture's preset: docs/architectures.md.

Each `conf/experiment/cifar10_<family>.yaml` model (its model YAML with the preset's keys) is
built for 32x32x3 images and 10 classes, compiled with Adam as the preset is, and trained on
generated images in batches of 64: two warm-up steps (tracing), then timed steps (at least
3, until 10 s have passed). One CIFAR-10 epoch is extrapolated as 50,000 images = 782 steps
(the presets train on 45,000 and validate on 5,000, which is a little cheaper).
Usage (from the repository root, venv active):

    python scripts/benchmark_architectures.py                  # every family
    python scripts/benchmark_architectures.py resnet lenet     # some of them
"""

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from machine import machine_line

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
FAMILIES = ["lenet", "alexnet", "vgg", "nin", "inception", "resnet", "densenet", "separable"]
BATCH, EPOCH_IMAGES = 64, 50_000
STEPS_PER_EPOCH = math.ceil(EPOCH_IMAGES / BATCH)

# From the papers', the deck's and the book's notes (sources in each conf/model/*.yaml).
README = """## Proposed README lines

````markdown
### Classic architectures from scratch (LeNet to DenseNet)

```
train experiment=cifar10_resnet                         # ResNet-18 on CIFAR-10 (downloaded)
train experiment=cifar10_vgg data.path=cifar-10-python.tar.gz  # a local copy
train model=resnet_small model.depth=34 data=cats_dogs  # 150 px: the paper's ImageNet stem
train model=vgg model.depth=11 model.batch_norm=true data=image_folder data.root=path/to/images
```
`model=` lenet, alexnet, vgg (depth 11/13/16/19), nin, inception_small, resnet_small (depth
18/34), densenet_small, separable_convnet; a CIFAR-10 preset per family:
`experiment=cifar10_{lenet,alexnet,vgg,nin,inception,resnet,densenet,separable}`.
Which one when, the small-image stems and per-epoch times:
[docs/architectures.md](docs/architectures.md).
````
"""

WHEN = [
    ("lenet", "A first baseline for small grey images (digits); underfits CIFAR-10."),
    ("alexnet", "History: ReLU + dropout at scale; its big Dense layers overfit small data."),
    (
        "vgg",
        "A simple uniform deep convnet; from scratch it needs batch_norm and lots of data. "
        "Its pretrained base is the book's transfer-learning workhorse (vgg16_finetune).",
    ),
    (
        "nin",
        "1x1 convolutions and a global-average-pool head instead of Dense layers: few parameters.",
    ),
    (
        "inception_small",
        "Multi-branch modules: more accuracy per FLOP than VGG; needs batch_norm "
        "to train from scratch.",
    ),
    (
        "resnet_small",
        "The default deep convnet from scratch (book: residuals for any model over 10 layers).",
    ),
    ("densenet_small", "The most accuracy per parameter here; memory-hungry and slow on a CPU."),
    (
        "separable_convnet",
        "The book's pick for a new network from scratch on small data; the cheapest.",
    ),
]


def preset_model(family):
    """`(name, keys)` of the preset's model: its model YAML with the preset's `model:` keys."""
    preset = OmegaConf.load(REPO / "conf" / "experiment" / f"cifar10_{family}.yaml")
    name = next(d["override /model"] for d in preset.defaults if "override /model" in d)
    keys = OmegaConf.merge(
        OmegaConf.load(REPO / "conf" / "model" / f"{name}.yaml"), preset.get("model", {})
    )
    keys = OmegaConf.to_container(keys)
    keys.pop("name")
    return name, keys


def time_family(family, min_seconds=10.0, max_steps=20):
    import keras

    from kerasrun.models import build_model
    from kerasrun.tasks import Task

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    name, keys = preset_model(family)
    task = Task("multiclass", num_classes=10)
    model = build_model(name, input_shape=(32, 32, 3), task=task, **keys)
    model.compile(keras.optimizers.Adam(1e-3), task.loss, metrics=task.metrics)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, size=(BATCH, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, size=BATCH)
    start = time.perf_counter()
    for _ in range(2):  # the first traces the train step
        model.train_on_batch(x, y)
    warm_up = time.perf_counter() - start
    steps, wall, cpu = 0, 0.0, 0.0
    while steps < 3 or (wall < min_seconds and steps < max_steps):
        t, c = time.perf_counter(), time.process_time()
        model.train_on_batch(x, y)
        wall += time.perf_counter() - t
        cpu += time.process_time() - c
        steps += 1
    changed = {k: v for k, v in keys.items() if k in preset_overrides(family)}
    return dict(
        family=family,
        model=name,
        keys=changed,
        params=model.count_params(),
        warm_up_s=warm_up,
        steps=steps,
        step_s=wall / steps,
        cpu_step_s=cpu / steps,
        epoch_min=wall / steps * STEPS_PER_EPOCH / 60,
    )


def preset_overrides(family):
    preset = OmegaConf.load(REPO / "conf" / "experiment" / f"cifar10_{family}.yaml")
    return set(preset.get("model", {}))


def markdown(results, load_before, load_after, command):
    lines = [
        "# Classic architectures",
        "",
        "`model=` options that build the classic convnets from their papers, trained from "
        "scratch, and a CIFAR-10 preset per family (the lecture deck's homework: a CNN for "
        "CIFAR-10). Each `conf/model/<name>.yaml` opens with the paper, the deck's and the "
        "book's notes, the layout, the published parameter count and command lines.",
        "",
        "| family | `model=` | preset | keys | small-image adaptation |",
        "|---|---|---|---|---|",
        "| LeNet-5 (1998) | `lenet` | `cifar10_lenet` | activation, pooling, batch_norm "
        '| first conv "same"-padded under 32 px |',
        "| AlexNet (2012) | `alexnet` | `cifar10_alexnet` | stem, units, dropout, batch_norm "
        "| 3x3 stride-1 stem under 67 px |",
        "| VGG 11/13/16/19 (2014) | `vgg` | `cifar10_vgg` | depth, units, dropout, batch_norm "
        "| none (needs 32 px) |",
        "| NiN (2013) | `nin` | `cifar10_nin` | stem, dropout, batch_norm "
        "| 5x5 stride-1 first block under 128 px |",
        "| GoogLeNet (2014) | `inception_small` | `cifar10_inception` | stem, width, dropout, "
        "batch_norm | 3x3 stride-1 stem, no first pool, under 128 px |",
        "| ResNet-18/34 (2015) | `resnet_small` | `cifar10_resnet` | depth, stem, filters "
        "| 3x3 stride-1 stem, no pool, under 128 px |",
        "| DenseNet-BC (2017) | `densenet_small` | `cifar10_densenet` | blocks, growth_rate, "
        "compression, stem | one 3x3 conv stem under 128 px |",
        "| separable convnet (book 7.3.1) | `separable_convnet` | `cifar10_separable` "
        "| batch_norm | none (needs 32 px) |",
        "",
        "`stem: auto` keeps the paper's stem when the image is large enough (cats_dogs' 150 px, "
        "image_folder's default 150 px) and switches to the small stem below; an image too "
        "small for the network is one `Error:` line before training, naming the smallest "
        "`data.image_size` that works. `batch_norm: true` (for the networks that had none) "
        "puts BatchNormalization between each convolution (no bias) and its activation. "
        "Every model ends with the task's head, so binary (cats_dogs), multiclass (cifar10, "
        "image_folder) and regression data all work.",
        "",
        "Parameter counts checked by tests/unit/models/test_classic.py at the source's input size: "
        "VGG16 138,357,544 and VGG19 143,667,240 (224 px, 1000 classes; keras.applications); "
        "AlexNet one tower 62,378,344 (227 px); ResNet-18 11,689,512 and ResNet-34 21,797,672 "
        "trainable (torchvision; Keras adds BN's moving mean and variance as non-trainable "
        "weights); DenseNet-121 7,978,856 trainable, 8,062,504 in Keras; LeNet-5's C1/C5/F6 "
        "156/48,120/10,164; the book's separable convnet "
        "38,949 (64 px, 10 classes). Not asserted (the paper rounds): DenseNet-BC (L=100, "
        'k=12) builds 793,150, the paper\'s "0.8M".',
        "",
        "## Which one when",
        "",
        "| model | when (from the papers, the deck and the book; sources in the YAML files) |",
        "|---|---|",
        *[f"| `{m}` | {w} |" for m, w in WHEN],
        "",
        "The deck's homework goes on with a pretrained backbone to push accuracy higher: "
        "`model=pretrained` / `model=vgg16_finetune` with `data=cifar10 data.image_size=[...]`.",
        "",
        "## Per-epoch time at CIFAR-10 size on this machine",
        "",
        f"Machine: {machine_line()}. Load average before {load_before}, after {load_after}: "
        "other jobs shared the cores, so wall times are inflated. The CPU columns are this "
        "process's CPU time (all its threads): the work itself. On a quiet machine with as "
        "many cores the wall time would lie between CPU / cores (every core busy) and CPU.",
        "",
        f"Each preset's model at 32x32x3, 10 classes, batch {BATCH}, Adam, float32, no XLA, on "
        "generated images (no data pipeline): two warm-up steps, then at least 3 timed steps "
        f"(until 10 s). One epoch = {EPOCH_IMAGES:,} images = {STEPS_PER_EPOCH} steps, "
        "extrapolated; validation not included.",
        "",
        "| preset | model, preset keys | parameters | warm-up (s) | steps timed | "
        "s/step wall | s/step CPU | epoch (min, wall) | epoch (min, CPU) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        keys = ", ".join(f"{k}={str(v).lower()}" for k, v in r["keys"].items()) or "—"
        cpu_epoch = r["cpu_step_s"] * STEPS_PER_EPOCH / 60
        lines.append(
            f"| `cifar10_{r['family']}` | `{r['model']}` {keys} | {r['params']:,} | "
            f"{r['warm_up_s']:.1f} | {r['steps']} | {r['step_s']:.3f} | {r['cpu_step_s']:.3f} "
            f"| {r['epoch_min']:.1f} | {cpu_epoch:.1f} |"
        )
    lines += ["", "Command:", "", "```", command, "```", "", README]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("families", nargs="*", help=f"some of: {' '.join(FAMILIES)}")
    parser.add_argument("--out", default=str(REPO / "docs" / "architectures.md"))
    args = parser.parse_args()
    if unknown := sorted(set(args.families) - set(FAMILIES)):
        parser.error(f"unknown family {unknown[0]}; choose from {', '.join(FAMILIES)}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    results = []
    for family in args.families or FAMILIES:
        results.append(time_family(family))
        r = results[-1]
        print(
            f"{family}: {r['params']:,} params, {r['step_s']:.3f} s/step "
            f"({r['cpu_step_s']:.3f} CPU), {r['epoch_min']:.1f} min/epoch",
            flush=True,
        )
    load_after = " ".join(f"{x:.1f}" for x in os.getloadavg())
    command = "python scripts/benchmark_architectures.py " + " ".join(sys.argv[1:])
    Path(args.out).write_text(markdown(results, load_before, load_after, command.strip()))
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
