"""`train`: compose the config, then data → model → compile → fit → evaluate, like the book.

train                                     # embedded digits + a small convnet, offline
train model=vgg16_finetune data=cats_dogs
train -m optimizer.learning_rate=1e-3,1e-4
train --help                              # every config group and its options
"""

import logging
import math
import shutil
import sys
import time
import warnings
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf.errors import OmegaConfBaseException

from kerasrun import console
from kerasrun.config.compose import FINE_TUNE_KEYS, conf_dir, move_paths, plain
from kerasrun.config.hydra_errors import one_line_errors
from kerasrun.config.resolvers import register_resolvers
from kerasrun.config.validate import validate
from kerasrun.data import build_data, check_batch_fits, resolve_cache
from kerasrun.errors import ConfigError, Diverged, Preempted
from kerasrun.models import GENERATIVE, build_model
from kerasrun.models.pretrained import unfreeze_from
from kerasrun.rundir import resume
from kerasrun.rundir.results import (
    FailedJob,
    final_metrics,
    finished,
    objective,
    read_history,
    write_failure,
    write_json,
    write_lines,
    write_yaml,
)
from kerasrun.rundir.vocabulary import save_vocabulary
from kerasrun.tasks import Task
from kerasrun.training import hparams, runtime
from kerasrun.training.callbacks import build_callbacks, continue_best, instantiate
from kerasrun.training.kfold import cross_validate
from kerasrun.training.samplers import build_samplers

log = logging.getLogger("kerasrun")
register_resolvers()


@one_line_errors
@hydra.main(config_path=str(conf_dir()), config_name="train", version_base="1.3")
def main(cfg):
    """Runs one job and returns its objective (`optimized_metric`) for sweepers.

    A user mistake (`ConfigError`, or an OmegaConf error in the config) is one `Error:` line
    and exit code 2. Any other failure keeps its traceback and is recorded in metrics.json.
    In a sweep (`-m`), a failed job is recorded the same way and the sweep goes on: the job
    returns a `FailedJob`, which Optuna records as a failed trial. Ctrl-C or SIGTERM saves a
    backup, records `interrupted`, and stops the run or the sweep (exit code 128 + signal);
    `train resume=<run dir>` continues it.
    """
    run_dir = Path(cfg.paths.output_dir)
    hydra_config = HydraConfig.get()
    sweep = hydra_config.mode == RunMode.MULTIRUN
    start = time.perf_counter()
    # multi_worker: the run directory is the chief's; a worker's failure is on its console.
    chief = runtime.is_chief(cfg.trainer.strategy)

    def record_failure(error):
        if chief:
            write_failure(run_dir / "metrics.json", error, time.perf_counter() - start)

    config = None
    if cfg.get("resume"):  # the killed run's own config, checked before anything is written
        config = resume.config_or_exit(run_dir, hydra_config.overrides.task, multirun=sweep)
        if config is None:
            return None  # it had finished: nothing to do
    try:
        config = config or plain(cfg)
        if sweep and (done := finished(run_dir)):  # a re-run sweep: keep what is done
            log.info(f"Job already finished in {run_dir}: skipped (delete it to run it again).")
            return objective(done, config["optimized_metric"])
        console.print_config_tree(config)
        validate(config)
        metrics = train(config, run_dir)
    except (ConfigError, OmegaConfBaseException) as e:
        log.error(console.error_line(e))
        record_failure(e)
        if not sweep:
            sys.exit(2)
        return FailedJob(console.error_line(e))
    except Diverged as e:  # metrics.json already says failed, with the epochs before NaN
        log.error(str(e))
        if not sweep:
            sys.exit(1)
        return FailedJob(str(e))
    except Exception as e:
        record_failure(e)
        if not sweep:
            raise
        log.exception(f"This job failed; the sweep goes on. {console.one_line(e)}")
        return FailedJob(console.one_line(e))
    except BaseException as e:  # Ctrl-C, SIGTERM, SystemExit: recorded, then everything stops
        record_failure(e)
        if isinstance(e, Preempted):
            again = (
                f"train resume={run_dir}"
                if not sweep
                else f"the same command with hydra.sweep.dir={run_dir.parent}"
            )
            log.warning(f"{e} Continue with: {again}")
            sys.exit(128 + e.signum)
        raise
    # Only a sweeper reads the objective: a single run need not warn that a regression run
    # has no best_val_accuracy.
    return objective(metrics, config["optimized_metric"]) if sweep else None


def train(config, run_dir):
    """Trains the model described by the plain `config`; returns (and writes) its final metrics."""
    start = time.perf_counter()
    trainer = config["trainer"]
    model_cfg = {k: v for k, v in config["model"].items() if k != "name"}
    fine_tune = {key: model_cfg.pop(key, None) for key in FINE_TUNE_KEYS}
    samples = model_cfg.pop("samples", None)  # a generative model's samples, see samples.py

    # 1. Runtime: precision, XLA and strategy for this machine; a fresh Keras session, seeded;
    # the global batch and learning rate for the strategy's replicas.
    runtime.import_tensorflow_quietly()
    import keras

    from kerasrun.training.progress import EpochProgress

    rt, strategy = runtime.resolve(
        trainer["precision"],
        trainer["jit_compile"],
        trainer["strategy"],
        trainer.get("cpu_replicas"),  # .get: runs saved before these keys can be resumed
    )
    keras.utils.set_random_seed(config["seed"])
    # data.batch_size is one replica's batch: the dataset is batched by the global batch.
    data_cfg = dict(config["data"])
    global_batch = runtime.scale_batch_and_learning_rate(
        rt, data_cfg.get("batch_size"), trainer.get("scale_learning_rate", False)
    )
    if global_batch:
        data_cfg["batch_size"] = global_batch
    log.info(console.describe_runtime(rt))
    # TF's multi-worker pattern: a worker runs every step the chief runs (they train in
    # lockstep), but writes into a temporary directory of its own.
    shared_run_dir = run_dir
    if not rt.is_chief:
        config, run_dir = _worker_config(config, run_dir)

    # 2. Data: tf.data pipelines for train / validation / test.
    data_cfg = resolve_cache(data_cfg, run_dir)  # data.cache=disk: files under the run
    data = build_data(data_cfg.pop("name"), seed=config["seed"], **data_cfg)
    check_batch_fits(
        data, data_cfg.get("batch_size"), name=config["data"]["name"], replicas=rt.num_replicas
    )
    # A generative model (chapter 8) learns the images and ignores the labels: no head, no loss.
    kind = "generative" if config["model"]["name"] in GENERATIVE else data.task
    task = Task(kind, max(data.num_classes, 1), loss_name=trainer["loss"])
    log.info(console.describe_data(data))
    if data.bad_files:  # skipped, not fatal: a photo collection always has a few
        write_lines(run_dir / "bad_files.txt", [f"{path}\t{why}" for path, why in data.bad_files])
        log.warning(
            f"Skipped {len(data.bad_files)} unreadable or empty files; "
            f"they are listed in {run_dir / 'bad_files.txt'}."
        )
    baseline = {f"baseline_{k}": v for k, v in getattr(data, "baseline", {}).items()}
    if baseline:  # the book's rule: know the common-sense score before training anything
        log.info(console.describe_baseline(baseline))

    # 3. Model, compiled inside the strategy's scope.
    def new_model():
        with strategy.scope():
            model = build_model(
                config["model"]["name"],
                input_shape=data.input_shape,
                task=task,
                embeddings=data.embeddings,  # pretrained word vectors (GloVe), or None
                **model_cfg,
            )
        compile_model(model)
        return model

    def compile_model(model, **optimizer_overrides):
        with strategy.scope():
            if rt.learning_rate_scale != 1:  # trainer.scale_learning_rate=linear
                learning_rate = optimizer_overrides.get("learning_rate")
                learning_rate = learning_rate or config["optimizer"].get("learning_rate")
                optimizer_overrides["learning_rate"] = runtime.scaled_learning_rate(
                    learning_rate, rt.learning_rate_scale
                )
            optimizer = instantiate(config["optimizer"], key="optimizer", **optimizer_overrides)
            model.compile(
                optimizer=optimizer,
                loss=task.loss,
                metrics=task.metrics,
                jit_compile=rt.jit_compile,
                steps_per_execution=trainer["steps_per_execution"],
            )

    model = new_model()
    rt.jit_compile = runtime.effective_jit_compile(model, rt.jit_compile)
    log.info(console.describe_model(model, config["model"]["name"]))

    # 4. Callbacks and loggers; the resolved config (with what `auto` became) beside them.
    # The backup comes last: an epoch is logged before it counts as done, so a kill in
    # between repeats it (and its first log is pruned) rather than losing it.
    from kerasrun.training.checkpoints import BackupAndRestore, StopOnSignal, prune_logs, read_state

    # callbacks=[] or logger=[] on the command line: Hydra drops the key.
    callbacks = build_callbacks(config.get("callbacks"), group="callbacks")
    callbacks += build_callbacks(config.get("logger"), group="logger")
    backup = next((c for c in callbacks if isinstance(c, BackupAndRestore)), None)
    callbacks = [c for c in callbacks if c is not backup] + ([backup] if backup else [])
    if backup and not rt.is_chief:  # every worker resumes from the chief's backup: one state
        backup.restore_dir = shared_run_dir / backup.backup_dir.relative_to(run_dir)
    logger_cfg = config.get("logger") or {}
    history_csv = logger_cfg.get("csv", {}).get("filename")
    tensorboard_dir = logger_cfg.get("tensorboard", {}).get("log_dir")
    # A generative model's samples each epoch (generated text, images), before the backup.
    at = len(callbacks) - 1 if backup else len(callbacks)
    callbacks[at:at] = build_samplers(
        config["model"]["name"], samples, data=data, log_dir=tensorboard_dir
    )
    # A resumed run (train resume=..., or a re-run sweep): the epochs after the backup run
    # again, so what the killed run logged for them goes.
    state = read_state(backup.restore_dir) if backup else None
    prune_logs(
        state["epoch"] if state else 0, tensorboard_dir=tensorboard_dir, history_csv=history_csv
    )
    continue_best(callbacks, read_history(history_csv, {}))  # the earlier epochs' best
    if tensorboard_dir:
        hparams.write_hparams(tensorboard_dir, hparams.flatten_hparams(config), run_dir.name)
    write_yaml(
        run_dir / "config.yaml", {**config, "runtime": rt.as_dict(), "data_info": data.info()}
    )
    if data.vocabulary:  # text runs: what `predict` needs to read new text as training did
        save_vocabulary(run_dir, data.vocabulary)

    # 5. Fit. With steps_per_epoch the data repeats, like the book's endless generators.
    epochs, steps = trainer["epochs"], trainer["steps_per_epoch"]
    # Skipping bad files leaves tf.data's length unknown, so Keras learns the epoch ends when
    # the data does, and warns about it: that is the expected end of a pass, not a problem.
    warnings.filterwarnings("ignore", message="Your input ran out of data")
    fit = dict(
        steps_per_epoch=steps,
        validation_steps=trainer["validation_steps"],
        verbose=0,
        shuffle=False,
    )
    progress = dict(steps=steps or data.steps_per_pass, bar=sys.stdout.isatty())
    stopper = StopOnSignal(backup)

    # K-fold validation (the book's 3.6): a fresh model per fold scores the recipe; then
    # the model above trains on all the training data for trainer.final_epochs, if set.
    kfold_metrics = {}
    if trainer["kfold"]:
        kfold_metrics = cross_validate(
            config, run_dir, data, new_model, k=trainer["kfold"], fit=fit, progress=progress
        )
        epochs = trainer["final_epochs"] or 0
        if not epochs:
            log.info("No final model (trainer.final_epochs=null): the K-fold scores are the run.")

    def fit_model(initial_epoch, epochs, phase=""):
        train_dataset = data.train_dataset.repeat() if steps else data.train_dataset
        with stopper:  # SIGTERM (preemption) or Ctrl-C: a backup after this batch, then stop
            history = model.fit(
                train_dataset,
                validation_data=data.validation_dataset,
                initial_epoch=initial_epoch,
                epochs=epochs,
                **fit,
                callbacks=callbacks + [stopper, EpochProgress(epochs, **progress, phase=phase)],
            ).history
        stopper.check()  # a signal during the last epoch's end
        return history

    # epochs=0 trains nothing: step 7 evaluates the model as built (e.g. the book's
    # common-sense baseline as a model, or a pretrained one). A backup made in the
    # fine-tuning phase means this phase had finished before the kill.
    in_fine_tune = bool(state) and state["phase"] == "fine-tune"
    history = {}
    if epochs and not in_fine_tune:
        history = fit_model(0, epochs, phase="final model" if trainer["kfold"] else "")
    history = read_history(history_csv, history)  # every epoch, also those before a resume

    # 6. Fine-tuning (the book's 5.3.2): unfreeze the top of the conv base, recompile with a
    # low learning rate, train on. initial_epoch keeps TensorBoard's curves continuous, also
    # when early stopping ended phase 1 early; a diverged (NaN) phase 1 ends the run.
    diverged = bool(_first_non_finite(history))
    if fine_tune["unfreeze_from"] and history and not diverged:
        trainable = unfreeze_from(model, fine_tune["unfreeze_from"])
        log.info(
            f"Fine-tuning from {fine_tune['unfreeze_from']}: {trainable} trainable weight "
            f"tensors, learning rate {fine_tune['fine_tune_learning_rate']}"
        )
        compile_model(model, learning_rate=fine_tune["fine_tune_learning_rate"])
        start_epoch = state["phase_start"] if in_fine_tune else len(history["loss"])
        if backup:  # the phase boundary, backed up: a kill now does not redo phase 1
            backup.phase, backup.phase_start = "fine-tune", start_epoch
            if not in_fine_tune:
                model.optimizer.build(model.trainable_variables)
                backup.save(start_epoch)
        more = fit_model(
            start_epoch, start_epoch + fine_tune["fine_tune_epochs"], phase="fine-tune"
        )
        history = read_history(history_csv, {k: history.get(k, []) + v for k, v in more.items()})
        diverged = bool(_first_non_finite(history))

    # 7. Evaluate on the test split, save the model, summarise. A diverged model is
    # garbage: only its best checkpoint (before the NaN) is kept.
    def evaluate(dataset):
        return model.evaluate(dataset, verbose=0, return_dict=True) if dataset else None

    trained = (bool(history) or not trainer["kfold"]) and not diverged
    test = evaluate(data.test_dataset) if trained else None
    if trained:
        model.save(run_dir / "model.keras")
    metrics = final_metrics(
        history, monitor=config["monitor"], test=test, wall_time_s=time.perf_counter() - start
    )
    if not history and trained:  # epochs=0: the untrained model's validation scores
        val = evaluate(data.validation_dataset) or {}
        metrics.update({f"{p}val_{k}": float(v) for k, v in val.items() for p in ("", "best_")})
    metrics.update(kfold_metrics)
    metrics.update(baseline)
    if diverged:
        metrics["error"] = _diverged_message(history, run_dir)
    write_json(run_dir / "metrics.json", metrics)
    if tensorboard_dir:
        hparams.write_final_metrics(tensorboard_dir, metrics, step=metrics["epochs"])
    if backup:  # the run is over: nothing to resume
        shutil.rmtree(backup.backup_dir, ignore_errors=True)
    if isinstance(data_cfg.get("cache"), str):  # data.cache=disk: nothing will read it again
        shutil.rmtree(data_cfg["cache"], ignore_errors=True)
    if diverged:
        raise Diverged(metrics["error"])
    if not rt.is_chief:
        shutil.rmtree(run_dir, ignore_errors=True)
        log.info(f"{rt.task}: finished; the chief wrote the run to {shared_run_dir}.")
        return metrics
    console.summary_table(metrics, run_dir)
    return metrics


def _worker_config(config, run_dir):
    """A non-chief worker's `(config, run_dir)`: every path under `run_dir` moved to a temp dir."""
    import tempfile

    own_dir = Path(tempfile.mkdtemp(prefix="kerasrun-worker-"))
    return move_paths(config, run_dir, own_dir), own_dir


def _first_non_finite(history):
    """`(epoch, key, value)` of the first NaN/inf training loss, or `None`. Every `*loss`
    key counts: a GAN has no `loss`, but a `d_loss` and a `g_loss`."""
    found = [
        (epoch, key, value)
        for key, values in history.items()
        if key.endswith("loss") and not key.startswith("val_")
        for epoch, value in enumerate(values, 1)
        if not math.isfinite(value)
    ]
    return min(found, default=None)


def _diverged_message(history, run_dir):
    """One line for a run whose loss became NaN/inf: where, and what was kept."""
    epoch, key, value = _first_non_finite(history)
    best = run_dir / "checkpoints" / "best.keras"
    kept = f"the best model before it is {best}" if best.is_file() else "no model was saved"
    loss = "the loss" if key == "loss" else key
    return (
        f"Training diverged: {loss} became {value} in epoch {epoch}; "
        f"{kept}. Lower optimizer.learning_rate (it is often too high) and train again."
    )


if __name__ == "__main__":
    main()
