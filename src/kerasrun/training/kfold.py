"""K-fold validation, the book's §3.6: when data is scarce, score a recipe on K folds.

`train trainer.kfold=4` trains a fresh model on each fold (`DataBundle.folds`) and reports
every fold's validation scores and their mean. Each fold is a run of its own under
`<run>/folds/fold_<i>/` (TensorBoard curves, history.csv, checkpoint: the config's callbacks
and loggers, redirected there), and `<run>/folds/mean/` holds the per-epoch mean over the
folds: the book's averaged curve, which shows after how many epochs to stop.
"""

import logging
import shutil
import statistics

from kerasrun import console
from kerasrun.config.compose import move_paths
from kerasrun.errors import require
from kerasrun.rundir.results import final_metrics, finished, read_history, write_json
from kerasrun.training.callbacks import build_callbacks

log = logging.getLogger("kerasrun")


def cross_validate(config, run_dir, data, new_model, *, k, fit, progress):
    """Trains `new_model()` on each of `k` folds; returns the `kfold_*` metrics of the run.

    Args:
        config: the plain run config (its callbacks and loggers are built again per fold).
        run_dir: the run directory; fold `i` writes to `run_dir/folds/fold_<i>/`.
        data: a `DataBundle` with `folds`.
        new_model: returns a freshly built and compiled model.
        k: the number of folds.
        fit: keyword arguments for `model.fit` (steps, verbosity).
        progress: keyword arguments for `EpochProgress`.

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
    folds, histories = [], []
    for i, (train_dataset, validation_dataset, sizes) in enumerate(data.folds(k), start=1):
        fold_dir = run_dir / "folds" / f"fold_{i}"
        fold_dir.mkdir(parents=True, exist_ok=True)
        callbacks, history_csv = _callbacks(config, run_dir, fold_dir)
        fold = finished(fold_dir)
        if fold:  # a resumed run: this fold was done before the kill
            history = read_history(history_csv, {})
        else:
            history = _fit_fold(
                fold_dir,
                new_model(),
                train_dataset,
                validation_dataset,
                callbacks,
                history_csv,
                fit=fit,
                epochs=epochs,
                progress=dict(progress, phase=f"fold {i}/{k}"),
            )
            scores = final_metrics(history, monitor=config["monitor"])
            fold = {"fold": i, **sizes, **{key: v for key, v in scores.items() if "val_" in key}}
            fold.update(epochs=scores["epochs"], status=scores["status"])
            write_json(fold_dir / "metrics.json", fold)
        log.info(console.describe_fold(fold, k))
        folds.append(fold)
        histories.append(history)
    _write_mean_curves(histories, run_dir / "folds" / "mean" / "tensorboard")

    metrics = {}
    for key in folds[0]:
        values = [fold[key] for fold in folds if key in fold]
        if "val_" in key and len(values) == len(folds):
            metrics[f"kfold_{key}"] = statistics.fmean(values)
            metrics[f"kfold_{key}_std"] = statistics.pstdev(values)
    console.kfold_table(folds, metrics)
    return {**metrics, "kfold": {"k": k, "folds": folds}}


def _fit_fold(
    fold_dir,
    model,
    train_dataset,
    validation_dataset,
    callbacks,
    history_csv,
    *,
    fit,
    epochs,
    progress,
):
    """Trains one fold (from its backup, if a kill interrupted it); returns its history.

    SIGTERM or Ctrl-C: the fold's backup is saved after the current batch and `Preempted`
    stops the run, as in `train` (`train resume=<run>` continues this fold).
    """
    from kerasrun.training.checkpoints import BackupAndRestore, StopOnSignal, prune_logs, read_state
    from kerasrun.training.progress import EpochProgress

    backup = next((c for c in callbacks if isinstance(c, BackupAndRestore)), None)
    state = read_state(backup.backup_dir) if backup else None
    prune_logs(
        state["epoch"] if state else 0,
        tensorboard_dir=fold_dir / "tensorboard",
        history_csv=history_csv,
    )
    steps = fit["steps_per_epoch"]
    stopper = StopOnSignal(backup)
    with stopper:
        history = model.fit(
            train_dataset.repeat() if steps else train_dataset,
            validation_data=validation_dataset,
            epochs=epochs,
            **fit,
            callbacks=callbacks + [stopper, EpochProgress(epochs, **progress)],
        ).history
    stopper.check()  # a signal during the last epoch's end
    if backup:
        shutil.rmtree(backup.backup_dir, ignore_errors=True)
    return read_history(history_csv, history)


def _callbacks(config, run_dir, fold_dir):
    """The run's callbacks and loggers, with every path under `run_dir` moved to `fold_dir`,
    the backup last (see train.py); and the fold's history.csv, or `None`."""
    from kerasrun.training.checkpoints import BackupAndRestore

    logger = move_paths(config.get("logger") or {}, run_dir, fold_dir)
    callbacks = build_callbacks(
        move_paths(config.get("callbacks") or {}, run_dir, fold_dir), group="callbacks"
    )
    callbacks += build_callbacks(logger, group="logger")
    backups = [c for c in callbacks if isinstance(c, BackupAndRestore)]
    callbacks = [c for c in callbacks if c not in backups] + backups
    return callbacks, (logger.get("csv") or {}).get("filename")


def _write_mean_curves(histories, log_dir):
    """The per-epoch mean over the folds, as Keras's TensorBoard names it (`epoch_loss`, ...).

    Folds that stopped early (early stopping, NaN) shorten the curve to the shortest fold.
    """
    import tensorflow as tf

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
