"""Times the book's chapter 3, 4 and 6 presets with the real `train` command: docs/presets.md.

No download: synthetic data of the book's sizes and Keras's file formats is generated once into
a temporary folder (IMDB 25,000 + 25,000 reviews, Reuters 8,982 + 2,246 newswires, Boston 506,
a Jena CSV of 420,551 rows, a full-size aclImdb tree and a 400,000-word GloVe file), then each
preset trains one epoch on it. Only the timings and the parameter counts are meaningful.
Usage (from the repository root, venv active):

    python scripts/benchmark_presets.py                    # every preset
    python scripts/benchmark_presets.py imdb_lstm jena_climate_gru --out docs/presets.md

Results accumulate in the .json beside --out; the markdown page is rebuilt from it.
"""

import argparse
import io
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import yaml

from machine import cpu_model

REPO = Path(__file__).resolve().parents[1]
TRAIN = str(Path(sys.executable).with_name("train"))
EPOCH_LINE = re.compile(r"INFO (?:(fold \d+/\d+|final model) )?Epoch \d+/\d+ · ([\d.]+) s")
PARAMS_LINE = re.compile(r"INFO Model: \S+ · ([\d,]+) parameters \(([\d,]+) trainable")
# preset: (book section, the book's settings, the book's reported figure)
BOOK = {
    "imdb_dense": ("3.4", "Dense16×2, multi-hot 10k, bs 512, 20 ep, 10k val",
                   "val loss best ≈ epoch 4; retrained 4 ep: **test acc 0.8833**"),
    "reuters_dense": ("3.5", "Dense64×2 → 46, bs 512, 20 ep, 1k val",
                      "overfits after 9 ep; retrained 9 ep: **test acc 0.7970**; random ≈ 0.19"),
    "reuters_bottleneck": ("3.5.7", "Dense64 → Dense4 → 46, bs 128, 20 ep",
                           "val acc peaks **≈ 71%** (8 points lower)"),
    "boston_housing_kfold": ("3.6", "Dense64×2 → 1, mse, 4 folds × 100 ep at bs 1; final 80 ep",
                     "fold MAEs 2.59/3.13/3.19/3.08, **mean 2.99**; final **test MAE 2.55**"),
    "imdb_capacity_small": ("4.4.1", "Dense4×2, else as imdb_dense",
                            "overfits after **6 ep** (reference: 4)"),
    "imdb_capacity_big": ("4.4.1", "Dense512×2, else as imdb_dense",
                          "overfits after **1 ep**; train loss → 0"),
    "imdb_l2": ("4.4.2", "Dense16×2 with l2(0.001)", "more resistant to overfitting (figure)"),
    "imdb_dropout": ("4.4.3", "Dense16×2 with Dropout(0.5)", "clear improvement (figure)"),
    "imdb_embedding_flatten": ("6.1.2", "Emb(10k, 8) → Flatten, last 20 words, bs 32, 10 ep",
                               "val acc **≈ 76%**"),
    "imdb_raw_glove_200": ("6.1.3", "raw aclImdb, 200 train / 10k val, 100 words, frozen GloVe "
                       "100-d → Dense32, bs 32, 10 ep", "val acc close to 60%; **test acc 56%**"),
    "imdb_raw_noglove_200": ("6.1.3", "the same, Embedding learnt from scratch",
                         "val acc **a bit over 50%**"),
    "imdb_simplernn": ("6.2.1", "Emb(10k, 32) → SimpleRNN32, 500 words, bs 128, 10 ep",
                       "val acc **only 85%**"),
    "imdb_lstm": ("6.2.3", "Emb(10k, 32) → LSTM32, as above", "val acc **89%**"),
    "imdb_bilstm": ("6.3.8", "Emb(10k, 32) → Bidirectional(LSTM32), as above",
                    "val acc **over 89%**; overfits quickly"),
    "imdb_conv1d": ("6.4.3", "Emb(10k, 128) → 2×Conv1D(32, 7), lr 1e-4, bs 128, 10 ep",
                    "slightly below the LSTM, faster; best at **4 ep**"),
    "jena_climate_naive": (
        "6.3.3", "T(t + 24 h) = T(t), no training", "**val MAE 0.29** = 2.57 °C"
    ),
    "jena_climate_dense": ("6.3.4", "Flatten → Dense32, mae, 500 steps × 20 ep",
                   "some val losses near 0.29, not reliably better"),
    "jena_climate_gru": ("6.3.5", "GRU32, 500 × 20", "**val MAE ≈ 0.265** = 2.35 °C"),
    "jena_climate_gru_dropout": ("6.3.6", "GRU32, dropout 0.2/0.2, 500 × 40",
                         "no overfitting for 30 ep; best not much better than 0.265"),
    "jena_climate_stacked_gru": ("6.3.7", "GRU32 → GRU64, dropout 0.1/0.5, 500 × 40",
                         "some improvement, not significant"),
    "jena_climate_bigru": ("6.3.8", "Bidirectional(GRU32), 500 × 40", "about as good as the GRU"),
    "jena_climate_conv1d": ("6.4.4", "3×Conv1D(32, 5) with pools, 500 × 20",
                    "**val MAE 0.4–0.5**: worse than the baseline"),
    "jena_climate_conv1d_gru": ("6.4.4", "2×Conv1D(32, 5) → GRU32 (0.1/0.5), step 3, lookback 720, "
                        "500 × 20", "worse than the regularized GRU, much faster"),
}  # fmt: skip
GLOVE = ("imdb_raw_glove_200", "imdb_raw_noglove_200")
PRESETS = [p for p in BOOK if p not in GLOVE or (REPO / f"conf/experiment/{p}.yaml").exists()]
JENA_HEADER = (
    "p (mbar),T (degC),Tpot (K),Tdew (degC),rh (%),VPmax (mbar),VPact (mbar),VPdef (mbar),"
    "sh (g/kg),H2OC (mmol/mol),rho (g/m**3),wv (m/s),max. wv (m/s),wd (deg)"
)


def word_ranks(rng, n, mean_length, classes, p=None):
    """n documents (an object array of lists) of Zipf-distributed word ranks, log-normal
    lengths around `mean_length`; 2% of a document's words are 10 + its class: a weak signal."""
    labels = rng.choice(classes, n, p=p)
    lengths = np.clip(rng.lognormal(np.log(mean_length) - 0.3, 0.77, n), 10, 2500).astype(int)
    docs = []
    for label, length in zip(labels, lengths, strict=True):
        words = np.minimum(rng.zipf(1.3, length), 88583)
        words[rng.random(length) < 0.02] = 10 + label
        docs.append(words.tolist())
    array = np.empty(n, dtype=object)
    array[:] = docs
    return array, labels


def make_data(kind, folder):
    """Writes one synthetic dataset into `folder`; returns the `train` overrides that read it."""
    rng = np.random.default_rng(0)
    if kind == "imdb":
        (x, y), (xt, yt) = (word_ranks(rng, 25000, 234, 2) for _ in range(2))
        np.savez(folder / "imdb.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
        return [f"data.path={folder / 'imdb.npz'}"]
    if kind == "reuters":  # 11,228 newswires: Keras's load_data keeps 80% to train
        p = 1 / np.arange(1, 47) ** 1.3
        x, y = word_ranks(rng, 11228, 145, 46, p / p.sum())
        np.savez(folder / "reuters.npz", x=x, y=y)
        return [f"data.path={folder / 'reuters.npz'}"]
    if kind == "boston":
        x = rng.normal(size=(506, 13)) * rng.uniform(0.5, 100, 13) + rng.uniform(0, 400, 13)
        y = np.clip(22 + (x - x.mean(0)) / x.std(0) @ rng.normal(0, 2, 13), 5, 50)
        np.savez(folder / "boston_housing.npz", x=x, y=y)
        return [f"data.path={folder / 'boston_housing.npz'}"]
    if kind == "jena":  # 14 columns of yearly and daily cycles plus slow weather
        n, t = 420551, np.arange(420551)
        kernel = np.exp(-np.arange(600) / 150)
        weather = np.stack([np.convolve(rng.normal(size=n), kernel)[:n] / 8 for _ in range(14)])
        cycles = np.stack([np.sin(2 * np.pi * t / 52560), np.sin(2 * np.pi * t / 144)])
        values = (rng.normal(0, 0.5, (14, 2)) @ cycles + weather) * rng.uniform(1, 9, (14, 1))
        values[1] = 9 + 8 * cycles[0] + 4 * cycles[1] + 3 * weather[1]  # T (degC)
        body = io.StringIO()
        np.savetxt(body, values.T + np.eye(14)[0] * 900, fmt="%.2f", delimiter=",")
        stamps = np.datetime64("2009-01-01T00:10:00") + t * np.timedelta64(10, "m")
        dates = [f"{s[8:10]}.{s[5:7]}.{s[:4]} {s[11:19]}" for s in stamps.astype(str)]
        with open(folder / "jena_climate_2009_2016.csv", "w") as f:
            f.write(",".join(f'"{h}"' for h in ["Date Time", *JENA_HEADER.split(",")]) + "\n")
            rows = body.getvalue().splitlines()
            f.writelines(f"{d},{row}\n" for d, row in zip(dates, rows, strict=True))
        return [f"data.path={folder / 'jena_climate_2009_2016.csv'}"]
    if kind == "aclimdb":  # 12,500 reviews a class and split; a GloVe file of 400,000 words
        for split in ("train", "test"):
            docs, labels = word_ranks(rng, 25000, 234, 2)
            for i, (doc, label) in enumerate(zip(docs, labels, strict=True)):
                out = folder / "aclImdb" / split / ("neg", "pos")[label]
                out.mkdir(parents=True, exist_ok=True)
                (out / f"{i}_{7 * label + 2}.txt").write_text(" ".join(f"w{w}" for w in doc))
        table = np.column_stack([np.arange(1, 400001), rng.normal(0, 0.4, (400000, 100))])
        np.savetxt(folder / "glove.6B.100d.txt", table, fmt="w%d" + " %.5f" * 100)
        return [f"data.root={folder / 'aclImdb'}"]
    raise ValueError(kind)


def data_kind(preset):
    return "aclimdb" if preset in GLOVE else preset.split("_")[0]


def run(preset, data_args, tmp):
    cwd = tmp / preset
    cwd.mkdir()
    extra = ["trainer.epochs=1"] if preset != "jena_climate_naive" else []
    if preset == "boston_housing_kfold":
        extra.append("trainer.final_epochs=1")
    if preset == "imdb_raw_glove_200":
        extra.append(f"glove_path={tmp / 'data' / 'glove.6B.100d.txt'}")
    cmd = [TRAIN, f"experiment={preset}", *data_args, *extra]
    print("+", " ".join(cmd), flush=True)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    start = time.perf_counter()
    with open(cwd / "console.log", "w") as log:
        try:
            code = subprocess.run(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  timeout=4 * 3600).returncode  # fmt: skip
        except subprocess.TimeoutExpired:
            code = "timeout"
    result = {"returncode": code, "process_s": round(time.perf_counter() - start, 1)}
    runs = sorted((cwd / "outputs" / "runs").glob("*"))
    run_dir = runs[-1] if runs else cwd
    text = (run_dir / "train.log").read_text() if (run_dir / "train.log").exists() else ""
    if (run_dir / "metrics.json").exists():
        result["metrics"] = json.loads((run_dir / "metrics.json").read_text())
    if (run_dir / "config.yaml").exists():
        result["runtime"] = yaml.safe_load((run_dir / "config.yaml").read_text()).get("runtime")
    if (run_dir / "history.csv").exists():
        result["history"] = (run_dir / "history.csv").read_text().splitlines()
    if match := PARAMS_LINE.search(text):
        result["parameters"], result["trainable"] = (
            int(m.replace(",", "")) for m in match.groups()
        )
    result["epoch_s"] = [(phase or "", float(s)) for phase, s in EPOCH_LINE.findall(text)]
    if code != 0:
        lines = [line for line in (cwd / "console.log").read_text().splitlines() if line.strip()]
        result["error"] = result.get("metrics", {}).get("error") or (lines or ["?"])[-1].strip()
    result["estimate_s"] = estimate(preset, result)
    print(f"  -> {code}, {result['process_s']} s, {result.get('error', '')}", flush=True)
    return result


def estimate(preset, result):
    """Seconds for the preset's own epoch count: epochs × the measured epoch."""
    trainer = yaml.safe_load((REPO / f"conf/experiment/{preset}.yaml").read_text())["trainer"]
    times = result["epoch_s"]
    if not trainer["epochs"]:
        return result.get("metrics", {}).get("wall_time_s")
    if not times:
        return None
    folds = [s for phase, s in times if phase.startswith("fold")]
    final = [s for phase, s in times if not phase.startswith("fold")]
    total = sum(folds) * trainer["epochs"]
    epochs = trainer.get("final_epochs") if trainer.get("kfold") else trainer["epochs"]
    return total + (final[0] * epochs if final and epochs else 0)


def machine():
    cpu = cpu_model()
    return (
        f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, "
        f"TensorFlow {version('tensorflow')}, Keras {version('keras')}"
    )


def duration(seconds):
    if seconds is None:
        return "—"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def user_command(preset):
    glove = " glove_path=~/glove.6B.100d.txt" if preset == "imdb_raw_glove_200" else ""
    return f"`train experiment={preset}{glove}`"


def write_markdown(results, out):
    runtime = next((r["runtime"] for r in results.values() if r.get("runtime")), {})
    lines = [
        "# The book's chapter 3, 4 and 6 presets: how long they take",
        "",
        f"Machine: {machine()}; runtime {runtime.get('devices', '?')}, "
        f"{runtime.get('precision', '?')}, XLA {'on' if runtime.get('jit_compile') else 'off'}.",
        f"Reproduce: `python scripts/benchmark_presets.py [preset ...] --out "
        f"{os.path.relpath(out, REPO)}` "
        "(writes its data to a temporary folder; nothing is downloaded).",
        "",
        "- **The data is synthetic**, generated at the book's sizes and in Keras's file formats "
        "(IMDB 25,000 + 25,000 reviews of ~234 words, word indices < 10,000 after `num_words`; "
        "Reuters 8,982 + 2,246 newswires, 46 topics; Boston 404 + 102 × 13; a Jena CSV of 420,551 "
        "rows × 14 columns; a full-size aclImdb tree of 50,000 reviews and a 400,000-word, 100-d "
        "GloVe file). Only the timings and parameter counts mean anything, not accuracies or MAEs.",
        "- Each preset ran **one epoch** (`trainer.epochs=1`; boston_housing_kfold: 1 epoch per "
        "fold and `trainer.final_epochs=1`). *s / epoch* is the fit epoch with its validation, "
        "as `train` logs it (the first epoch, so it includes tracing the graph); *full preset* = "
        "the preset's epochs × that (boston_housing_kfold: 4 folds × 100 + 80 final epochs). "
        "*run here* is the whole 1-epoch run from `metrics.json` (data loading and test "
        "included, TF import excluded).",
        "- With the real data, type the command shown: Keras downloads the dataset once.",
        "",
        "| preset | § | book's settings | book's figure | with the real data | parameters "
        "| s / epoch | full preset | run here |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for preset in [p for p in BOOK if p in results]:
        r, (section, settings, figure) = results[preset], BOOK[preset]
        folds = [s for phase, s in r["epoch_s"] if phase.startswith("fold")]
        times = [s for phase, s in r["epoch_s"] if not phase.startswith("fold")]
        per_epoch = f"{times[0]:.1f}" if times else "— (0 epochs)"
        if folds:
            per_epoch = f"{np.mean(folds):.1f} a fold, {times[0] if times else 0:.1f} final"
        wall = r.get("metrics", {}).get("wall_time_s")
        params = f"{r['parameters']:,}" if "parameters" in r else "—"
        if r.get("trainable", r.get("parameters")) != r.get("parameters"):
            params += f" ({r['trainable']:,} trainable)"
        if "error" in r:
            per_epoch = f"**failed** ({r['returncode']}): {r['error'][:200]}"
        lines.append(
            f"| {preset} | {section} | {settings} | {figure} | {user_command(preset)} | {params} "
            f"| {per_epoch} | {duration(r['estimate_s'])} | {duration(wall)} |"
        )
    naive = results.get("jena_climate_naive", {}).get("metrics", {})
    lines += [
        "",
        "## Chapter 6's Jena presets and the common-sense baseline",
        "",
        "Every Jena run computes the book's common-sense baseline (§6.3.3: the temperature in "
        "24 hours equals the temperature now) on its own validation and test windows, prints it "
        "(`Baseline (no learning): val_mae … · test_mae …`) and saves it in `metrics.json` "
        "(`baseline_val_mae`, `baseline_val_mae_original` in °C, `baseline_test_mae`, …), so "
        "each model's `val_mae` can be read against the 0.29 (2.57 °C) it must beat. "
        "`jena_climate_naive` is that baseline as a model with nothing to train "
        "(`trainer.epochs=0`): its `val_mae` equals `baseline_val_mae`.",
    ]
    if naive.get("val_mae") is not None:
        lines.append(
            f"Here, on the synthetic CSV: jena_climate_naive val_mae {naive['val_mae']:.6f}, "
            f"baseline_val_mae {naive.get('baseline_val_mae', float('nan')):.6f}."
        )
    printed = [
        f"{p} {r['metrics']['baseline_val_mae']:.4f} (its val_mae after 1 epoch: "
        f"{r['metrics'].get('val_mae', float('nan')):.4f})"
        for p, r in results.items()
        if p.startswith("jena_")
        and p != "jena_climate_naive"
        and "baseline_val_mae" in r.get("metrics", {})
    ]
    if printed:
        lines.append(
            f"The baseline the other runs printed: {'; '.join(printed)}. jena_climate_conv1d_gru's "
            "windows (step 3, lookback 720) are other windows, so its baseline differs slightly."
        )
    out.write_text("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("presets", nargs="*", metavar="preset", help=", ".join(PRESETS))
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "presets.md")
    args = parser.parse_args()
    if unknown := sorted(set(args.presets) - set(PRESETS)):
        parser.error(f"unknown preset {', '.join(unknown)}; choose from {', '.join(PRESETS)}")
    store = args.out.with_suffix(".json")
    results = json.loads(store.read_text()) if store.exists() else {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="presets-") as tmp:
        tmp, data = Path(tmp), {}
        (tmp / "data").mkdir()
        print(f"Working in {tmp}", flush=True)
        for preset in args.presets or PRESETS:
            kind = data_kind(preset)
            if kind not in data:
                print(f"Generating {kind} ...", flush=True)
                data[kind] = make_data(kind, tmp / "data")
            results[preset] = run(preset, data[kind], tmp)
            store.write_text(json.dumps(results, indent=1) + "\n")
            write_markdown(results, args.out)
    print(f"Wrote {args.out} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
