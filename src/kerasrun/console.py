"""What the user sees: the config tree, one line per epoch, the final summary table.

Everything here uses one `rich` console, so the progress bar (on a terminal) and log
lines do not garble each other. When stdout is not a terminal (CI, `nohup`, a sweep),
nothing animates: each epoch is one plain line, also written to `<run>/train.log`.
"""

import logging
import math
import re

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from kerasrun.config.compose import conf_dir
from kerasrun.errors import ConfigError, is_number

console = Console(highlight=False)
# Errors go to stderr, as Hydra's own (`hydra_errors`): `train ... > log.txt` still shows them.
error_console = Console(stderr=True, highlight=False)


class ConsoleHandler(logging.Handler):
    """A logging handler that prints the bare message; warnings and errors are marked.

    Errors go to stderr, everything else to stdout.
    """

    STYLES = {logging.WARNING: "yellow", logging.ERROR: "bold red", logging.CRITICAL: "bold red"}

    def emit(self, record):
        try:
            message = record.getMessage()
            if record.levelno >= logging.WARNING:
                message = f"{record.levelname.capitalize()}: {message}"
            out = error_console if record.levelno >= logging.ERROR else console
            out.print(message, style=self.STYLES.get(record.levelno), markup=False, soft_wrap=True)
        except Exception:  # a broken console must never kill a run
            self.handleError(record)


def print_config_tree(
    cfg_dict, groups=("data", "model", "optimizer", "trainer", "callbacks", "logger")
):
    """Prints the composed config as a tree: one branch per group, then the top-level keys.

    A value that a `# @package _global_` model option set outside `model:` (and that nothing
    changed since) is marked with the option, e.g. `learning_rate: 2e-05  ← model=vgg16_finetune`:
    `model=vgg16_finetune optimizer=adam` trains Adam at the book's 2e-5, and the tree says why.
    """
    marks = set_by_model_option(cfg_dict)
    tree = Tree("[bold]config[/bold]")
    for group in groups:
        if group in cfg_dict:
            _add(tree.add(f"[bold cyan]{group}[/bold cyan]"), cfg_dict[group], group, marks)
    for key, value in cfg_dict.items():
        if key not in groups and key != "paths":
            _add_leaf(tree, key, value, marks.get(key))
    console.print(tree)


def set_by_model_option(cfg_dict):
    """The values outside `model:` that the config's model option set, and that still hold.

    A model option written `# @package _global_` (`conf/model/vgg16_finetune.yaml`) may carry
    its recipe's training: other groups' values, and options of other groups through its
    defaults list (`override /data/augment: book`). Its YAML says which; a value that the
    command line or an experiment changed afterwards is not the option's any more.

    Args:
        cfg_dict: the composed config, as plain dicts (its `model.name` names the option).

    Returns:
        `{dotted key: "model=<name>"}` for each such leaf, e.g.
        `{"optimizer.learning_rate": "model=vgg16_finetune", "data.augment.zoom":
        "model=vgg16_finetune (data/augment=book)", ...}`; empty for an ordinary model option.
    """
    from omegaconf import OmegaConf  # what Hydra reads YAML with (`1e-5` is a number there)

    name = (cfg_dict.get("model") or {}).get("name")
    path = conf_dir() / "model" / f"{name}.yaml"
    if not isinstance(name, str) or not path.is_file():
        return {}
    text = path.read_text()
    if not re.search(r"^#\s*@package\s+_global_\s*$", text, re.MULTILINE):
        return {}
    option = f"model={name}"
    values = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    found = {}
    for entry in values.pop("defaults", None) or []:
        for key, choice in entry.items() if isinstance(entry, dict) else ():
            group = key.removeprefix("override").strip().lstrip("/")
            chosen = conf_dir() / group / f"{choice}.yaml"
            if chosen.is_file():
                node = OmegaConf.to_container(OmegaConf.load(chosen), resolve=False)
                for leaf, value in _leaves(node, group.replace("/", ".")):
                    found[leaf] = (value, f"{option} ({group}={choice})")
    values.pop("model", None)
    for leaf, value in _leaves(values, ""):
        found[leaf] = (value, option)
    return {
        leaf: label
        for leaf, (value, label) in found.items()
        if _lookup(cfg_dict, leaf) == (True, value)
    }


def _leaves(node, prefix):
    """`(dotted key, value)` of each leaf of `node`, as the tree prints them."""
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, node


def _lookup(cfg_dict, dotted):
    """`(True, value)` at the dotted key, or `(False, None)` where it is missing."""
    node = cfg_dict
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return False, None
        node = node[key]
    return True, node


def _add(branch, node, path, marks):
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key}"
            if isinstance(value, dict) and value:
                _add(branch.add(f"[cyan]{key}[/cyan]"), value, where, marks)
            else:
                _add_leaf(branch, key, value, marks.get(where))
    else:
        branch.add(repr(node))


def _add_leaf(branch, key, value, mark=None):
    shown = f"{key}: [green]{'null' if value is None else value}[/green]"
    if mark:
        shown += f"  [yellow]← {escape(mark)}[/yellow]"
    branch.add(shown, highlight=False)


def describe_runtime(rt):
    """`Runtime: CPU · float32 · XLA off · strategy default (1 replica)`.

    With several replicas, also the batch and learning rate they scale: `... strategy
    mirrored (2 replicas) · batch 64/replica = 128 global · learning rate ×2`; in a
    multi_worker job, which task this process is.
    """
    replicas = f"{rt.num_replicas} replica{'s' if rt.num_replicas > 1 else ''}"
    xla = "on" if rt.jit_compile else "off"
    line = (
        f"Runtime: {rt.devices} · {rt.precision} · XLA {xla} · strategy {rt.strategy} ({replicas})"
    )
    if rt.num_workers > 1 or rt.task:
        role = "chief, writes the run" if rt.is_chief else "writes to a temporary directory"
        line += f" · {rt.num_workers} workers, this is {rt.task} ({role})"
    if rt.num_replicas > 1 and rt.global_batch:
        line += f" · batch {rt.per_replica_batch}/replica = {rt.global_batch} global"
    if rt.learning_rate_scale != 1:
        line += f" · learning rate ×{rt.learning_rate_scale:g}"
    return line


def describe_data(data):
    """`Data: <source> · train 2000 · validation 500 · test 500 · 2 classes · input 150x150x3`."""
    sizes = " · ".join(f"{split} {n}" for split, n in data.sizes.items())
    shape = "x".join(map(str, data.input_shape))
    return f"Data: {data.source} · {sizes} · {data.num_classes} classes · input {shape}"


def describe_model(model, name):
    """`Model: small_convnet · 3,453,121 parameters (3,453,121 trainable)`."""
    trainable = sum(int(w.numpy().size) for w in model.trainable_weights)
    return f"Model: {name} · {model.count_params():,} parameters ({trainable:,} trainable)"


def describe_baseline(baseline):
    """`Baseline (no learning): val_mae 0.2900 · test_mae 0.3100` (the book's common sense)."""
    return "Baseline (no learning): " + format_logs(
        {k.removeprefix("baseline_"): v for k, v in baseline.items()}
    )


def describe_fold(fold, k):
    """`Fold 2/4: val_mae 3.1290 · val_loss 17.4500 (303 train, 101 validation, 100 epochs)`."""
    scores = " · ".join(f"{key} {fold[key]:.4f}" for key in fold if key.startswith("val_"))
    return (
        f"Fold {fold['fold']}/{k}: {scores} ({fold['train']} train, {fold['validation']} "
        f"validation, {fold['epochs']} epochs)"
    )


def kfold_table(folds, metrics):
    """Each fold's last-epoch validation scores, then their mean ± std (the book's score)."""
    keys = [key for key in folds[0] if key.startswith("val_")]
    table = Table(title=f"{len(folds)}-fold validation", title_justify="left")
    table.add_column("fold")
    for key in keys:
        table.add_column(key, justify="right")
    for fold in folds:
        table.add_row(str(fold["fold"]), *(f"{fold[key]:.4f}" for key in keys))
    table.add_row(
        "mean ± std",
        *(f"{metrics[f'kfold_{key}']:.4f} ± {metrics[f'kfold_{key}_std']:.4f}" for key in keys),
    )
    console.print(table)


def one_line(error, with_type=True):
    """The first line of an exception's message, for logs and metrics.json."""
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else ""
    return f"{type(error).__name__}: {text}" if with_type else text


def error_line(error):
    """The one line a user mistake prints: a `ConfigError`'s message, or an OmegaConf error's.

    A required value left at `???` (e.g. `glove_path` of `experiment=imdb_raw_glove_200`) gets
    the key and what to do instead of OmegaConf's own words.
    """
    from omegaconf.errors import InterpolationToMissingValueError, MissingMandatoryValue

    if isinstance(error, (MissingMandatoryValue, InterpolationToMissingValueError)):
        found = re.search(r"Missing mandatory value: ?([\w.]+)", str(error))
        key = found.group(1) if found else getattr(error, "full_key", None) or "a key"
        return (
            f"{key} is required (it is ??? in the config). Received: {key}=???. "
            f"Set it on the command line: {key}=... (train --cfg job shows where it is used)."
        )
    return one_line(error, with_type=not isinstance(error, ConfigError))


def format_logs(logs):
    """`loss 0.2134 · accuracy 0.9312 · val_loss ...` with the learning rate last."""
    parts = [f"{k} {v:.4f}" for k, v in logs.items() if k != "learning_rate" and _is_score(v)]
    if "learning_rate" in logs:
        parts.append(f"lr {logs['learning_rate']:.1e}")
    return " · ".join(parts)


def _is_score(value):
    """A number to show, NaN and infinity too: a diverging loss must be seen."""
    return is_number(value) or (isinstance(value, float) and not math.isfinite(value))


def summary_table(metrics, run_dir):
    """The final table: each metric for train / validation / test, then where to look next."""
    prefixes = ("val_", "test_", "")  # "loss", "val_loss", "test_loss" → "loss"
    names = [k.split("_", 1)[1] if k.startswith(prefixes[:2]) else k for k in metrics]
    names = [k for k in dict.fromkeys(names) if any(f"{p}{k}" in metrics for p in prefixes[:2])]
    table = Table(title="Results", title_justify="left")
    table.add_column("metric")
    for column in ("train", "validation", "best validation", "test"):
        table.add_column(column, justify="right")
    for name in names:
        cells = [metrics.get(k) for k in (name, f"val_{name}", f"best_val_{name}", f"test_{name}")]
        table.add_row(name, *("" if c is None else f"{c:.4f}" for c in cells))
    if names:
        console.print(table)
    baseline = {k: v for k, v in metrics.items() if k.startswith("baseline_")}
    if baseline:
        console.print(describe_baseline(baseline))
    console.print(
        f"{metrics.get('epochs', 0)} epochs in {metrics.get('wall_time_s', 0):.1f} s, "
        f"status: {metrics.get('status')}"
    )
    console.print(f"Run directory: {run_dir}", markup=False, soft_wrap=True)
    console.print(f"TensorBoard:   tensorboard --logdir {run_dir}", markup=False, soft_wrap=True)
