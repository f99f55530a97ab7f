"""`trainer.limit`: how a quick check (`debug=default`) stays small in every phase of a run.

A debug preset sets the trainer's own numbers (1 epoch of 2 steps, 2 validation and 2 test
steps). What a model option or an experiment owns, it cannot set for every model, so it caps
it; the caps are in the config tree (`train debug=default --cfg job`), and the run logs each
value it lowered:

- `epochs`: each later phase: fine-tuning (`model.fine_tune_epochs`) and the final model
  after K-fold (`trainer.final_epochs`);
- `folds`: `trainer.kfold=K` trains only the first `folds` of its K folds;
- `samples`: what a generative model makes after each epoch: `dcgan`'s images
  (`model.samples.count`), `vae`'s grid points a side (`model.samples.grid_size`),
  `text_generation`'s characters per temperature (`model.samples.length`).

`null` (the default, in `conf/trainer/default.yaml`) is no cap.
"""

import inspect
import logging

from kerasrun.errors import ConfigError, check_int
from kerasrun.training.samplers import SAMPLE_SIZES, SAMPLERS

log = logging.getLogger("kerasrun")

LIMITS = ("epochs", "folds", "samples")


def check_limit(trainer):
    """Raises a `ConfigError` unless `trainer.limit` is null or a node of `LIMITS`, each a
    positive integer or null."""
    limit = trainer.get("limit")
    if limit is None:
        return
    if not isinstance(limit, dict) or set(limit) - set(LIMITS):
        unknown = sorted(set(limit) - set(LIMITS)) if isinstance(limit, dict) else limit
        raise ConfigError(
            f"trainer.limit takes the keys {', '.join(LIMITS)} (each a positive integer or "
            f"null), or is null. Received: trainer.limit={unknown!r}. "
            "Set e.g. trainer.limit.epochs=1 with debug=default."
        )
    for key in LIMITS:
        check_int(f"trainer.limit.{key}", limit.get(key), allow_none=True, example=1)


def limit_of(config, key):
    """The cap `trainer.limit.<key>` of the plain run `config`, or `None` (also in a run
    saved before `trainer.limit` existed)."""
    return (config["trainer"].get("limit") or {}).get(key)


def apply_limit(config):
    """The plain run `config` with every value that `trainer.limit` caps lowered to its cap;
    logs one line for each. The K-fold folds are capped where they are trained (kfold.py).
    """
    trainer, model = dict(config["trainer"]), dict(config["model"])
    epochs = limit_of(config, "epochs")
    if epochs is not None:
        if trainer.get("kfold") and _over(trainer.get("final_epochs"), epochs):
            trainer["final_epochs"] = _lowered("trainer.final_epochs", trainer, epochs, "epochs")
        if model.get("unfreeze_from") and _over(model.get("fine_tune_epochs"), epochs):
            model["fine_tune_epochs"] = _lowered("model.fine_tune_epochs", model, epochs, "epochs")
    samples, size_key = limit_of(config, "samples"), SAMPLE_SIZES.get(model["name"])
    if samples is not None and size_key:
        given = dict(model.get("samples") or {})
        default = inspect.signature(SAMPLERS[model["name"]]).parameters[size_key].default
        if _over(given.get(size_key, default), samples):
            given.setdefault(size_key, default)
            given[size_key] = _lowered(f"model.samples.{size_key}", given, samples, "samples")
            model["samples"] = given
    return {**config, "trainer": trainer, "model": model}


def _over(value, cap):
    return isinstance(value, int) and not isinstance(value, bool) and value > cap


def _lowered(key, node, cap, limit_key):
    log.info(
        f"{key}={node[key.rsplit('.', 1)[1]]} lowered to {cap} by trainer.limit.{limit_key}="
        f"{cap} (a quick check, e.g. debug=default; trainer.limit.{limit_key}=null lifts it)."
    )
    return cap


__all__ = ["LIMITS", "apply_limit", "check_limit", "limit_of"]
