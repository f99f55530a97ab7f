"""`train`: compose the config, then data → model → compile → fit → evaluate, like the book.

train                                     # embedded digits + a small convnet, offline
train model=vgg16_finetune data=cats_dogs
train -m optimizer.learning_rate=1e-3,1e-4
train --help                              # every config group and its options
"""

import logging
import math
import sys
import time
import warnings
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf.errors import OmegaConfBaseException

from kerasrun import console, hparams, runtime
from kerasrun.callbacks import build_callbacks, continue_best, instantiate
from kerasrun.config import FINE_TUNE_KEYS, conf_dir, plain, register_resolvers, validate
from kerasrun.data import build_data
from kerasrun.errors import ConfigError
from kerasrun.kfold import cross_validate
from kerasrun.models import build_model
from kerasrun.models.pretrained import unfreeze_from
from kerasrun.results import (
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
from kerasrun.tasks import Task

log = logging.getLogger("kerasrun")
register_resolvers()


@hydra.main(config_path=str(conf_dir()), config_name="train", version_base="1.3")
def main(cfg):
    """Runs one job and returns its objective (`optimized_metric`) for sweepers.

    A user mistake (`ConfigError`, or an OmegaConf error in the config) is one `Error:` line
    and exit code 2. Any other failure keeps its traceback and is recorded in metrics.json.
    In a sweep (`-m`), a failed job is recorded the same way and the sweep goes on: the job
    returns a `FailedJob`, which Optuna records as a failed trial. Ctrl-C stops the sweep.
    """
    run_dir = Path(cfg.paths.output_dir)
    sweep = HydraConfig.get().mode == RunMode.MULTIRUN
    start = time.perf_counter()
    try:
        config = plain(cfg)
        if sweep and (done := finished(run_dir)):  # a re-run sweep: keep what is done
            log.info(f"Job already finished in {run_dir}: skipped (delete it to run it again).")
            return objective(done, config["optimized_metric"])
        console.print_config_tree(config)
        validate(config)
        metrics = train(config, run_dir)
    except (ConfigError, OmegaConfBaseException) as e:
        log.error(console.one_line(e, with_type=not isinstance(e, ConfigError)))
        write_failure(run_dir / "metrics.json", e, time.perf_counter() - start)
        if not sweep:
            sys.exit(2)
        return FailedJob(console.one_line(e))
    except Exception as e:
        write_failure(run_dir / "metrics.json", e, time.perf_counter() - start)
        if not sweep:
            raise
        log.exception(f"This job failed; the sweep goes on. {console.one_line(e)}")
        return FailedJob(console.one_line(e))
    except BaseException as e:  # Ctrl-C, SystemExit: recorded, then the whole command stops
        write_failure(run_dir / "metrics.json", e, time.perf_counter() - start)
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

    # 1. Runtime: precision, XLA and strategy for this machine; a fresh Keras session, seeded.
    runtime.import_tensorflow_quietly()
    import keras

    from kerasrun.progress import EpochProgress

    rt, strategy = runtime.resolve(
        trainer["precision"], trainer["jit_compile"], trainer["strategy"]
    )
    keras.utils.set_random_seed(config["seed"])
    log.info(console.describe_runtime(rt))

    # 2. Data: tf.data pipelines for train / validation / test.
    data_cfg = dict(config["data"])
    data = build_data(data_cfg.pop("name"), seed=config["seed"], **data_cfg)
    task = Task(data.task, max(data.num_classes, 1), loss_name=trainer["loss"])
    log.info(console.describe_data(data))
    if data.bad_files:  # skipped, not fatal: a photo collection always has a few
        write_lines(run_dir / "bad_files.txt", [f"{path}\t{why}" for path, why in data.bad_files])
        log.warning(
            f"Skipped {len(data.bad_files)} unreadable files (data.on_bad_file=skip); "
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
    callbacks = build_callbacks(config["callbacks"], group="callbacks")
    callbacks += build_callbacks(config["logger"], group="logger")
    history_csv = (config["logger"] or {}).get("csv", {}).get("filename")
    continue_best(callbacks, read_history(history_csv, {}))  # a resumed job's earlier epochs
    tensorboard_dir = (config["logger"] or {}).get("tensorboard", {}).get("log_dir")
    if tensorboard_dir:
        hparams.write_hparams(tensorboard_dir, hparams.flatten_hparams(config), run_dir.name)
    write_yaml(
        run_dir / "config.yaml", {**config, "runtime": rt.as_dict(), "data_info": data.info()}
    )
    if data.vocabulary:  # text runs: what `predict` needs to read new text as training did
        from kerasrun.predict import save_vocabulary

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
        return model.fit(
            train_dataset,
            validation_data=data.validation_dataset,
            initial_epoch=initial_epoch,
            epochs=epochs,
            **fit,
            callbacks=callbacks + [EpochProgress(epochs, **progress, phase=phase)],
        ).history

    # epochs=0 trains nothing: step 7 evaluates the model as built (e.g. the book's
    # common-sense baseline as a model, or a pretrained one).
    history = (
        fit_model(0, epochs, phase="final model" if trainer["kfold"] else "") if epochs else {}
    )
    history = read_history(history_csv, history)  # all epochs, also when resumed from a backup

    # 6. Fine-tuning (the book's 5.3.2): unfreeze the top of the conv base, recompile with a
    # low learning rate, train on. initial_epoch keeps TensorBoard's curves continuous, also
    # when early stopping ended phase 1 early; only a diverged (NaN) phase 1 ends the run.
    done = len(history.get("loss", []))
    finite = all(map(math.isfinite, history.get("loss", [])))
    if fine_tune["unfreeze_from"] and history and finite:
        trainable = unfreeze_from(model, fine_tune["unfreeze_from"])
        log.info(
            f"Fine-tuning from {fine_tune['unfreeze_from']}: {trainable} trainable weight "
            f"tensors, learning rate {fine_tune['fine_tune_learning_rate']}"
        )
        compile_model(model, learning_rate=fine_tune["fine_tune_learning_rate"])
        more = fit_model(done, done + fine_tune["fine_tune_epochs"], phase="fine-tune")
        history = {k: history.get(k, []) + v for k, v in more.items()}

    # 7. Evaluate on the test split, save the model, summarise.
    def evaluate(dataset):
        return model.evaluate(dataset, verbose=0, return_dict=True) if dataset else None

    trained = bool(history) or not trainer["kfold"]  # no final model after K-fold alone
    test = evaluate(data.test_dataset) if trained else None
    if trained:
        model.save(run_dir / "model.keras")
    metrics = final_metrics(
        read_history(history_csv, history),
        monitor=config["monitor"],
        test=test,
        wall_time_s=time.perf_counter() - start,
    )
    if not history and trained:  # epochs=0: the untrained model's validation scores
        val = evaluate(data.validation_dataset) or {}
        metrics.update({f"{p}val_{k}": float(v) for k, v in val.items() for p in ("", "best_")})
    metrics.update(kfold_metrics)
    metrics.update(baseline)
    write_json(run_dir / "metrics.json", metrics)
    if tensorboard_dir:
        hparams.write_final_metrics(tensorboard_dir, metrics, step=metrics["epochs"])
    console.summary_table(metrics, run_dir)
    return metrics


if __name__ == "__main__":
    main()
