"""`evaluate`: a finished run's model scored again on its test (or validation) split.

evaluate run=outputs/runs/2026-11-22_10-00-00_cats_dogs-small_convnet
evaluate run=<run> split=validation checkpoint=last
evaluate run=<run> data.root=/here/cats_and_dogs_filtered     # a run trained elsewhere
evaluate runs=[<run>,<run>,<run>] weights=optimize            # an ensemble: evaluation/ensemble.py

`model.evaluate` on the split gives the metrics. For classification, one pass of predictions
gives a confusion matrix, a per-class report (numpy only) and two images drawn with Pillow:
`confusion_matrix.png` and, for image data, `misclassified.png` (the most confident mistakes).
Everything lands in `<run>/eval/<split>/`; the images and metrics also go to TensorBoard, in
`<run>/tensorboard/eval/`, beside the run's curves. The pieces live in `kerasrun.evaluation`:
checks, scores, drawing, report, ensemble.
"""

import logging
import time
import warnings

from kerasrun import console
from kerasrun.config.command import command
from kerasrun.config.compose import plain
from kerasrun.errors import require
from kerasrun.evaluation.checks import (
    SPLITS,
    available_splits,
    check_data_paths,
    check_options,
    check_split,
)
from kerasrun.evaluation.drawing import draw
from kerasrun.evaluation.ensemble import evaluate_ensemble
from kerasrun.evaluation.report import (
    PNG_FILES,
    evaluation_dir,
    print_results,
    shown,
    tensorboard_dir,
    write_tensorboard,
)
from kerasrun.evaluation.scores import (
    CLASSIFICATION,
    checkpoint_epoch,
    classify,
    is_image,
    split_baseline,
)
from kerasrun.models import GENERATIVE
from kerasrun.rundir.layout import metrics_path
from kerasrun.rundir.results import write_json
from kerasrun.rundir.run import open_run
from kerasrun.training import runtime

log = logging.getLogger("kerasrun")


@command("evaluate")
def main(cfg):
    """Evaluates the run `cfg.run` (see `evaluate`), or the ensemble of `cfg.runs` (see
    `kerasrun.evaluation.ensemble`); a user mistake is one `Error:` line."""
    config = plain(cfg)
    if ensemble_requested(config):
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
    runtime.set_up_command(run.config)
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
    out = evaluation_dir(run.path, split)
    out.mkdir(parents=True, exist_ok=True)
    for name in PNG_FILES:  # a file from an earlier evaluation would now be wrong
        (out / name).unlink(missing_ok=True)
    for name, image in images.items():
        image.save(out / f"{name}.png")
    write_tensorboard(
        tensorboard_dir(run.path),
        split,
        images,
        {name: float(value) for name, value in scores.items()},
        step=checkpoint_epoch(run),
    )
    results["wall_time_s"] = round(time.perf_counter() - start, 2)
    write_json(metrics_path(out), results)
    print_results(results, model_name, mistakes, out, is_image(data.input_shape))
    return results


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
