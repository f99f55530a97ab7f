"""Where `conf/` lives, and the boundary between config nodes and plain Python.

Builders never see a `DictConfig`: `plain()` turns a node into dicts and lists once.
"""

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # src/kerasrun, or kerasrun/ in the wheel

# Keys of a model config that drive the book's second, fine-tuning phase (read by train.py,
# not passed to the builder).
FINE_TUNE_KEYS = ("unfreeze_from", "fine_tune_epochs", "fine_tune_learning_rate")


def conf_dir():
    """The `conf/` directory: inside the wheel, or at the repository root in a checkout."""
    for candidate in (_PACKAGE_DIR / "conf", _PACKAGE_DIR.parents[1] / "conf"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"kerasrun's conf/ directory was not found near {_PACKAGE_DIR}")


def plain(node):
    """A resolved config node as plain dicts and lists (anything else is returned as is)."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(node, (DictConfig, ListConfig)):
        return OmegaConf.to_container(node, resolve=True)
    return node


def move_paths(node, old_dir, new_dir):
    """A copy of the plain config `node` with every path under `old_dir` moved to `new_dir`.

    How a K-fold fold gets its own callbacks and loggers, and a `multi_worker` worker its own
    temporary directory, from the run's config.
    """
    if isinstance(node, dict):
        return {key: move_paths(value, old_dir, new_dir) for key, value in node.items()}
    if isinstance(node, list):
        return [move_paths(value, old_dir, new_dir) for value in node]
    if isinstance(node, str) and node.startswith(str(old_dir)):
        return str(new_dir) + node[len(str(old_dir)) :]
    return node
