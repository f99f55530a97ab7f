"""Scores of a model on one split: its predicted classes, a confusion matrix, a per-class
report (numpy only), the data's no-learning baseline, and the epoch the model comes from.
"""

import heapq
import itertools
import json

from kerasrun.rundir.layout import best_model_path, final_model_path, metrics_path

CLASSIFICATION = ("binary", "multiclass")
# DataBundle.baseline keys of each split: {"val_mae": ..., "test_mae": ...}.
BASELINE_PREFIX = {"test": "test_", "validation": "val_"}


def is_image(input_shape):
    """Image data is `(height, width, channels)`; text and series are 1-D or 2-D."""
    return len(input_shape) == 3 and input_shape[-1] in (1, 3, 4)


def predict_classes(model, dataset, task, keep=0):
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
    labels, predicted, mistakes = predict_classes(model, dataset, data.task, keep=keep)
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


def checkpoint_epoch(run):
    """The epoch the evaluated model comes from (TensorBoard's step), from metrics.json; 0
    for a model file from elsewhere or a run without metrics."""
    try:
        metrics = json.loads(metrics_path(run.path).read_text())
    except (OSError, ValueError):
        return 0
    if run.model_path == best_model_path(run.path):
        return int(metrics.get("best_epoch") or metrics.get("epochs") or 0)
    if run.model_path == final_model_path(run.path):
        return int(metrics.get("epochs") or 0)
    return 0
