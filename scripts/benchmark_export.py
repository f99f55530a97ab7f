"""Measures `export-model`: the size of each format, the time to write it; updates docs/export.md.

Two models:
- the test fixture's run: `train` on 32x32 red "cats" and blue "dogs" (tests/conftest.py's
  `trained_image_run` recipe: the default `convnet`, 4 epochs, Adam), then the real
  `export-model` command for each format, timed end to end (TensorFlow's import included);
- the book's `small_convnet` at 150x150 (3.45M parameters), built with
  `kerasrun.models.build_model` (untrained: sizes and times do not depend on the weights'
  values), exported in this process by `export_and_check`, the code the command runs, on 8
  random images in [0, 255]. Untrained, it predicts near 0.5 rather than a saturated 0 or 1,
  so its `max |export - keras|` shows each runtime's real float32 rounding.

The `.keras` checkpoint `train` writes carries the optimizer's state; `export-model
format=keras` does not (an inference copy). The table shows both.

Usage:
    .venv/bin/python scripts/benchmark_export.py [--repeat 2]

It replaces the part of docs/export.md between its `benchmark` markers.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from machine import cpu_model

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "export.md"
START, END = "<!-- benchmark:start -->", "<!-- benchmark:end -->"
BIN = Path(sys.executable).parent
FORMATS = ["keras", "saved_model", "tflite", "onnx"]
# tests/conftest.py's trained_image_run, as overrides of `train`.
FIXTURE_TRAIN = [
    "data=image_folder",
    "data.image_size=[32,32]",
    "data.batch_size=8",
    "data.validation_split=0.2",
    "data.test_split=0.2",
    "trainer.epochs=4",
    "optimizer=adam",
]


def write_photos(root, per_class=30, size=(40, 36)):
    """Reddish "cats" and bluish "dogs" JPEGs, as tests/helpers.py's `make_class_folder`."""
    from PIL import Image

    for label, name in enumerate(("cats", "dogs")):
        (root / name).mkdir(parents=True, exist_ok=True)
        base = np.array([200, 40, 40]) if label == 0 else np.array([40, 40, 200])
        for i in range(per_class):
            rng = np.random.default_rng(label * 1000 + i)
            pixels = np.clip(base + rng.normal(0, 25, size=(*size, 3)), 0, 255).astype("uint8")
            Image.fromarray(pixels).save(root / name / f"{name[:-1]}.{i}.jpg")
    return root


def fixture_rows(work, repeat):
    """Trains the fixture's run, then times `export-model` for each format (best of `repeat`)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    photos = write_photos(work / "photos")
    subprocess.run(
        [str(BIN / "train"), *FIXTURE_TRAIN, f"data.root={photos}"],
        cwd=work,
        env=env,
        check=True,
        capture_output=True,
    )
    (run_dir,) = (work / "outputs" / "runs").iterdir()
    rows = {"checkpoint": (run_dir / "checkpoints" / "best.keras").stat().st_size}
    for fmt in FORMATS:
        best = None
        for _ in range(repeat):
            start = time.perf_counter()
            subprocess.run(
                [str(BIN / "export-model"), f"run={run_dir}", f"format={fmt}"],
                cwd=work,
                env=env,
                check=True,
                capture_output=True,
            )
            command_s = time.perf_counter() - start
            record = json.loads((run_dir / "export" / fmt / "export.json").read_text())
            record["command_s"] = command_s
            if best is None or record["wall_time_s"] < best["wall_time_s"]:
                best = record
        rows[fmt] = best
        print(fmt, best["size_bytes"], best["wall_time_s"], f"{command_s:.1f} s", flush=True)
    return rows


def small_convnet_rows(work, repeat):
    """Builds the book's small_convnet at 150x150; exports it in this process."""
    from kerasrun.training import runtime

    runtime.import_tensorflow_quietly()
    import keras

    from kerasrun.inference.export import export_and_check, load_for_inference, random_inputs
    from kerasrun.models import build_model
    from kerasrun.tasks import Task

    keras.utils.set_random_seed(0)
    model = build_model("small_convnet", input_shape=(150, 150, 3), task=Task("binary", 1))
    # A checkpoint as train writes it: compiled with the default RMSprop, whose state exists
    # after one step (on random data: only the file's size matters here).
    model.compile(optimizer="rmsprop", loss="binary_crossentropy")
    inputs = random_inputs(model, 8)
    model.train_on_batch(inputs, np.zeros((8, 1), "float32"))
    checkpoint = work / "small_convnet.keras"
    model.save(checkpoint)
    rows = {"checkpoint": checkpoint.stat().st_size, "params": model.count_params()}
    model = load_for_inference(checkpoint)  # as export-model loads a run's checkpoint
    for fmt in FORMATS:
        best = None
        for _ in range(repeat):
            record = export_and_check(model, fmt, work / "small" / fmt, inputs)
            if best is None or record["wall_time_s"] < best["wall_time_s"]:
                best = record
        rows[fmt] = best
        print(fmt, best["size_bytes"], best["wall_time_s"], flush=True)
    return rows


def versions():
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for package in ("tensorflow", "keras", "tf2onnx", "onnxruntime"):
        try:
            out.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            out.append(f"{package} (not installed)")
    return ", ".join(out)


def mb(n):
    return f"{n / 1e6:.2f} MB"


def table(fixture, small):
    lines = [
        "| format | convnet 32×32 (fixture run, 1.12M params) | export s | `export-model` s "
        "| max abs diff | small_convnet 150×150 (3.45M params) | export s | max abs diff |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| train's checkpoint (`best.keras`, with optimizer state) | {mb(fixture['checkpoint'])} "
        f"| | | | {mb(small['checkpoint'])} | | |",
    ]
    for fmt in FORMATS:
        f, s = fixture[fmt], small[fmt]
        lines.append(
            f"| `{fmt}` | {mb(f['size_bytes'])} | {f['wall_time_s']:.2f} | {f['command_s']:.1f} "
            f"| {f['max_abs_diff']:.2g} | {mb(s['size_bytes'])} | {s['wall_time_s']:.2f} "
            f"| {s['max_abs_diff']:.2g} |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="exports per cell (best kept)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        fixture = fixture_rows(work, args.repeat)
        small = small_convnet_rows(work, args.repeat)
    date = datetime.date.today().isoformat()
    body = f"""{START}
{table(fixture, small)}

- Sizes in MB (10^6 bytes); a SavedModel is a folder (the sum of its files). "export s" is
  `wall_time_s` of export.json: writing the export only (tflite: a SavedModel first, then the
  converter), the best of {args.repeat}. "`export-model` s" is the whole command: Python and
  TensorFlow start-up, loading the checkpoint, rebuilding the data, exporting, loading the
  export back and predicting. "max abs diff": the check on 8 examples (the fixture: its test
  images, whose predictions are saturated near 0 or 1; small_convnet: random images).
- Machine: {os.cpu_count()} CPUs ({cpu_model()}), no GPU; Python {platform.python_version()};
  {versions()}. Measured {date}; 1-minute load average {load:.1f} (other jobs shared the
  machine: compare rows with each other rather than with another machine).
- Reproduce: `.venv/bin/python scripts/benchmark_export.py` (about {1 + args.repeat // 2}
  minutes; it trains the fixture's run first).
{END}"""
    text = DOC.read_text()
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    DOC.write_text(before + body + after)
    print(f"Wrote {DOC}")


if __name__ == "__main__":
    main()
