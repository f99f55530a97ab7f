"""One input's result, as `predict` shows it on the console and writes it to a CSV file."""

import csv
from collections import Counter
from dataclasses import dataclass


@dataclass
class Row:
    """One input's result: `probabilities` (classification) or `value` (regression), or `error`.

    `label` is what the console shows; `input` what the CSV holds (the path, or the whole text).
    """

    label: str
    input: str = ""
    probabilities: object = None
    value: float = None
    error: str = None


def format_row(row, class_names, top_k):
    """`cats 97% | dogs 3%` (the `top_k` most probable), the predicted value, or the error."""
    if row.error is not None:
        return f"error: {row.error}"
    if row.probabilities is None:
        return f"{row.value:.4g}"
    order = sorted(range(len(class_names)), key=lambda i: -row.probabilities[i])[:top_k]
    return " | ".join(f"{class_names[i]} {percent(row.probabilities[i])}" for i in order)


def percent(p):
    """`97%`; near 0 or 1 one decimal (`0.4%`, `99.6%`, `<0.1%`): a doubt never reads as none."""
    if p in (0, 1) or 0.01 <= p <= 0.99:
        return f"{p:.0%}"
    if p < 0.001 or p > 0.999:
        return "<0.1%" if p < 0.5 else ">99.9%"
    return f"{p:.1%}"


def write_csv(path, rows, predictor):
    """`file, predicted, <one probability column per class>, error` (regression: `value`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    first = "file" if predictor.kind == "image" else "input"
    regression = predictor.task == "regression"
    names = predictor.class_names
    columns = ["prediction"] if regression else ["predicted", *column_names(names)]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([first, *columns, "error"])
        for row in rows:
            if row.error is not None:
                cells = [""] * len(columns)
            elif regression:
                cells = [repr(row.value)]
            else:
                best = max(range(len(names)), key=lambda i: row.probabilities[i])
                cells = [names[best], *(f"{p:.6g}" for p in row.probabilities)]
            writer.writerow([row.input, *cells, row.error or ""])


def column_names(names):
    """Column names: a repeated class name (ImageNet has two "crane"s) gets `_<index>`."""
    repeated = {name for name, n in Counter(names).items() if n > 1}
    return [f"{name}_{i}" if name in repeated else name for i, name in enumerate(names)]
