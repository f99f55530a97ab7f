"""K-fold validation, the book's §3.6: when data is scarce, score a recipe on K folds.

`train trainer.kfold=4` trains a fresh model on each fold (`DataBundle.folds`) and reports
every fold's validation scores and their mean. Each fold is a run of its own under
`<run>/folds/fold_<i>/` (TensorBoard curves, history.csv, checkpoint: the config's callbacks
and loggers, redirected there), and `<run>/folds/mean/` holds the per-epoch mean over the
folds: the book's averaged curve, which shows after how many epochs to stop.
"""

import itertools
import logging
import shutil
import statistics
from pathlib import Path

import tensorflow as tf

from kerasrun import console
from kerasrun.config.compose import move_paths
from kerasrun.errors import require
from kerasrun.rundir.layout import FOLDS, METRICS, TENSORBOARD
from kerasrun.rundir.results import final_metrics, finished, read_history, write_json
from kerasrun.training.callbacks import logger_paths, run_callbacks
from kerasrun.training.fit import Fit
from kerasrun.training.limits import limit_of

log = logging.getLogger("kerasrun")


def cross_validate(config, run_dir, data, new_model, *, k, fit_options):
    """Trains `new_model()` on each of `k` folds; returns the `kfold_*` metrics of the run.

    Args:
        config: the plain run config (its callbacks and loggers are built again per fold).
        run_dir: the run directory; fold `i` writes to `run_dir/folds/fold_<i>/`.
        data: a `DataBundle` with `folds`.
        new_model: returns a freshly built and compiled model.
        k: the number of folds.
        fit_options: keyword arguments for `Fit` (steps per epoch and per pass).

    Returns:
        `{"kfold_val_mae": mean, "kfold_val_mae_std": std, ..., "kfold": {"k": k, "folds":
        [per-fold metrics]}}`: the mean and standard deviation over the folds of every
        validation metric of the last epoch (the book's score) and of the best epoch.
    """
    require(
        data.folds is not None,
        "trainer.kfold needs data held in memory as arrays: boston_housing, imdb, reuters, "
        f"digits, mnist, fashion_mnist, cifar10. Received: data={config['data']['name']} with "
        f"trainer.kfold={k}. Set trainer.kfold=null, or use one of them (time series are not "
        "folded: a fold would train on the future).",
    )
    examples = data.sizes.get("train", 0) + data.sizes.get("validation", 0)
    require(
        isinstance(k, int) and not isinstance(k, bool) and 2 <= k <= examples,
        f"trainer.kfold must be an integer from 2 to the {examples} training examples, or null. "
        f"Received: trainer.kfold={k!r}. Set e.g. trainer.kfold=4 (the book's).",
    )
    epochs = config["trainer"]["epochs"]
    trained = min(k, limit_of(config, "folds") or k)
    if trained < k:
        log.info(
            f"trainer.kfold={k}: only the first {trained} folds train (trainer.limit.folds="
            f"{trained}, a quick check, e.g. debug=default; trainer.limit.folds=null lifts it)."
        )
    folds, histories = [], []
    splits = itertools.islice(data.folds(k), trained)
    for i, (train_dataset, validation_dataset, sizes) in enumerate(splits, start=1):
        fold_dir = Path(run_dir) / FOLDS / f"fold_{i}"
        fold_dir.mkdir(parents=True, exist_ok=True)
        fold_config = fold_paths(config, run_dir, fold_dir)
        fold = finished(fold_dir)
        if fold:  # a resumed run: this fold was done before the kill
            history = read_history(logger_paths(fold_config)[0], {})
        else:
            callbacks = run_callbacks(fold_config)  # resumes the fold from its backup
            fit = Fit(new_model(), train_dataset, validation_dataset, callbacks, **fit_options)
            history = read_history(callbacks.history_csv, fit(0, epochs, phase=f"fold {i}/{k}"))
            if callbacks.backup:  # the fold is over: nothing to resume
                shutil.rmtree(callbacks.backup.backup_dir, ignore_errors=True)
            scores = final_metrics(history, monitor=config["monitor"])
            fold = {"fold": i, **sizes, **{key: v for key, v in scores.items() if "val_" in key}}
            fold.update(epochs=scores["epochs"], status=scores["status"])
            write_json(fold_dir / METRICS, fold)
        log.info(console.describe_fold(fold, k))
        folds.append(fold)
        histories.append(history)
    _write_mean_curves(histories, Path(run_dir) / FOLDS / "mean" / TENSORBOARD)

    metrics = {}
    for key in folds[0]:
        values = [fold[key] for fold in folds if key in fold]
        if "val_" in key and len(values) == len(folds):
            metrics[f"kfold_{key}"] = statistics.fmean(values)
            metrics[f"kfold_{key}_std"] = statistics.pstdev(values)
    console.kfold_table(folds, metrics)
    if not config["trainer"]["final_epochs"]:
        log.info("No final model (trainer.final_epochs=null): the K-fold scores are the run.")
    return {**metrics, "kfold": {"k": k, "folds": folds}}


def fold_paths(config, run_dir, fold_dir):
    """The run's config with every path of its callbacks and loggers under `run_dir` moved to
    `fold_dir`: each fold's TensorBoard curves, history.csv, checkpoint and backup."""
    moved = {
        group: move_paths(config.get(group) or {}, run_dir, fold_dir)
        for group in ("callbacks", "logger")
    }
    return {**config, **moved}


def _write_mean_curves(histories, log_dir):
    """The per-epoch mean over the folds, as Keras's TensorBoard names it (`epoch_loss`, ...).

    Folds that stopped early (early stopping, NaN) shorten the curve to the shortest fold.
    """
    length = min(len(h.get("loss", [])) for h in histories)
    for split, prefix in (("train", ""), ("validation", "val_")):
        keys = [
            key
            for key in histories[0]
            if key.startswith(prefix) and (prefix or not key.startswith("val_"))
        ]
        keys = [key for key in keys if key != "learning_rate"]
        if not keys or not length:
            continue
        with tf.summary.create_file_writer(str(log_dir / split)).as_default():
            for epoch in range(length):
                for key in keys:
                    mean = statistics.fmean(h[key][epoch] for h in histories)
                    tf.summary.scalar(f"epoch_{key[len(prefix) :]}", mean, step=epoch)
