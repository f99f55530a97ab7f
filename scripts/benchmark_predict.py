"""Measures `predict`'s latency per image on this machine and writes docs/predict.md.

Models: the `convnet` of a real `train data=image_folder` run at 32x32 (the test suite's run)
and at 150x150 (the book's cats-vs-dogs size), and, for reference, keras.applications'
MobileNetV2 ImageNet classifier with random weights at 224x224. For each, in one process
after a warm-up (start-up excluded): the median milliseconds per image of
`model.predict_on_batch` (what `predict` calls) and of `model.predict`, for batches of 1 and
32, and of reading one image file (`rundir.load_images`). Then the wall time of the whole
`predict` command on 10 image files, start-up included (the median of 3 runs).

Everything is generated in a temporary folder; nothing is downloaded (the ImageNet class
index the MobileNetV2 command needs is a stand-in of 1,000 made-up names there).

Usage:
    .venv/bin/python scripts/benchmark_predict.py [--repeats 30] [--out docs/predict.md]
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from machine import cpu_model

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "predict.md"
BIN = Path(sys.executable).parent
SIZES = (32, 150)  # the convnet runs' image sizes
BATCHES = (1, 32)
CLI_IMAGES = 10
CLI_REPEATS = 3


def write_photos(root, per_class=12, size=(120, 100)):
    """`root/{cats,dogs}/*.jpg`: reddish cats, bluish dogs (a problem a convnet learns)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, name in enumerate(("cats", "dogs")):
        (root / name).mkdir(parents=True)
        base = np.array([200, 40, 40]) if label == 0 else np.array([40, 40, 200])
        for i in range(per_class):
            pixels = np.clip(base + rng.normal(0, 25, (*size, 3)), 0, 255).astype("uint8")
            Image.fromarray(pixels).save(root / name / f"{name[:-1]}.{i}.jpg")
    return root


def train_run(cwd, photos, size):
    """A real `train` run of the default convnet on `photos` at `size`x`size`; its directory."""
    cwd.mkdir()
    command = [
        str(BIN / "train"),
        "data=image_folder",
        f"data.root={photos}",
        f"data.image_size=[{size},{size}]",
        "data.batch_size=8",
        "data.validation_split=0.2",
        "data.test_split=0.2",
        "trainer.epochs=1",
    ]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=quiet_env())
    if result.returncode:
        sys.exit(f"train failed:\n{(result.stdout + result.stderr)[-3000:]}")
    (run,) = (cwd / "outputs" / "runs").iterdir()
    return run


def quiet_env(**extra):
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


def median_ms(fn, repeats, per):
    """Median milliseconds of `fn()` over `repeats` calls (after 3 warm-up calls), / `per`."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000 / per


def latency(model, files, shape, repeats, preprocess=None):
    """`{"read": ms/image, "predict_on_batch": {batch: ms/image}, "predict": {...}}`."""
    from kerasrun.rundir.run import load_images

    result = {"read": median_ms(lambda: load_images(files[:1], shape), repeats, 1)}
    images = load_images(files, shape)
    images = np.concatenate([images] * (max(BATCHES) // len(images) + 1))
    for name in ("predict_on_batch", "predict"):
        result[name] = {}
        for batch in BATCHES:
            x = images[:batch]
            x = preprocess(x.copy()) if preprocess else x
            if name == "predict":
                call = lambda x=x, b=batch: model.predict(x, batch_size=b, verbose=0)  # noqa: E731
            else:
                call = lambda x=x: model.predict_on_batch(x)  # noqa: E731
            result[name][batch] = median_ms(call, repeats if batch > 1 else repeats * 2, batch)
    return result


def cli_wall_time(args, cwd, env):
    """Median wall seconds of `predict <args>`, and its own "N predictions in X s" seconds."""
    walls, inner = [], []
    for _ in range(CLI_REPEATS):
        start = time.perf_counter()
        result = subprocess.run(
            [str(BIN / "predict"), *args], cwd=cwd, capture_output=True, text=True, env=env
        )
        walls.append(time.perf_counter() - start)
        if result.returncode:
            sys.exit(f"predict failed:\n{(result.stdout + result.stderr)[-3000:]}")
        line = next(x for x in result.stdout.splitlines() if " predictions in " in x)
        inner.append(float(line.rsplit(" in ", 1)[1].split()[0]))
    return statistics.median(walls), statistics.median(inner)


def machine():
    cpu = cpu_model()
    import keras
    import tensorflow as tf

    gpus = len(tf.config.list_physical_devices("GPU"))
    return (
        f"{os.cpu_count()} CPU cores ({cpu}), {f'{gpus} GPU' if gpus else 'no GPU'}; Python "
        f"{platform.python_version()}, TensorFlow {tf.__version__}, Keras {keras.__version__}, "
        f"{platform.system()} {platform.release()}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per batch size")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    from kerasrun.training import runtime

    runtime.import_tensorflow_quietly()
    import keras

    from kerasrun.rundir.run import open_run

    rows, cli = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photos = write_photos(tmp / "photos")
        files = sorted((photos / "cats").glob("*.jpg"))[: CLI_IMAGES // 2]
        files += sorted((photos / "dogs").glob("*.jpg"))[: CLI_IMAGES - len(files)]
        ten = tmp / "ten"
        ten.mkdir()
        for f in files:
            (ten / f.name).write_bytes(f.read_bytes())

        for size in SIZES:
            print(f"convnet {size}x{size}: training a run ...", flush=True)
            run = open_run(train_run(tmp / f"run{size}", photos, size))
            model = run.load_model()
            name = f"`convnet` run, {size}x{size}x3 ({model.count_params():,} parameters)"
            rows.append((name, latency(model, files, (size, size, 3), args.repeats)))
            keras.backend.clear_session()
            cli.append(
                (
                    f"`predict run=<convnet {size}x{size} run> inputs=[10 images]`",
                    cli_wall_time([f"run={run.path}", f"inputs=[{ten}]"], tmp, quiet_env()),
                )
            )

        print("MobileNetV2 224x224 (random weights) ...", flush=True)
        model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
        weights = tmp / "mobilenet_v2.weights.h5"
        model.save_weights(weights)
        name = f"MobileNetV2, 224x224x3 ({model.count_params():,} parameters)"
        preprocess = keras.applications.mobilenet_v2.preprocess_input
        rows.append((name, latency(model, files, (224, 224, 3), args.repeats, preprocess)))
        keras.backend.clear_session()
        home = tmp / "keras_home"
        (home / "models").mkdir(parents=True)
        index = {str(i): [f"n{i:08d}", f"class_{i}"] for i in range(1000)}
        (home / "models" / "imagenet_class_index.json").write_text(json.dumps(index))
        backbone = ["backbone=MobileNetV2", f"weights={weights}", f"inputs=[{ten}]"]
        cli.append(
            (
                f"`predict {backbone[0]} weights=<file> inputs=[10 images]`",
                cli_wall_time(backbone, tmp, quiet_env(KERAS_HOME=str(home))),
            )
        )

        start = time.perf_counter()
        subprocess.run([str(BIN / "predict"), "--help"], capture_output=True, env=quiet_env())
        help_s = time.perf_counter() - start

    write_markdown(args.out, rows, cli, help_s, args.repeats)
    print(f"Wrote {args.out}")


def write_markdown(out, rows, cli, help_s, repeats):
    def ms(value):
        return f"{value:.2f}" if value < 10 else f"{value:.0f}"

    table = [
        "| model | read 1 image | `predict_on_batch` batch 1 | batch 32 | `model.predict` "
        "batch 1 | batch 32 |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in rows:
        cells = [r["read"], *r["predict_on_batch"].values(), *r["predict"].values()]
        table.append(f"| {name} | " + " | ".join(ms(c) for c in cells) + " |")
    wall = [
        "| command | wall time | of which predicting (read + model) |",
        "| --- | ---: | ---: |",
    ]
    for name, (total, inner) in cli:
        wall.append(f"| {name} | {total:.1f} s | {inner:.2f} s |")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    out.write_text(
        TEMPLATE.format(
            table="\n".join(table),
            wall="\n".join(wall),
            help=f"{help_s:.1f}",
            repeats=repeats,
            machine=machine(),
            date=datetime.date.today().isoformat(),
            load=f"{load:.1f}",
            command=f".venv/bin/python scripts/benchmark_predict.py --repeats {repeats}",
        )
    )


TEMPLATE = """# predict: latency per image

`predict` reads each image as training did (`rundir.load_images`: Pillow decode, TensorFlow's
bilinear resize, uint8), stacks `batch_size` of them (32 by default) and calls
`model.predict_on_batch` once per batch; the model does its own preprocessing (the
MobileNetV2 rows add keras.applications' `preprocess_input`).

## Per image, start-up excluded

Median milliseconds per image over {repeats} timed calls (twice as many for batch 1), after
3 warm-up calls, in one process:

{table}

`model.predict` builds a new data iterator on every call: for one image that overhead is
most of the time, so `predict` calls `predict_on_batch` (the same outputs; the tests check
them against `model.predict`). With batches of 32 the model's own work dominates.

## The whole command, 10 images

Wall time of the `predict` command on a folder of 10 JPEGs (100x120), the median of 3 runs,
start-up included (Python, TensorFlow's import, loading or building the model, the first
call's tracing). "Predicting" is the command's own "10 predictions in ... s" line: reading
the files, the model, printing. `predict --help` alone (no TensorFlow) takes {help} s.

{wall}

Start-up, not the model, is most of the wall time: for many images, give them to one
command (`inputs=[folder/]`), not one command each.

- Machine: {machine}
- Measured {date}; 1-minute load average {load} (the machine is shared: compare rows with
  each other rather than with another machine).

Reproduce (from the repository root; trains two 1-epoch runs in a temporary folder, about
5 minutes on the shared machine, nothing downloaded):

```
{command}
```
"""


if __name__ == "__main__":
    main()
