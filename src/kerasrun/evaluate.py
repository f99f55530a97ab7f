"""`evaluate`: a finished run's model scored again on its test (or validation) split.

evaluate run=outputs/runs/2026-11-22_10-00-00_cats_dogs-small_convnet
evaluate run=<run> split=validation checkpoint=last
evaluate run=<run> data.root=/here/cats_and_dogs_filtered     # a run trained elsewhere
evaluate runs=[<run>,<run>,<run>] weights=optimize            # an ensemble: kerasrun.ensemble

`model.evaluate` on the split gives the metrics. For classification, one pass of predictions
gives a confusion matrix, a per-class report (numpy only) and two images drawn with Pillow:
`confusion_matrix.png` and, for image data, `misclassified.png` (the most confident mistakes).
Everything lands in `<run>/eval/<split>/`; the images and metrics also go to TensorBoard, in
`<run>/tensorboard/eval/`, beside the run's curves.
"""

import heapq
import itertools
import json
import logging
import math
import time
import warnings
from pathlib import Path

import hydra

from kerasrun import console
from kerasrun.config.compose import conf_dir, plain
from kerasrun.config.hydra_errors import one_line_errors
from kerasrun.errors import require
from kerasrun.models import GENERATIVE
from kerasrun.rundir.results import write_json
from kerasrun.rundir.run import exit_on_user_error, open_run
from kerasrun.training import runtime

log = logging.getLogger("kerasrun")
SPLITS = ("test", "validation")
CLASSIFICATION = ("binary", "multiclass")
# DataBundle.baseline keys of each split: {"val_mae": ..., "test_mae": ...}.
BASELINE_PREFIX = {"test": "test_", "validation": "val_"}
PNG_FILES = ("confusion_matrix.png", "misclassified.png")


@one_line_errors
@hydra.main(config_path=str(conf_dir()), config_name="evaluate", version_base="1.3")
@exit_on_user_error
def main(cfg):
    """Evaluates the run `cfg.run` (see `evaluate`), or the ensemble of `cfg.runs` (see
    `kerasrun.ensemble`); a user mistake is one `Error:` line."""
    config = plain(cfg)
    if ensemble_requested(config):
        from kerasrun.evaluation.ensemble import evaluate_ensemble

        evaluate_ensemble(
            config["runs"],
            weights=config["weights"],
            split=config["split"],
            checkpoint=config["checkpoint"],
            root=config["data"]["root"],
            path=config["data"]["path"],
            batch_size=config["batch_size"],
            output=config["output"],
        )
        return
    evaluate(
        config["run"],
        split=config["split"],
        checkpoint=config["checkpoint"],
        root=config["data"]["root"],
        path=config["data"]["path"],
        batch_size=config["batch_size"],
        misclassified=config["misclassified"],
    )


def evaluate(
    run, split="test", checkpoint="best", root=None, path=None, batch_size=None, misclassified=16
):
    """Scores a run's model on one split of its data; writes and prints the results.

    Args:
        run: a run directory written by `train`.
        split: `"test"` or `"validation"`.
        checkpoint: `"best"`, `"last"` or a `.keras` file (see `kerasrun.rundir.open_run`).
        root, path: the run's `data.root` / `data.path` on this machine (`None`: the run's).
        batch_size: examples per batch (`None`: the run's `data.batch_size`).
        misclassified: how many misclassified images `misclassified.png` shows at most.

    Returns:
        What `<run>/eval/<split>/metrics.json` holds: the model's metrics in Keras names,
        `split`, `checkpoint`, `checkpoint_file`, `examples`, `wall_time_s`, and for
        classification `confusion_matrix`, `classification_report` and `misclassified`.

    Raises:
        ConfigError: a bad value, a missing run or data, a split the data does not have.
    """
    start = time.perf_counter()

    # 1. Every user mistake we can see without TensorFlow, first.
    check_options(split, batch_size, misclassified)
    run = open_run(run, checkpoint)
    overrides = {"root": root, "path": path, "batch_size": batch_size}
    check_split(run, split, available_splits(run.config))
    check_data_paths(run, overrides)

    # 2. The run's data (its split, rebuilt exactly as training made it) and model.
    runtime.import_tensorflow_quietly()
    data = run.build_data(**overrides)
    dataset = getattr(data, f"{split}_dataset")
    check_split(run, split, [s for s in SPLITS if getattr(data, f"{s}_dataset") is not None])
    model = run.load_model()
    log.info(console.describe_data(data))
    model_name = shown(run.model_path, run.path)
    log.info(f"Evaluating {model_name} on the {split} split")

    # 3. The model's own metrics, as training's final evaluation computed them.
    # A split whose bad files are skipped has no known length: Keras then warns when the
    # data ends, which is the expected end of the pass here (as in train).
    warnings.filterwarnings("ignore", message="Your input ran out of data")
    scores = model.evaluate(dataset, verbose=0, return_dict=True)
    results = {
        "split": split,
        "checkpoint": checkpoint,
        "checkpoint_file": str(run.model_path.resolve()),
        "examples": data.sizes.get(split),
        **{name: float(value) for name, value in scores.items()},
    }

    # 4. Classification: a confusion matrix, a per-class report and their images.
    # Regression: the data's no-learning baseline on this split, if it has one.
    images, mistakes = {}, None
    # A generative model (model=vae, dcgan) ignores the labels: its own losses only.
    generative = run.config["model"]["name"] in GENERATIVE
    if data.task in CLASSIFICATION and not generative:
        found, mistakes = classify(model, dataset, data, misclassified)
        results.update(found)
        images = draw(results, mistakes, f"{split} · {results['examples']} examples · {model_name}")
    else:
        results.update(split_baseline(data.baseline, split))

    # 5. Write <run>/eval/<split>/ and TensorBoard, then show the results.
    out = run.path / "eval" / split
    out.mkdir(parents=True, exist_ok=True)
    for name in PNG_FILES:  # a file from an earlier evaluation would now be wrong
        (out / name).unlink(missing_ok=True)
    for name, image in images.items():
        image.save(out / f"{name}.png")
    write_tensorboard(
        run.path / "tensorboard" / "eval",
        split,
        images,
        {name: float(value) for name, value in scores.items()},
        step=checkpoint_epoch(run),
    )
    results["wall_time_s"] = round(time.perf_counter() - start, 2)
    write_json(out / "metrics.json", results)
    print_results(results, model_name, mistakes, out, is_image(data.input_shape))
    return results


# --- checks ---------------------------------------------------------------------------------


def ensemble_requested(config):
    """`runs=[...]` (an ensemble) or `run=` (one run); not both, and no ensemble-only key
    (`weights`, `output`) with `run=`."""
    one = config.get("run") not in (None, "???")
    many = config.get("runs") is not None
    require(
        not (one and many),
        "run and runs cannot be used together: run= evaluates one run, runs=[...] an ensemble. "
        f"Received: run={config['run']!r} and runs={config['runs']!r}. Remove one of them.",
    )
    for key in ("weights", "output"):
        require(
            many or config.get(key) is None,
            f"{key} is for an ensemble (runs=[<run>,<run>,...]), not for run=. "
            f"Received: {key}={config[key]!r}. Remove {key}=, or list the runs in runs=[...].",
        )
    return many


def check_options(split, batch_size, misclassified):
    """The command's own keys: `split`, `batch_size`, `misclassified`."""
    require(
        split in SPLITS,
        f"split must be one of {', '.join(SPLITS)}. Received: split={split!r}. "
        "Set split=test or split=validation.",
    )
    require(
        batch_size is None or (type(batch_size) is int and batch_size > 0),
        "batch_size must be a positive integer, or null for the run's data.batch_size. "
        f"Received: batch_size={batch_size!r}. Set e.g. batch_size=64.",
    )
    require(
        type(misclassified) is int and misclassified >= 0,
        "misclassified must be a number of images (0 for none). "
        f"Received: misclassified={misclassified!r}. Set e.g. misclassified=16.",
    )


def available_splits(config):
    """The evaluable splits of a run's data, from config.yaml's `data_info` (all if unknown)."""
    sizes = (config.get("data_info") or {}).get("sizes")
    return list(SPLITS) if sizes is None else [s for s in SPLITS if sizes.get(s)]


def check_split(run, split, available):
    require(
        split in available,
        f"split must be a split of this run's data, which has "
        f"{'only ' + ' and '.join(available) if available else 'neither test nor validation'}. "
        f"Received: split={split!r} (run {run.path}). "
        + (f"Set split={available[0]}." if available else "Nothing to evaluate in this run."),
    )


def check_data_paths(run, overrides):
    """Reports a missing `data.root` / `data.path` before TensorFlow is imported."""
    data = run.config.get("data")
    require(
        isinstance(data, dict) and data.get("name"),
        f"{run.path / 'config.yaml'} has no data config (data.name): it was not written by "
        "train. Pass a run directory that train wrote.",
    )
    run.check_paths(**overrides)


# --- predictions, confusion matrix, report ---------------------------------------------------


def is_image(input_shape):
    """Image data is `(height, width, channels)`; text and series are 1-D or 2-D."""
    return len(input_shape) == 3 and input_shape[-1] in (1, 3, 4)


def predict(model, dataset, task, keep=0):
    """One pass over `dataset`: the labels and predicted classes, and the worst mistakes.

    A binary model outputs P(class 1): it predicts class 1 when that is above 0.5, as Keras's
    `accuracy` counts it; a multiclass model predicts its highest probability.

    Returns:
        `(labels, predicted, mistakes)`: two int arrays in dataset order, and the `keep`
        misclassified examples the model was most sure of, most sure first, as
        `(confidence, tiebreak, image, true_label, predicted_label)`.
    """
    import numpy as np

    labels, predicted, mistakes = [], [], []
    order = itertools.count()  # breaks ties between equal confidences (images don't compare)
    for x, y in dataset:
        probs = np.asarray(model.predict_on_batch(x), dtype="float64")
        if task == "binary":
            p = probs.reshape(-1)
            pred = (p > 0.5).astype("int64")
            confidence = np.where(pred == 1, p, 1 - p)
        else:
            pred, confidence = probs.argmax(-1), probs.max(-1)
        y = np.asarray(y).reshape(-1).astype("int64")
        labels.append(y)
        predicted.append(pred)
        if keep:
            x = np.asarray(x)
            for i in np.flatnonzero(pred != y):
                item = (float(confidence[i]), next(order), x[i], int(y[i]), int(pred[i]))
                (heapq.heappush if len(mistakes) < keep else heapq.heappushpop)(mistakes, item)
    return (
        np.concatenate(labels) if labels else np.zeros(0, "int64"),
        np.concatenate(predicted) if predicted else np.zeros(0, "int64"),
        sorted(mistakes, key=lambda item: (-item[0], item[1])),
    )


def classify(model, dataset, data, misclassified):
    """The predictions over `dataset` summed up: `(fields of metrics.json, mistakes)`."""
    keep = misclassified if is_image(data.input_shape) else 0
    labels, predicted, mistakes = predict(model, dataset, data.task, keep=keep)
    matrix = confusion_matrix(labels, predicted, len(data.class_names))
    found = {
        "examples": len(labels),
        "confusion_matrix": {
            "class_names": list(map(str, data.class_names)),
            "counts": matrix.tolist(),
        },
        "classification_report": classification_report(matrix, data.class_names),
        "misclassified": int((labels != predicted).sum()),
    }
    return found, mistakes


def split_baseline(baseline, split):
    """`DataBundle.baseline`'s scores of `split`, as `baseline_<metric>` (`test_mae` →
    `baseline_mae`)."""
    prefix = BASELINE_PREFIX[split]
    return {
        f"baseline_{k.removeprefix(prefix)}": v for k, v in baseline.items() if k.startswith(prefix)
    }


def confusion_matrix(labels, predicted, num_classes):
    """Counts: row = true class, column = predicted class."""
    import numpy as np

    matrix = np.zeros((num_classes, num_classes), dtype="int64")
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def classification_report(matrix, class_names):
    """Precision, recall, f1 and support per class, accuracy, and their macro averages.

    A class never predicted (or never present) has precision (or recall) 0, as
    scikit-learn reports it.
    """
    import numpy as np

    correct = np.diag(matrix).astype("float64")
    support = matrix.sum(axis=1)
    precision = correct / np.maximum(matrix.sum(axis=0), 1)
    recall = correct / np.maximum(support, 1)
    f1 = np.divide(
        2 * precision * recall,
        precision + recall,
        out=np.zeros_like(precision),
        where=precision + recall > 0,
    )
    per_class = {
        str(name): {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(class_names)
    }
    return {
        "per_class": per_class,
        "accuracy": float(correct.sum() / max(matrix.sum(), 1)),
        "macro_avg": {
            "precision": float(precision.mean()),
            "recall": float(recall.mean()),
            "f1": float(f1.mean()),
            "support": int(support.sum()),
        },
    }


# --- images (Pillow, no matplotlib) -----------------------------------------------------------

BLUE_LOW, BLUE_HIGH = (247, 251, 255), (8, 48, 107)  # the ends of matplotlib's "Blues"


def draw(results, mistakes, title):
    """`{"confusion_matrix": image, "misclassified": image (if any mistake was kept)}`."""
    matrix = results["confusion_matrix"]
    images = {
        "confusion_matrix": draw_confusion_matrix(
            matrix["counts"], matrix["class_names"], f"Confusion matrix · {title}"
        )
    }
    if mistakes:
        images["misclassified"] = draw_misclassified(mistakes, matrix["class_names"])
    return images


def font(size):
    """DejaVu Sans when the system has it (it has "→"), else Pillow's built-in font."""
    from PIL import ImageFont

    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size)


def arrow(face):
    """`→`, or `->` in a font without that glyph (Pillow's built-in one)."""
    family = face.getname()[0] if hasattr(face, "getname") else ""  # a bitmap font has none
    return "→" if "DejaVu" in (family or "") else "->"


def draw_confusion_matrix(matrix, class_names, title):
    """A heatmap of the counts `matrix` (rows: true, columns: predicted), with class names.

    A cell's colour is its share of its row (the recall for the diagonal), so small classes
    show their errors as clearly as large ones; its text is the count.
    """
    import numpy as np
    from PIL import Image, ImageDraw

    matrix = np.asarray(matrix, dtype="int64")
    k = len(class_names)
    cell = int(np.clip(480 // max(k, 1), 22, 64))
    small, text = font(max(9, min(16, cell // 3))), font(14)
    names = [str(name) for name in class_names]
    name_width = int(max(small.getlength(name) for name in names)) + 10
    line = 22
    left, top = line + name_width, 2 * line + name_width
    width = max(left + k * cell + 12, int(text.getlength(title)) + 20)
    image = Image.new("RGB", (width, top + k * cell + 12), "white")
    draw = ImageDraw.Draw(image)
    draw.text((10, 4), title, fill="black", font=text)
    draw.text((left + k * cell // 2, line + line // 2), "predicted", "black", text, anchor="mm")
    paste_vertical(image, "true", text, (line // 2, top + k * cell // 2), anchor="center")

    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    low, high = np.array(BLUE_LOW), np.array(BLUE_HIGH)
    for i, j in itertools.product(range(k), range(k)):
        x, y = left + j * cell, top + i * cell
        colour = tuple(int(c) for c in low + (high - low) * shares[i, j])
        draw.rectangle((x, y, x + cell - 1, y + cell - 1), fill=colour, outline=(200, 200, 200))
        ink = "white" if shares[i, j] > 0.5 else "black"
        draw.text((x + cell // 2, y + cell // 2), str(matrix[i, j]), ink, small, anchor="mm")
    for i, name in enumerate(names):
        draw.text((left - 6, top + i * cell + cell // 2), name, "black", small, anchor="rm")
        paste_vertical(image, name, small, (left + i * cell + cell // 2, top - 6), anchor="bottom")
    return image


def paste_vertical(image, text, face, xy, anchor):
    """Draws `text` reading upwards, centred on x; `xy` is its centre or its bottom end."""
    from PIL import Image, ImageDraw

    height = int(face.getbbox("Hg")[3] * 1.4) + 2
    mask = Image.new("L", (int(face.getlength(text)) + 2, height), 0)
    ImageDraw.Draw(mask).text((1, height // 2), text, fill=255, font=face, anchor="lm")
    mask = mask.rotate(90, expand=True)
    x = xy[0] - mask.width // 2
    y = xy[1] - (mask.height // 2 if anchor == "center" else mask.height)
    image.paste((0, 0, 0), (x, y, x + mask.width, y + mask.height), mask)


def draw_misclassified(mistakes, class_names, tile=112, columns=4):
    """A grid of misclassified images, each labelled `true → predicted p%` (p: its confidence)."""
    from PIL import Image, ImageDraw

    face = font(12)
    labels = [
        f"{class_names[true]} {arrow(face)} {class_names[pred]} {confidence:.0%}"
        for confidence, _, _, true, pred in mistakes
    ]
    cell = max(tile, max(int(face.getlength(label)) for label in labels) + 8)
    columns = min(columns, len(mistakes))
    rows = math.ceil(len(mistakes) / columns)
    pad, label_height, title_height = 8, 18, 26
    title = f"Misclassified (true {arrow(face)} predicted, confidence), most confident first"
    width = max(columns * (cell + pad) + pad, int(font(13).getlength(title)) + 2 * pad)
    grid = Image.new("RGB", (width, title_height + rows * (tile + label_height + pad)), "white")
    draw = ImageDraw.Draw(grid)
    draw.text((pad, 6), title, fill="black", font=font(13))
    for n, ((_, _, pixels, _, _), label) in enumerate(zip(mistakes, labels, strict=True)):
        row, column = divmod(n, columns)
        x = pad + column * (cell + pad)
        y = title_height + row * (tile + label_height + pad)
        picture = to_picture(pixels)
        scale = tile / max(picture.size)
        # Small images (8×8 digits, 32×32 photos) stay crisp when enlarged by whole pixels.
        resample = Image.Resampling.NEAREST if scale >= 2 else Image.Resampling.BILINEAR
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        picture = picture.resize(size, resample)
        grid.paste(picture, (x + (cell - picture.width) // 2, y + (tile - picture.height) // 2))
        draw.text((x + cell // 2, y + tile + 2), label, fill="black", font=face, anchor="mt")
    return grid


def to_picture(pixels):
    """A Pillow image of one example: float `(h, w, 1|3|4)` in [0, 255] → L or RGB."""
    import numpy as np
    from PIL import Image

    pixels = np.clip(np.rint(pixels), 0, 255).astype("uint8")
    return Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels[..., :3])


# --- outputs -------------------------------------------------------------------------------


def checkpoint_epoch(run):
    """The epoch the evaluated model comes from (TensorBoard's step), from metrics.json; 0
    for a model file from elsewhere or a run without metrics."""
    try:
        metrics = json.loads((run.path / "metrics.json").read_text())
    except (OSError, ValueError):
        return 0
    if run.model_path == run.path / "checkpoints" / "best.keras":
        return int(metrics.get("best_epoch") or metrics.get("epochs") or 0)
    if run.model_path == run.path / "model.keras":
        return int(metrics.get("epochs") or 0)
    return 0


def write_tensorboard(log_dir, split, images, scores, step):
    """`eval/<split>/<name>` images and scalars in `log_dir`, beside the run's curves."""
    import numpy as np
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default(step=step):
        for name, image in images.items():
            tf.summary.image(f"eval/{split}/{name}", np.asarray(image.convert("RGB"))[None])
        for name, value in scores.items():
            tf.summary.scalar(f"eval/{split}/{name}", value)
    writer.close()


def shown(path, run_dir):
    """`path` relative to the run directory when it is inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path(run_dir).resolve()))
    except ValueError:
        return str(path)


def print_results(results, model_name, mistakes, out, image_data):
    """The metrics table; for classification the confusion matrix and the per-class report."""
    from rich.table import Table

    split = results["split"]
    scores = {k: v for k, v in results.items() if isinstance(v, float) and k != "wall_time_s"}
    console.console.print(
        f"Evaluation: {split} split, {results['examples']} examples, {model_name}",
        markup=False,
        soft_wrap=True,
    )
    table = Table(title="Metrics", title_justify="left")
    table.add_column("metric")
    table.add_column(split, justify="right")
    for name, value in scores.items():
        table.add_row(name, f"{value:.4f}")
    console.console.print(table)
    if "confusion_matrix" in results:
        print_classification(results)
        wrong, total = results["misclassified"], results["examples"]
        if not wrong:
            console.console.print(
                f"Nothing misclassified in {total} examples: no misclassified.png."
            )
        else:
            why = (
                f"misclassified.png: the {len(mistakes)} most confident"
                if mistakes
                else "images are drawn for image data only"
                if not image_data
                else "misclassified=0: no image"
            )
            console.console.print(f"Misclassified: {wrong} of {total} ({why}).")
    written = ", ".join(sorted(p.name for p in out.iterdir() if p.is_file()))
    console.console.print(
        f"Wrote {out}/ ({written}) in {results['wall_time_s']:.1f} s", markup=False, soft_wrap=True
    )
    tensorboard = out.parents[1] / "tensorboard"
    console.console.print(
        f"TensorBoard:   tensorboard --logdir {tensorboard}", markup=False, soft_wrap=True
    )


def print_classification(results):
    """The confusion matrix (the diagonal in bold) and the per-class report, as tables."""
    from rich.markup import escape
    from rich.table import Table

    names = [escape(name) for name in results["confusion_matrix"]["class_names"]]
    matrix = Table(title="Confusion matrix", title_justify="left")
    matrix.add_column("true \\ predicted")
    for name in names:
        matrix.add_column(name, justify="right")
    for i, (name, row) in enumerate(zip(names, results["confusion_matrix"]["counts"], strict=True)):
        matrix.add_row(
            name, *(f"[bold]{c}[/bold]" if i == j else str(c) for j, c in enumerate(row))
        )
    console.console.print(matrix)

    report = results["classification_report"]
    table = Table(title="Per-class report", title_justify="left")
    table.add_column("class")
    for column in ("precision", "recall", "f1", "support"):
        table.add_column(column, justify="right")
    for name, row in report["per_class"].items():
        table.add_row(
            escape(name),
            *(f"{row[k]:.4f}" for k in ("precision", "recall", "f1")),
            str(row["support"]),
        )
    macro = report["macro_avg"]
    table.add_section()
    table.add_row("accuracy", "", "", f"{report['accuracy']:.4f}", str(macro["support"]))
    table.add_row(
        "macro avg",
        *(f"{macro[k]:.4f}" for k in ("precision", "recall", "f1")),
        str(macro["support"]),
    )
    console.console.print(table)
