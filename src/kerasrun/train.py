"""`train`: compose the config, then data → model → compile → fit → evaluate, like the book.

train                                     # embedded digits + a small convnet, offline
train model=vgg16_finetune data=cats_dogs
train -m optimizer.learning_rate=1e-3,1e-4
train --help                              # every config group and its options
"""

import logging
import sys
import time
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf.errors import OmegaConfBaseException

from kerasrun import console
from kerasrun.config.command import command
from kerasrun.config.compose import plain
from kerasrun.config.schema import check_train_keys
from kerasrun.config.validate import validate
from kerasrun.errors import ConfigError, Diverged, Preempted, UnknownKey
from kerasrun.rundir import resume
from kerasrun.rundir.layout import metrics_path
from kerasrun.rundir.results import FailedJob, finished, objective, write_failure, write_json
from kerasrun.training import hparams, runtime
from kerasrun.training.callbacks import logger_paths, run_callbacks
from kerasrun.training.limits import apply_limit
from kerasrun.training.recipe import (
    ModelRecipe,
    clean_up,
    evaluate_and_save,
    load_data,
    write_run_record,
)
from kerasrun.training.samplers import build_samplers

log = logging.getLogger("kerasrun")


@command("train", catch_user_errors=False)
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
            write_failure(metrics_path(run_dir), error, time.perf_counter() - start)

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
        # What the command line composed: nothing it typed goes unread.
        check_train_keys(cfg, experiment=hydra_config.runtime.choices.get("experiment"))
        validate(config)
        metrics = train(config, run_dir)
        if chief:
            save_metrics(metrics, config, run_dir)
        if metrics.get("diverged"):
            raise Diverged(metrics["error"])
        if chief:
            console.summary_table(metrics, run_dir)
    except (ConfigError, OmegaConfBaseException) as e:
        log.error(console.error_line(e))
        record_failure(e)
        if not sweep or isinstance(e, UnknownKey):  # a typo of the sweep, not of one job
            sys.exit(2)
        return FailedJob(console.error_line(e))
    except Diverged as e:  # metrics.json says failed, with the epochs before NaN
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
    """Trains the model of the plain `config` in `run_dir`, like the book; returns its metrics.

    A killed run continues from its backup (`train resume=<run dir>`); a `multi_worker`
    worker trains in lockstep with the chief; `trainer.kfold` scores the recipe on K folds.
    """
    started = time.perf_counter()
    config = apply_limit(config)  # debug=default: every phase small (trainer.limit)
    trainer, model_config = config["trainer"], config["model"]

    # 1. Runtime: precision, XLA and strategy for this machine; a fresh Keras session, seeded.
    rt, strategy = runtime.set_up(
        trainer, seed=config["seed"], batch_size=config["data"].get("batch_size")
    )
    from kerasrun.training.fit import Fit, fine_tune  # lazy: TensorFlow, after the set-up
    from kerasrun.training.kfold import cross_validate

    chief_run_dir = run_dir  # a worker writes into a temporary directory of its own
    config, run_dir = runtime.own_run_dir(config, run_dir, rt)

    # 2. Data: tf.data pipelines for train / validation / test.
    data = load_data(config, rt, run_dir)

    # 3. Model, built and compiled inside the strategy's scope.
    recipe = ModelRecipe(config, data, rt, strategy)
    model = recipe.build()
    rt.jit_compile = runtime.effective_jit_compile(model, rt.jit_compile)
    log.info(console.describe_model(model, model_config["name"]))

    # 4. Callbacks and loggers (a resumed run continues from its backup), a generative
    # model's samples each epoch, and the record of the run: config.yaml, hyperparameters.
    _, tensorboard_dir = logger_paths(config)
    samplers = build_samplers(
        model_config["name"], model_config.get("samples"), data=data, log_dir=tensorboard_dir
    )
    callbacks = run_callbacks(config, extra=samplers, run_dir=run_dir, chief_run_dir=chief_run_dir)
    write_run_record(config, run_dir, rt, data, tensorboard_dir)

    # 5. Fit. K-fold validation (the book's 3.6) first scores the recipe with a fresh model
    # per fold; then the model trains on all the training data for trainer.final_epochs.
    steps = dict(
        steps_per_epoch=trainer["steps_per_epoch"],
        validation_steps=trainer["validation_steps"],
        steps_per_pass=data.steps_per_pass,
    )
    fit = Fit(model, data.train_dataset, data.validation_dataset, callbacks, **steps)
    kfold_metrics, epochs = {}, trainer["epochs"]
    if trainer["kfold"]:
        kfold_metrics = cross_validate(
            config, run_dir, data, recipe.build, k=trainer["kfold"], fit_options=steps
        )
        epochs = trainer["final_epochs"] or 0
    history = fit.first_phase(epochs, phase="final model" if trainer["kfold"] else "")

    # 6. Fine-tuning (the book's 5.3.2): unfreeze the top of the conv base, train on.
    history = fine_tune(
        fit,
        history,
        recipe.compile,
        unfreeze_from=model_config.get("unfreeze_from"),
        epochs=model_config.get("fine_tune_epochs"),
        learning_rate=model_config.get("fine_tune_learning_rate"),
    )

    # 7. Evaluate on the test split and save the model.
    metrics = evaluate_and_save(
        model, data, history, config=config, run_dir=run_dir, started=started
    )
    runtime.remove_own_run_dir(run_dir, rt, chief_run_dir)
    return {**metrics, **kfold_metrics}


def save_metrics(metrics, config, run_dir):
    """Writes `metrics.json` and TensorBoard's final scalars; then the run is over, and
    nothing will resume it (its backup goes) or read its disk cache."""
    write_json(metrics_path(run_dir), metrics)
    _, tensorboard_dir = logger_paths(config)
    if tensorboard_dir:
        hparams.write_final_metrics(tensorboard_dir, metrics, step=metrics["epochs"])
    clean_up(config, run_dir)


if __name__ == "__main__":
    main()
