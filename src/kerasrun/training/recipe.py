"""The steps of the book's recipe that `train()` calls in order: the data, the model and its
compilation, the run's record, the evaluation on the test split, and the clean-up.

Each step takes the plain run config (never a `DictConfig`) and plain values.
"""

import logging
import shutil
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from kerasrun import console
from kerasrun.config.compose import FINE_TUNE_KEYS
from kerasrun.data import build_data, check_batch_fits, resolve_cache
from kerasrun.models import GENERATIVE, build_model
from kerasrun.rundir.layout import BAD_FILES, RUN_CONFIG, final_model_path
from kerasrun.rundir.results import (
    diverged_message,
    final_metrics,
    first_non_finite,
    write_lines,
    write_yaml,
)
from kerasrun.rundir.vocabulary import save_vocabulary
from kerasrun.tasks import Task
from kerasrun.training import hparams, runtime
from kerasrun.training.callbacks import backup_dir, instantiate

log = logging.getLogger("kerasrun")


def load_data(config, rt, run_dir):
    """The `DataBundle` of `config["data"]`, batched by the global batch of `rt`'s replicas.

    Logs what was loaded and the book's common-sense baseline (know it before training
    anything); files skipped as unreadable are counted and listed in `<run>/bad_files.txt`.
    """
    data_config = resolve_cache(dict(config["data"]), run_dir)  # data.cache=disk: under the run
    name = data_config.pop("name")
    if rt.global_batch:  # data.batch_size is one replica's batch
        data_config["batch_size"] = rt.global_batch
    data = build_data(name, seed=config["seed"], **data_config)
    check_batch_fits(data, data_config.get("batch_size"), name=name, replicas=rt.num_replicas)
    log.info(console.describe_data(data))
    if data.bad_files:  # skipped, not fatal: a photo collection always has a few
        path = Path(run_dir) / BAD_FILES
        write_lines(path, [f"{file}\t{why}" for file, why in data.bad_files])
        log.warning(
            f"Skipped {len(data.bad_files)} unreadable or empty files; they are listed in {path}."
        )
    if data.baseline:
        log.info(console.describe_baseline(baseline(data)))
    return data


def baseline(data):
    """The data's no-learning scores as metrics: `{"baseline_val_mae": ..., ...}`."""
    return {f"baseline_{key}": value for key, value in (data.baseline or {}).items()}


@dataclass
class ModelRecipe:
    """How this run builds and compiles its model, inside the strategy's scope.

    K-fold validation builds a fresh model per fold; fine-tuning compiles again.
    """

    config: dict
    data: object
    rt: runtime.Runtime
    strategy: object

    @cached_property
    def task(self):
        """The task of the data; a generative model (chapter 8) learns the images and ignores
        the labels: no head, no loss."""
        name = self.config["model"]["name"]
        kind = "generative" if name in GENERATIVE else self.data.task
        loss = self.config["trainer"]["loss"]
        return Task(kind, max(self.data.num_classes, 1), loss_name=loss)

    def build(self):
        """A new model, compiled."""
        model_config = self.config["model"]
        skip = ("name", "samples", *FINE_TUNE_KEYS)  # read by train, not by the builder
        with self.strategy.scope():
            model = build_model(
                model_config["name"],
                input_shape=self.data.input_shape,
                task=self.task,
                embeddings=self.data.embeddings,  # pretrained word vectors (GloVe), or None
                **{key: value for key, value in model_config.items() if key not in skip},
            )
        self.compile(model)
        return model

    def compile(self, model, **optimizer_overrides):
        """`model.compile` with the run's optimizer (`optimizer_overrides` win), the task's
        loss and metrics, and the runtime's XLA setting."""
        trainer, task = self.config["trainer"], self.task
        with self.strategy.scope():
            if self.rt.learning_rate_scale != 1:  # trainer.scale_learning_rate=linear
                learning_rate = optimizer_overrides.get("learning_rate")
                learning_rate = learning_rate or self.config["optimizer"].get("learning_rate")
                optimizer_overrides["learning_rate"] = runtime.scaled_learning_rate(
                    learning_rate, self.rt.learning_rate_scale
                )
            optimizer = instantiate(
                self.config["optimizer"], key="optimizer", **optimizer_overrides
            )
            model.compile(
                optimizer=optimizer,
                loss=task.loss,
                metrics=task.metrics,
                jit_compile=self.rt.jit_compile,
                steps_per_execution=trainer["steps_per_execution"],
            )


def write_run_record(config, run_dir, rt, data, tensorboard_dir):
    """What the run directory holds before training: `config.yaml` (with what `auto` became),
    the hyperparameters for TensorBoard's HParams tab, and a text run's vocabulary (what
    `predict` needs to read new text as training did)."""
    run_config = {**config, "runtime": rt.as_dict(), "data_info": data.info()}
    write_yaml(Path(run_dir) / RUN_CONFIG, run_config)
    if tensorboard_dir:
        hparams.write_hparams(tensorboard_dir, hparams.flatten_hparams(config), Path(run_dir).name)
    if data.vocabulary:
        save_vocabulary(run_dir, data.vocabulary)


def evaluate_and_save(model, data, history, *, config, run_dir, started):
    """Evaluates on the test split, saves `model.keras`; returns the run's final metrics.

    `epochs=0` trains nothing and scores the model as built (the book's common-sense
    baseline as a model, or a pretrained one) on the validation split too. A K-fold run
    without final epochs has no model of its own. A diverged model is garbage: only its best
    checkpoint (before the NaN) is kept, and the metrics say why.
    """
    trainer = config["trainer"]
    diverged = bool(first_non_finite(history))
    trained = (bool(history) or not trainer["kfold"]) and not diverged
    # trainer.test_steps (debug=default: 2) bounds the test; .get: runs saved before it.
    test = _evaluate(model, data.test_dataset, trainer.get("test_steps")) if trained else None
    if trained:
        model.save(final_model_path(run_dir))
    metrics = final_metrics(
        history, monitor=config["monitor"], test=test, wall_time_s=time.perf_counter() - started
    )
    if not history and trained:  # epochs=0: the untrained model's validation scores
        val = _evaluate(model, data.validation_dataset, trainer["validation_steps"]) or {}
        metrics.update({f"{p}val_{k}": float(v) for k, v in val.items() for p in ("", "best_")})
    metrics.update(baseline(data))
    if diverged:
        metrics["error"] = diverged_message(history, run_dir)
    return metrics


def _evaluate(model, dataset, steps=None):
    if not dataset:
        return None
    return model.evaluate(dataset, steps=steps, verbose=0, return_dict=True)


def clean_up(config, run_dir):
    """The run is over: nothing will resume it (its backup goes) or read its disk cache."""
    if backup := backup_dir(config):
        shutil.rmtree(backup, ignore_errors=True)
    cache = resolve_cache(config["data"], run_dir).get("cache")
    if isinstance(cache, str):  # data.cache=disk
        shutil.rmtree(cache, ignore_errors=True)


__all__ = ["ModelRecipe", "clean_up", "evaluate_and_save", "load_data", "write_run_record"]
