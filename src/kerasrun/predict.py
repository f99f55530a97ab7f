"""`predict`: a finished run's model on your own images or texts, one line per input.

predict run=outputs/runs/<run> inputs=[cat.jpg,photos/]          # files, folders (recursive)
predict run=<run> inputs=[photos/] top_k=1 output=predictions.csv
predict run=<imdb_raw run> 'inputs=[review.txt,"A wonderful film."]'
predict backbone=ResNet50 inputs=[cat.jpg]                       # keras.applications, ImageNet

Each input gets one line, its `top_k` most probable classes first:

    photos/cat.1.jpg  cats 97% | dogs 3%

A file that is not an image is reported on its line (`error: not an image`) and the others
are still predicted; only when no input at all can be read is it an `Error:` (exit code 2).
Images are read exactly as training read them (`kerasrun.rundir.run.load_images`); the model
does its own preprocessing. A `data=imdb_raw` run reads `<run>/vocabulary.txt`, the vocabulary
its `TextVectorization` was adapted to (see `rundir/vocabulary.py`).

The pieces live in `kerasrun.inference`: `inputs` (listing and reading), `predictors` (a run's
model), `imagenet` (`backbone=`), `rows` (the lines and the CSV).
"""

import logging
import os
import time
from pathlib import Path

from kerasrun.config.command import command
from kerasrun.config.compose import plain
from kerasrun.console import console
from kerasrun.errors import check_int, require
from kerasrun.inference.imagenet import check_backbone, imagenet_predictor
from kerasrun.inference.inputs import image_items, text_items
from kerasrun.inference.predictors import (
    TEXT_DATA,
    check_top_k,
    image_predictor,
    predict_items,
    text_predictor,
)
from kerasrun.inference.rows import format_row, write_csv
from kerasrun.rundir.layout import run_config_path
from kerasrun.rundir.run import open_run, require_classifier

log = logging.getLogger("kerasrun")


@command("predict")
def main(cfg):
    """Prints one line per input; with `output=`, writes every class's probability to a CSV.

    A user mistake (no run, no inputs, a bad key, no readable input) is one `Error:` line and
    exit code 2, before the model is loaded.
    """
    options = check_options(plain(cfg))
    predictor, items = prepare(options)
    start = time.perf_counter()
    log.info(predictor.description)
    top_k = options["top_k"] or min(3, len(predictor.class_names))
    width = min(max(len(item.label) for item in items), 60)
    rows = []
    for row in predict_items(predictor, items, options["batch_size"]):
        print_row(row, predictor.class_names, top_k, width)
        rows.append(row)
    predicted = sum(row.error is None for row in rows)
    require(
        predicted,
        f"inputs must hold at least one readable {predictor.kind}. Received: {len(rows)} "
        f"input{'s' if len(rows) > 1 else ''}, none readable ({rows[0].label}: {rows[0].error}). "
        "Check the files (inputs=[cat.jpg,photos/]).",
    )
    errors = len(rows) - predicted
    log.info(
        f"{predicted} prediction{'s' if predicted != 1 else ''}"
        + (f", {errors} input{'s' if errors != 1 else ''} not read" if errors else "")
        + f" in {time.perf_counter() - start:.1f} s"
    )
    if options["output"]:
        write_csv(options["output"], rows, predictor)
        log.info(f"Predictions written to {options['output']}")


def check_options(config):
    """The plain config of conf/predict.yaml, checked: one clear line per mistake."""
    options = dict(config)
    run, backbone = options["run"], options["backbone"]
    require(
        (run is None) != (backbone is None),
        "predict needs either run (a run directory written by train) or backbone (an ImageNet "
        f"classifier), not {'both' if run is not None else 'neither'}. Received: run={run!r}, "
        f"backbone={backbone!r}. Set e.g. run=outputs/runs/<run> (`runs` lists them) or "
        "backbone=ResNet50.",
    )
    require(
        backbone is not None or options["weights"] == "imagenet",
        "weights applies to backbone= only: a run's model has its own weights. Received: "
        f"weights={options['weights']!r}. Remove weights=, or choose the .keras file with "
        "checkpoint=.",
    )
    inputs = options["inputs"]
    options["inputs"] = [inputs] if isinstance(inputs, (str, int, float)) else list(inputs or [])
    check_int("top_k", options["top_k"], allow_none=True, example=3)
    check_int("batch_size", options["batch_size"], example=32)
    output = options["output"]
    if output is not None:
        path = Path(os.path.expanduser(str(output)))
        require(
            path.suffix.lower() == ".csv" and not path.is_dir(),
            f"output must be the path of a .csv file to write. Received: output={output!r}. "
            "Set e.g. output=predictions.csv, or leave it out to print only.",
        )
        options["output"] = path
    return options


def prepare(options):
    """`(Predictor, items)`: everything checked before the model is loaded (the slow part)."""
    if options["backbone"] is not None:
        key, weights = check_backbone(options["backbone"], options["weights"])
        items = image_items(options["inputs"])
        return imagenet_predictor(key, weights, top_k=options["top_k"]), items
    run = open_run(options["run"], options["checkpoint"])
    require_classifier(run, "predict")
    info = run.config.get("data_info")
    data_name = (run.config.get("data") or {}).get("name")
    require(
        isinstance(info, dict) and info.get("task"),
        f"{run_config_path(run.path)} has no data_info (the task and class names): the run "
        "was made by an older train. Train it again to predict with it.",
    )
    check_top_k(options["top_k"], run.class_names)
    if data_name in TEXT_DATA:
        items = text_items(options["inputs"])
        return text_predictor(run, info), items
    shape = info.get("input_shape") or []
    require(
        len(shape) == 3,
        f"predict is not supported yet for data={data_name}: it predicts on image files "
        f"(image runs) and on texts (data={' or '.join(TEXT_DATA)} runs). Received: "
        f"run='{run.path}', whose model takes inputs of shape {tuple(shape)}. Use `evaluate` "
        "to score it on its own data.",
    )
    items = image_items(options["inputs"])
    return image_predictor(run, info), items


def print_row(row, class_names, top_k, width):
    """`photos/cat.1.jpg  cats 97% | dogs 3%`, in yellow when the input could not be read."""
    console.print(
        f"{row.label:<{width}}  {format_row(row, class_names, top_k)}",
        markup=False,
        highlight=False,
        soft_wrap=True,
        style="yellow" if row.error else None,
    )


if __name__ == "__main__":
    main()
