"""What `evaluate` shows and saves: the tables it prints, the TensorBoard images and scalars.

A run's evaluation lands in `<run>/eval/<split>/` (`evaluation_dir`), its pictures and scores
also in `<run>/tensorboard/eval/`, beside the run's curves. An ensemble's table is printed
here too (`print_ensemble`); its file goes to `outputs/ensembles/`.
"""

from pathlib import Path

from kerasrun import console
from kerasrun.rundir.layout import EVALUATION, TENSORBOARD

# <run>/eval/<split>/: evaluate's own folder in a run (rundir/layout.py does not name it).
PNG_FILES = ("confusion_matrix.png", "misclassified.png")
# How an ensemble's weights were chosen, as its table's title says it.
MODES = {
    "plain": "plain average",
    "given": "weighted average (the given weights)",
    "optimize": "weighted average (weights fitted on the validation split)",
}


def evaluation_dir(run_dir, split):
    """`<run>/eval/<split>/`: metrics.json and the pictures of one split's evaluation."""
    return Path(run_dir) / EVALUATION / split


def tensorboard_dir(run_dir):
    """`<run>/tensorboard/eval/`: where evaluate's images and scalars go."""
    return Path(run_dir) / TENSORBOARD / EVALUATION


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
    tensorboard = out.parents[1] / TENSORBOARD
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


def print_ensemble(results, members, best, out):
    """Each member's metrics and the ensemble's, whether it beats its best member, where."""
    from rich.markup import escape
    from rich.table import Table

    split, key = results["split"], results["metric"]
    ensemble = results["ensemble"]
    columns = list(dict.fromkeys([*ensemble, *members[0].scores]))
    console.console.print(
        f"Ensemble of {len(members)} runs: {split} split, {results['examples']} examples, "
        f"{MODES[results['weights_mode']]}",
        markup=False,
        soft_wrap=True,
    )
    table = Table(title=f"Metrics ({split})", title_justify="left")
    table.add_column("model")
    table.add_column("weight", justify="right")
    for column in columns:
        table.add_column(column, justify="right")
    for member, row in zip(members, results["members"], strict=True):
        name = escape(member.name) + (" (best)" if member is best else "")
        table.add_row(
            name, f"{row['weight']:.3f}", *(f"{row.get(c, float('nan')):.4f}" for c in columns)
        )
    table.add_section()
    table.add_row(
        "[bold]ensemble[/bold]", "1.000", *(f"[bold]{ensemble[c]:.4f}[/bold]" for c in columns)
    )
    console.console.print(table)
    if "validation" in results:
        plain, fitted = results["validation"]["plain"], results["validation"]["optimized"]
        console.console.print(
            f"Weights fitted on the validation split (Nelder-Mead on the loss): validation loss "
            f"{fitted['loss']:.4f}, plain average {plain['loss']:.4f}.",
            soft_wrap=True,
        )
    value, best_value = ensemble[key], best.scores[key]
    verb = "beats" if results["beats_best_member"] else "does not beat"
    console.console.print(
        f"The ensemble {verb} its best member ({split} {key} {value:.4f} vs {best_value:.4f}, "
        f"{best.name}).",
        markup=False,
        soft_wrap=True,
    )
    console.console.print(
        f"Wrote {out}/metrics.json in {results['wall_time_s']:.1f} s",
        markup=False,
        soft_wrap=True,
    )
