"""`train`: compose the config, then data → model → compile → fit → evaluate, like the book.

train                                   # the embedded digits, a small convnet, ~1 minute on a CPU
train model=vgg16_finetune data=cats_dogs
train -m optimizer.learning_rate=1e-3,1e-4
train --help                            # every config group and its options
"""

import logging
import sys
import time
from pathlib import Path

import hydra
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from kerasrun.config import FINE_TUNE_KEYS, conf_dir, plain, register_resolvers, validate
from kerasrun.errors import ConfigError

log = logging.getLogger("kerasrun")
register_resolvers()


@hydra.main(config_path=str(conf_dir()), config_name="train", version_base="1.3")
def main(cfg):
    """Runs one job and returns its objective (`optimized_metric`) for sweepers."""
    from kerasrun.results import objective

    try:
        metrics = train(cfg)
    except (ConfigError, OmegaConfBaseException) as e:
        log.error(str(e).splitlines()[0] if isinstance(e, ConfigError) else _one_line(e))
        sys.exit(2)
    return objective(metrics, cfg.optimized_metric)


def train(cfg):
    """Trains the model described by `cfg` and returns its final metrics (also in metrics.json)."""
    from kerasrun.console import print_config_tree
    from kerasrun.results import write_json

    run_dir = Path(cfg.paths.output_dir)
    config = plain(cfg)
    print_config_tree(config)
    validate(config)
    start = time.perf_counter()
    try:
        return _train(config, run_dir, start)
    except (ConfigError, OmegaConfBaseException):
        raise
    except BaseException as e:  # keep a record of what happened to this run
        status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
        write_json(
            run_dir / "metrics.json",
            {
                "status": status,
                "error": _one_line(e),
                "wall_time_s": round(time.perf_counter() - start, 2),
            },
        )
        raise


def _train(config, run_dir, start):
    from kerasrun import runtime

    runtime.import_tensorflow_quietly()
    import keras

    from kerasrun import hparams
    from kerasrun.callbacks import build_callbacks, instantiate
    from kerasrun.console import summary_table
    from kerasrun.data import build_data
    from kerasrun.models import build_model
    from kerasrun.models.pretrained import unfreeze_from
    from kerasrun.progress import EpochProgress
    from kerasrun.results import final_metrics, write_json
    from kerasrun.tasks import Task

    trainer = config["trainer"]
    fine_tune = {k: config["model"].pop(k, None) for k in FINE_TUNE_KEYS}

    # 1. Runtime: precision, XLA and strategy for this machine; a fresh Keras session, seeded.
    rt, strategy = runtime.resolve(
        trainer["precision"], trainer["jit_compile"], trainer["strategy"]
    )
    keras.utils.set_random_seed(config["seed"])
    log.info(
        f"Runtime: {rt.devices} · {rt.precision} · XLA {'on' if rt.jit_compile else 'off'} · "
        f"strategy {rt.strategy} ({rt.num_replicas} replica{'s' * (rt.num_replicas > 1)})"
    )

    # 2. Data: tf.data pipelines for train / validation / test.
    data_cfg = dict(config["data"])
    data = build_data(data_cfg.pop("name"), seed=config["seed"], **data_cfg)
    task = Task(data.task, max(data.num_classes, 1))
    log.info(
        f"Data: {data.source} · "
        + " · ".join(f"{k} {v}" for k, v in data.sizes.items())
        + f" · {data.num_classes} classes · input {'x'.join(map(str, data.input_shape))}"
    )

    # 3. Model and compile, inside the strategy's scope.
    model_cfg = dict(config["model"])
    model_name = model_cfg.pop("name")
    with strategy.scope():
        model = build_model(model_name, input_shape=data.input_shape, task=task, **model_cfg)
        model.compile(
            optimizer=instantiate(config["optimizer"], key="optimizer"),
            loss=task.loss,
            metrics=task.metrics,
            jit_compile=rt.jit_compile,
            steps_per_execution=trainer["steps_per_execution"],
        )
    rt.jit_compile = runtime.effective_jit_compile(model, rt.jit_compile)
    log.info(
        f"Model: {model_name} · {model.count_params():,} parameters "
        f"({_count_trainable(model):,} trainable)"
    )

    # 4. Callbacks and loggers; the resolved config (with what `auto` became) beside them.
    callbacks = build_callbacks(config["callbacks"], group="callbacks")
    callbacks += build_callbacks(config["logger"], group="logger")
    tensorboard_dir = (config["logger"] or {}).get("tensorboard", {}).get("log_dir")
    if tensorboard_dir:
        hparams.write_hparams(tensorboard_dir, hparams.flatten_hparams(config), run_dir.name)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml({**config, "runtime": rt.as_dict()}))

    # 5. Fit. With steps_per_epoch the data repeats, like the book's endless generators.
    epochs, steps = trainer["epochs"], trainer["steps_per_epoch"]
    train_dataset = data.train_dataset.repeat() if steps else data.train_dataset
    fit = dict(
        validation_data=data.validation_dataset,
        steps_per_epoch=steps,
        validation_steps=trainer["validation_steps"],
        verbose=0,
        shuffle=False,
    )  # the pipeline shuffles
    bar = sys.stdout.isatty()
    steps_shown = steps or _steps_per_pass(data, config["data"].get("batch_size"))
    history = model.fit(
        train_dataset,
        epochs=epochs,
        **fit,
        callbacks=callbacks + [EpochProgress(epochs, steps_shown, bar)],
    ).history

    # 6. Fine-tuning (the book's 5.3.2): unfreeze the top of the conv base, recompile with a
    # low learning rate, train on. initial_epoch keeps TensorBoard's curves continuous.
    if fine_tune["unfreeze_from"] and not model.stop_training:
        trainable = unfreeze_from(model, fine_tune["unfreeze_from"])
        log.info(
            f"Fine-tuning from {fine_tune['unfreeze_from']}: {trainable} trainable weight "
            f"tensors, learning rate {fine_tune['fine_tune_learning_rate']}"
        )
        with strategy.scope():
            optimizer = instantiate(
                config["optimizer"],
                key="optimizer",
                learning_rate=fine_tune["fine_tune_learning_rate"],
            )
            model.compile(
                optimizer=optimizer,
                loss=task.loss,
                metrics=task.metrics,
                jit_compile=rt.jit_compile,
                steps_per_execution=trainer["steps_per_execution"],
            )
        total = epochs + fine_tune["fine_tune_epochs"]
        more = model.fit(
            train_dataset,
            epochs=total,
            initial_epoch=epochs,
            **fit,
            callbacks=callbacks + [EpochProgress(total, steps_shown, bar, "fine-tune")],
        )
        history = {k: history.get(k, []) + v for k, v in more.history.items()}

    # 7. Evaluate on the test split, save the model, summarise.
    test = None
    if data.test_dataset is not None:
        test = model.evaluate(data.test_dataset, verbose=0, return_dict=True)
    model.save(run_dir / "model.keras")
    status = "stopped_nan" if any(v != v for v in history.get("loss", [])) else "finished"
    metrics = final_metrics(
        history,
        monitor=config["monitor"],
        test=test,
        wall_time_s=time.perf_counter() - start,
        status=status,
    )
    write_json(run_dir / "metrics.json", metrics)
    if tensorboard_dir:
        hparams.write_final_metrics(tensorboard_dir, metrics, step=metrics["epochs"])
    summary_table(metrics, run_dir)
    return metrics


def _count_trainable(model):
    return sum(int(w.numpy().size) for w in model.trainable_weights)


def _steps_per_pass(data, batch_size):
    """Batches in one pass over the training data, for the progress bar (None if unknown)."""
    n = int(data.train_dataset.cardinality())
    if n > 0:
        return n
    return -(-data.sizes["train"] // batch_size) if batch_size else None  # skip-bad-files: unknown


def _one_line(error):
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


if __name__ == "__main__":
    main()
