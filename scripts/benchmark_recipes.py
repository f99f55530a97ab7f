"""Runs the book's recipes with the real `train` command and writes docs/recipes.md.

Each recipe is a `train` command; its metrics.json and history.csv are read back and
put beside the figure the book reports. Usage (from the repository root, venv active):

    python scripts/benchmark_recipes.py                       # every recipe below
    python scripts/benchmark_recipes.py default cats_dogs_scratch
    python scripts/benchmark_recipes.py cats_dogs_scratch --epochs 15

Needs ../shared/data/cats_and_dogs_filtered (or set CATS_AND_DOGS=path) for the cats-vs-dogs
recipes. Results accumulate in docs/recipes.json; docs/recipes.md is rebuilt from it.
"""

import argparse
import csv
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from machine import cpu_model

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CATS_AND_DOGS", REPO.parent / "shared/data/cats_and_dogs_filtered"))
TRAIN = str(Path(sys.executable).with_name("train"))

RECIPES = {
    "default": {
        "command": [],
        "book": "— (kerasrun's offline default: test accuracy ≥ 0.95 promised)",
    },
    "cats_dogs_scratch": {
        "command": ["experiment=cats_dogs_scratch", f"data.root={DATA}"],
        "book": "val. accuracy stalls at 70–72% (30 epochs); val. loss lowest after ~5 epochs",
    },
    "cats_dogs_aug_dropout": {
        "command": ["experiment=cats_dogs_aug_dropout", f"data.root={DATA}"],
        "book": "no longer overfits; val. accuracy 82% after 100 epochs of 100 steps",
    },
}


def run(name, epochs):
    recipe = RECIPES[name]
    overrides = recipe["command"] + ([f"trainer.epochs={epochs}"] if epochs else [])
    out = REPO / "outputs" / "benchmarks"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [TRAIN, *overrides, f"paths.root={out}"]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env=env, cwd=REPO)
    run_dir = max((out / "runs").iterdir(), key=lambda p: p.stat().st_mtime)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    with open(run_dir / "history.csv") as f:
        history = list(csv.DictReader(f))
    shown = " ".join(["train", *overrides]).replace(str(DATA), os.path.relpath(DATA, REPO))
    return {
        "command": shown,
        "book": recipe["book"],
        "metrics": metrics,
        "history": history,
        "date": datetime.date.today().isoformat(),
    }


def machine():
    cpu = cpu_model()
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def write_markdown(results):
    lines = [
        "# The book's recipes, run by kerasrun",
        "",
        f"Machine: {machine()}, no GPU (so `auto` = float32, no XLA).",
        "Reproduce: `python scripts/benchmark_recipes.py [recipe ...] [--epochs N]`.",
        "",
        "- `cats_dogs` on a `cats_and_dogs_filtered` folder splits its validation/ in half: "
        "500 validation and 500 test images (the book had 1,000 of each from Kaggle's folder).",
        "- Test metrics are those of the final model, as the book's `evaluate`; the best "
        "epoch's model is in `checkpoints/best.keras`.",
        "- Wall time is the run's own (`metrics.json`), without the ~2 s TensorFlow import.",
        "",
        "| recipe | command | book | kerasrun | epochs | wall time |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in results.items():
        m = r["metrics"]
        ours = ", ".join(
            f"{k} {m[k]:.3f}" for k in ("best_val_accuracy", "test_accuracy") if k in m
        )
        if "best_epoch" in m:
            ours += f"; val_loss lowest at epoch {m['best_epoch']}"
        lines.append(
            f"| {name} | `{r['command']}` | {r['book']} | {ours} | {m['epochs']} "
            f"| {m['wall_time_s']:.0f} s |"
        )
    for name, r in results.items():
        lines += [
            "",
            f"## {name}",
            "",
            f"`{r['command']}` ({r['date']})",
            "",
            "| epoch | loss | accuracy | val_loss | val_accuracy |",
            "| --- | --- | --- | --- | --- |",
        ]
        for row in r["history"]:
            cells = [row.get(k, "") for k in ("loss", "accuracy", "val_loss", "val_accuracy")]
            lines.append(
                f"| {int(row['epoch']) + 1} | "
                + " | ".join(f"{float(c):.4f}" if c else "" for c in cells)
                + " |"
            )
    (REPO / "docs" / "recipes.md").write_text("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipes", nargs="*", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--epochs", type=int, default=None, help="override trainer.epochs")
    args = parser.parse_args()
    store = REPO / "docs" / "recipes.json"
    results = json.loads(store.read_text()) if store.exists() else {}
    for name in args.recipes:
        results[name] = run(name, args.epochs)
        store.write_text(json.dumps(results, indent=1) + "\n")
        write_markdown(results)
    print(f"Wrote {REPO / 'docs' / 'recipes.md'}")


if __name__ == "__main__":
    main()
