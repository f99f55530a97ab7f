"""`evaluate runs=[...]`: the book's model ensembling (§7.3.3), scored like `evaluate run=`.

evaluate runs=[outputs/runs/A,outputs/runs/B,outputs/runs/C]     # plain average
evaluate runs=[A,B,C] weights=[0.5,0.3,0.2]                      # a weighted average
evaluate runs=[A,B,C] weights=optimize                           # weights fitted on validation

The book averages the models' predictions at inference time, `final_preds = 0.25 * (preds_a +
preds_b + preds_c + preds_d)` (which works if they are about equally good); a weighted average
with weights learned on the validation data (random search or Nelder-Mead) is "a very strong
baseline". What matters is diversity: models that are good in different ways, not the same
network trained with different random seeds.

Each run rebuilds its own data (its preprocessing) and predicts the split once; the ensemble
is the weighted mean of the predictions: P(class 1) for binary, the softmax vectors for
multiclass, the values for regression. Members and ensemble are scored by `model.evaluate`
on those predictions, with the members' own compiled loss and metrics (an identity model), so
a member's numbers are those `evaluate run=<it>` reports. Nothing is written into the runs:
results go to `outputs/ensembles/<date>_<time>/metrics.json`.
"""

import itertools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from kerasrun import console
from kerasrun.errors import ConfigError, is_number, require
from kerasrun.evaluation.checks import (
    available_splits,
    check_data_paths,
    check_options,
    check_split,
)
from kerasrun.evaluation.report import print_ensemble
from kerasrun.rundir.layout import metrics_path, run_config_path
from kerasrun.rundir.results import lower_is_better, write_json
from kerasrun.rundir.run import open_run
from kerasrun.training import runtime

log = logging.getLogger("kerasrun")
# The metric that decides whether the ensemble beats its best member.
KEY_METRIC = {"binary": "accuracy", "multiclass": "accuracy", "regression": "mae"}
# Data keys that change how a run sees its examples (batching, input size, encoding, where
# the files are), not which examples a split holds: members may differ in these. A mismatch
# in any other data key means another split; the labels are compared too, once predicted.
PRESENTATION_KEYS = {
    "batch_size",
    "augment",
    "cache",
    "image_size",
    "root",
    "path",
    "url",
    "sha256",
    "size",
    "cache_dir",
    "train_fraction",
    "train_samples",
    "num_words",
    "maxlen",
    "encoding",
    "max_tokens",
    "output_sequence_length",
    "embeddings",
    "features",
}
OPTIMIZE = "optimize"


@dataclass
class Member:
    """One run of the ensemble: its predictions `{split: (labels, predictions)}` and scores."""

    run: object
    name: str
    predictions: dict = field(default_factory=dict)
    scores: dict = field(default_factory=dict)
    compile_config: dict = field(default_factory=dict)
    penalty: float = 0.0  # the model's weight penalty (L2): model.evaluate adds it to the loss
    batch_size: int = 32


def evaluate_ensemble(
    runs,
    weights=None,
    split="test",
    checkpoint="best",
    root=None,
    path=None,
    batch_size=None,
    output=None,
):
    """Scores the (weighted) average of several runs' predictions, and each run alone.

    Args:
        runs: at least 2 run directories written by `train`, on the same data and split.
        weights: `None` (plain average), one non-negative number per run (normalised to sum
            to 1), or `"optimize"` (fitted on the validation split by Nelder-Mead on the loss).
        split: `"test"` or `"validation"` (not with `weights="optimize"`).
        checkpoint: `"best"`, `"last"` or a `.keras` file, for every run.
        root, path: the runs' `data.root` / `data.path` on this machine (`None`: each run's).
        batch_size: examples per batch (`None`: each run's `data.batch_size`).
        output: the folder to write; `None`: `outputs/ensembles/<date>_<time>/`.

    Returns:
        What `<output>/metrics.json` holds: `members` (run, weight, metrics), `ensemble`
        (metrics), `weights`, `best_member`, `beats_best_member`, and for `"optimize"` the
        `validation` scores of the plain and the fitted average.

    Raises:
        ConfigError: a bad value, a missing run or data, runs that do not share their split.
    """
    start = time.perf_counter()

    # 1. Every user mistake we can see without TensorFlow, first.
    check_options(split, batch_size, 0)
    runs = check_runs(runs)
    weights = check_weights(weights, len(runs), split)
    optimize = weights == OPTIMIZE
    mode = "optimize" if optimize else "plain" if weights is None else "given"
    opened = [open_member(i, r, checkpoint) for i, r in enumerate(runs)]
    overrides = {"root": root, "path": path, "batch_size": batch_size}
    splits = [split, "validation"] if optimize else [split]
    for run in opened:
        for s in splits:
            check_split(run, s, available_splits(run.config))
        check_data_paths(run, overrides)
    check_same_data(opened, splits)
    check_output(output)

    # 2. Each run predicts each split once, on its own rebuilt data.
    # Each member's layers keep their saved dtype policies; the global one (the first
    # member's) applies only to what is built afterwards, which an ensemble does not.
    runtime.set_up_command(opened[0].config)
    names = member_names(opened)
    members = [
        predict_member(run, name, splits, overrides)
        for run, name in zip(opened, names, strict=True)
    ]
    for s in splits:
        check_same_labels(members, s)

    # 3. The weights: given, plain, or fitted on the validation split.
    task = members[0].run.config["data_info"]["task"]
    validation = None
    if optimize:
        weights = fit_weights(members, "validation")
        validation = {
            "plain": score_average(members, [1 / len(members)] * len(members), "validation"),
            "optimized": score_average(members, weights, "validation"),
        }
    elif weights is None:
        weights = [1 / len(members)] * len(members)

    # 4. Each member's scores and the ensemble's, on the requested split.
    for member in members:
        labels, predictions = member.predictions[split]
        member.scores = score(member, labels, predictions)
    ensemble = score_average(members, weights, split)
    key = KEY_METRIC[task]
    best = (min if lower_is_better(key) else max)(members, key=lambda m: m.scores[key])
    value, best_value = ensemble[key], best.scores[key]
    beats = value < best_value if lower_is_better(key) else value > best_value

    results = {
        "split": split,
        "checkpoint": checkpoint,
        "examples": int(len(members[0].predictions[split][0])),
        "task": task,
        "weights_mode": mode,
        "weights": [float(w) for w in weights],
        "members": [
            {
                "run": str(m.run.path.resolve()),
                "checkpoint_file": str(m.run.model_path.resolve()),
                "weight": float(w),
                **m.scores,
            }
            for m, w in zip(members, weights, strict=True)
        ],
        "ensemble": ensemble,
        "metric": key,
        "best_member": str(best.run.path.resolve()),
        "beats_best_member": bool(beats),
    }
    if validation:
        results["validation"] = validation
    out = output_dir(output)
    results["wall_time_s"] = round(time.perf_counter() - start, 2)
    write_json(metrics_path(out), results)
    print_ensemble(results, members, best, out)
    return results


# --- checks ---------------------------------------------------------------------------------


def check_runs(runs):
    """`runs`: a list of at least 2 different run directories."""
    require(
        isinstance(runs, (list, tuple)) and len(runs) >= 2,
        "runs must list at least 2 run directories to ensemble. "
        f"Received: runs={runs!r}. Set runs=[<run>,<run>] (the `runs` command lists them), "
        "or run=<run> to evaluate one.",
    )
    seen = set()
    for run in runs:
        resolved = Path(str(run)).expanduser().resolve()
        require(
            resolved not in seen,
            f"runs must be different runs: averaging a model with itself changes nothing. "
            f"Received: '{run}' twice in runs. Remove it once (weights= gives it more weight).",
        )
        seen.add(resolved)
    return [str(run) for run in runs]


def open_member(i, path, checkpoint):
    """`open_run`, its error prefixed with the run's place in `runs`."""
    try:
        return open_run(path, checkpoint)
    except ConfigError as e:
        raise ConfigError(f"runs[{i}]: {e}") from None


def check_weights(weights, n, split):
    """`weights`: `None`, `"optimize"` or `n` non-negative numbers; returns them normalised."""
    if weights is None:
        return None
    if weights == OPTIMIZE:
        require(
            split != "validation",
            "weights=optimize fits the weights on the validation split, so it cannot also "
            "score them there (the score would flatter them). Received: split=validation. "
            "Set split=test, or give the weights: weights=[0.5,0.5].",
        )
        return OPTIMIZE
    numbers = isinstance(weights, (list, tuple)) and all(map(is_number, weights))
    require(
        numbers and len(weights) == n,
        f"weights must be null (a plain average), optimize (fitted on the validation split) or "
        f"one number per run ({n} runs). Received: weights={weights!r}. "
        f"Set e.g. weights=[{','.join(['1'] * n)}].",
    )
    require(
        all(w >= 0 for w in weights) and sum(weights) > 0,
        "weights must be non-negative with a positive sum (they are normalised to sum to 1). "
        f"Received: weights={list(weights)!r}. Set e.g. weights=[{','.join(['1'] * n)}].",
    )
    return [w / sum(weights) for w in weights]


def data_signature(config, splits):
    """`{key: value}` of what defines a run's examples and their split (config.yaml)."""
    info = config.get("data_info") or {}
    data = config.get("data") or {}
    signature = {"data.name": data.get("name")}
    signature.update(
        {f"data.{k}": v for k, v in data.items() if k != "name" and k not in PRESENTATION_KEYS}
    )
    signature["data_info.task"] = info.get("task")
    signature["data_info.class_names"] = info.get("class_names")
    for s in splits:
        signature[f"data_info.sizes.{s}"] = (info.get("sizes") or {}).get(s)
    signature["trainer.loss"] = (config.get("trainer") or {}).get("loss", "auto")
    return signature


def check_same_data(runs, splits):
    """One line naming two runs and the first key of their data or split that differs."""
    for run in runs:
        require(
            (run.config.get("data_info") or {}).get("task") in KEY_METRIC,
            f"{run_config_path(run.path)} has no data_info (the task and class names): the run "
            "was made by an older train. Received: run without data_info. Train it again.",
        )
    first = data_signature(runs[0].config, splits)
    for run in runs[1:]:
        other = data_signature(run.config, splits)
        for key in dict.fromkeys([*first, *other]):
            a, b = first.get(key), other.get(key)
            require(
                a == b,
                f"runs must share their data and its split to be ensembled: {runs[0].path} "
                f"and {run.path} differ in {key}. Received: {key}={a!r} and {key}={b!r}. "
                "Ensemble runs trained on the same data with the same split settings.",
            )


def check_same_labels(members, split):
    """The members' rebuilt splits hold the same labels in the same order (same examples)."""
    import numpy as np

    labels = members[0].predictions[split][0]
    for member in members[1:]:
        other = member.predictions[split][0]
        same = labels.shape == other.shape and np.allclose(labels, other, rtol=1e-6, atol=0)
        seeds = [m.run.config.get("seed") for m in (members[0], member)]
        hint = f" (seed={seeds[0]} and seed={seeds[1]}: the seed draws the split)"
        require(
            same,
            f"runs must score the same examples: the {split} split of {members[0].run.path} "
            f"and of {member.run.path} hold different labels"
            f"{hint if seeds[0] != seeds[1] else ''}. Received: "
            f"{len(labels)} and {len(other)} examples. Ensemble runs trained on the same split.",
        )


def check_output(output):
    """`output` (if given) holds no earlier ensemble: nothing is ever overwritten."""
    if output is not None:
        out = Path(str(output)).expanduser()
        require(
            not metrics_path(out).exists(),
            f"output must be a new folder: {out} holds an earlier ensemble's metrics.json. "
            f"Received: output='{output}'. Choose another folder, or leave output=null.",
        )


def output_dir(output):
    """Creates and returns `output`, or a new `outputs/ensembles/<date>_<time>[_n]/`."""
    if output is not None:
        check_output(output)
        out = Path(str(output)).expanduser()
        out.mkdir(parents=True, exist_ok=True)
        return out
    base = Path("outputs") / "ensembles" / time.strftime("%Y-%m-%d_%H-%M-%S")
    base.parent.mkdir(parents=True, exist_ok=True)
    for n in itertools.count(1):
        out = base if n == 1 else base.with_name(f"{base.name}_{n}")
        try:
            out.mkdir()  # atomic: two ensembles finishing in the same second get two folders
            return out
        except FileExistsError:
            continue


def member_names(runs):
    """Short names for the table: the run folders' names, with their parent if not unique."""
    names = [run.path.resolve().name for run in runs]
    if len(set(names)) < len(names):
        names = [f"{run.path.resolve().parent.name}/{run.path.resolve().name}" for run in runs]
    return names


# --- predictions and scores ----------------------------------------------------------------


def predict_member(run, name, splits, overrides):
    """One run's data rebuilt, its model loaded, and its predictions on `splits`."""
    import warnings

    import numpy as np

    data = run.build_data(**overrides)
    model = run.load_model()
    # Every member's model.predict traces the same Keras step function anew: TensorFlow
    # counts those as retracings and warns after the fifth; expected here, not a problem.
    logging.getLogger("tensorflow").addFilter(_expected_retracing)
    log.info(f"{name}: {console.describe_data(data)}")
    # A split whose bad files are skipped has no known length (see evaluate).
    warnings.filterwarnings("ignore", message="Your input ran out of data")
    member = Member(
        run=run,
        name=name,
        compile_config=model.get_compile_config(),
        penalty=float(sum(float(loss) for loss in model.losses)),
        batch_size=data.batch_size or 32,
    )
    for split in splits:
        # Two passes over the split in its fixed order (evaluation data is never shuffled):
        # model.predict traces its step once, where a predict_on_batch loop retraces.
        dataset = getattr(data, f"{split}_dataset")
        labels = np.concatenate([np.asarray(y) for y in dataset.map(lambda x, y: y)])
        predictions = model.predict(dataset.map(lambda x, y: x), verbose=0)
        member.predictions[split] = (labels, np.asarray(predictions, dtype="float32"))
    return member


_evaluators = {}


def _expected_retracing(record):
    return "triggered tf.function retracing" not in record.getMessage()


def evaluator(compile_config, shape):
    """A model that outputs its input, compiled with a member's loss and metrics: its
    `evaluate(predictions, labels)` is that member's `model.evaluate`, from predictions.
    One per loss, metrics and shape (reused: Keras traces its evaluation step once)."""
    import json

    import keras

    key = (json.dumps(compile_config, sort_keys=True, default=str), tuple(shape))
    if key not in _evaluators:
        inputs = keras.Input(shape=shape)
        model = keras.Model(inputs, keras.layers.Identity()(inputs))
        model.compile(
            loss=compile_config.get("loss"),
            metrics=compile_config.get("metrics"),
            loss_weights=compile_config.get("loss_weights"),
            weighted_metrics=compile_config.get("weighted_metrics"),
        )
        _evaluators[key] = model
    return _evaluators[key]


def score(member, labels, predictions, penalty=None):
    """`model.evaluate`'s metrics of `predictions` under `member`'s compiled loss and metrics.

    A member's own loss includes its weight penalty (L2), as `model.evaluate` reports it; an
    average of members has no weights of its own, so its loss is the data loss only.
    """
    model = evaluator(member.compile_config, predictions.shape[1:])
    scores = model.evaluate(
        predictions, labels, batch_size=member.batch_size, verbose=0, return_dict=True
    )
    scores = {name: float(value) for name, value in scores.items()}
    scores["loss"] += member.penalty if penalty is None else penalty
    return scores


def average(members, weights, split):
    """The weighted mean of the members' predictions on `split` (float32, as a model's)."""
    pairs = zip(members, weights, strict=True)
    total = sum(w * m.predictions[split][1].astype("float64") for m, w in pairs)
    return total.astype("float32")


def score_average(members, weights, split):
    """The ensemble's metrics on `split`: the first member's loss and metrics, no penalty."""
    labels = members[0].predictions[split][0]
    return score(members[0], labels, average(members, weights, split), penalty=0.0)


def fit_weights(members, split):
    """Weights that minimise the ensemble's loss on `split` (the book's Nelder-Mead).

    The weights are the softmax of free numbers, so they stay positive and sum to 1; the
    search starts from the plain average, so the result is never worse on `split`.
    """
    import numpy as np
    from scipy.optimize import minimize
    from scipy.special import softmax

    # The loss exactly as model.evaluate computes it (compile's wrapping of a loss name
    # matches the labels' shape to the predictions', e.g. (n,) to P(class 1)'s (n, 1)).
    shape = members[0].predictions[split][1].shape[1:]
    model = evaluator(members[0].compile_config, shape)
    labels = members[0].predictions[split][0]
    stack = np.stack([m.predictions[split][1].astype("float64") for m in members])

    def objective(z):
        w = softmax(z)
        mixed = np.tensordot(w, stack, axes=1).astype("float32")
        return float(model.compute_loss(y=labels, y_pred=mixed))

    # SciPy's Nelder-Mead, from a simplex of the plain average (z = 0) and one step of 1 along
    # each number: its best vertex only improves, so the result is never worse than z = 0.
    n = len(members)
    simplex = np.vstack([np.zeros(n), np.eye(n)])
    options = {"initial_simplex": simplex, "maxfev": 200 * (n + 1), "fatol": 1e-9}
    z = minimize(objective, np.zeros(n), method="Nelder-Mead", options=options).x
    return [float(w) for w in softmax(z)]
