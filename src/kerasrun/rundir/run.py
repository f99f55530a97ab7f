"""A finished run, opened again: its config, its model and its data, safely.

`evaluate`, `predict`, `visualize` and `export-model` all start here:

    run = open_run("outputs/runs/2026-11-22_10-00-00_cats_dogs-small_convnet")
    model = run.load_model()               # checkpoints/best.keras, in Keras's safe mode
    data = run.build_data(root="/here/cats_and_dogs_filtered")   # the run's data, here

Nothing in a run directory is trusted to run code: the model loads with `safe_mode=True`
(no Lambda layers, no arbitrary objects), and every `_target_` in its config.yaml must be on
kerasrun's allowlist before anything is built from it. Nor to reach outside itself: its
config's paths (but the data's) and its links must stay inside it (`rundir/confine.py`);
the commands write under `Run.path`, never to a path of its config. A run made on another
machine names paths that do not exist here; building its data then says which key to override.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf
from PIL import Image

from kerasrun.data import build_data, resolve_cache
from kerasrun.data import images as pipeline
from kerasrun.errors import ConfigError, require
from kerasrun.models import GENERATIVE, load_model
from kerasrun.rundir.confine import check_inside
from kerasrun.rundir.layout import RUN_CONFIG, SAMPLES, best_model_path, final_model_path
from kerasrun.training.callbacks import check_target

CHECKPOINTS = {"best": best_model_path, "last": final_model_path}  # checkpoint= -> its file
# Data keys that name files or folders on the machine that trained the run.
DATA_PATH_KEYS = ("root", "path")


@dataclass
class Run:
    """A run directory written by `train`.

    Attributes:
        path: the run directory.
        config: its resolved config (config.yaml), as plain dicts and lists.
        model_path: the `.keras` file `load_model` reads (see `open_run`'s `checkpoint`).
    """

    path: Path
    config: dict
    model_path: Path

    @property
    def class_names(self):
        """The class names training saw (`[]` for regression), from config.yaml's `data_info`."""
        return list((self.config.get("data_info") or {}).get("class_names") or [])

    def load_model(self):
        """The run's model, in safe mode; raw inputs in (the preprocessing is inside it)."""
        return load_model(self.model_path)

    def check_paths(self, **overrides):
        """Raises a `ConfigError` naming the key if a data path (the run's, or an override
        such as `root=`) does not exist on this machine. Cheap: call it before TensorFlow."""
        data_cfg = {**self.config["data"], **{k: v for k, v in overrides.items() if v is not None}}
        for key in DATA_PATH_KEYS:
            value = data_cfg.get(key)
            where = (
                "on the command line"
                if overrides.get(key) is not None
                else f"from {self.path / RUN_CONFIG}"
            )
            require(
                value is None or Path(os.path.expanduser(str(value))).exists(),
                f"data.{key} does not exist on this machine. Received: data.{key}='{value}' "
                f"({where}). Point it at the run's data here: data.{key}=/path/to/it.",
            )
        return data_cfg

    def build_data(self, **overrides):
        """The run's `DataBundle`, rebuilt from its config with `overrides` (e.g. `root=`).

        Raises:
            ConfigError: a path of the data config does not exist here (see `check_paths`).
        """
        data_cfg = resolve_cache(self.check_paths(**overrides))
        name = data_cfg.pop("name")
        return build_data(name, seed=self.config.get("seed", 0), **data_cfg)


def require_classifier(run, command):
    """A `ConfigError` if `run` trained a generative model (`vae`, `dcgan`): no labels to give.

    Args:
        run: an opened run (`open_run`).
        command: the command asking, for the message (`"predict"`).
    """
    name = (run.config.get("model") or {}).get("name")
    require(
        name not in GENERATIVE,
        f"{command} needs the run of a model that predicts labels. Received: run='{run.path}', "
        f"a model={name} run, which generates images: they are in {run.path / SAMPLES} and "
        f"in TensorBoard's Images tab. Use `evaluate run={run.path}` for its losses.",
    )


def open_run(path, checkpoint="best"):
    """Opens the run directory `path`; checks its config before anything is built from it.

    Args:
        path: a run (or sweep job) directory written by `train`.
        checkpoint: `"best"` (`checkpoints/best.keras`, the best epoch by `monitor`; the final
            model when there is none), `"last"` (`model.keras`, the final model), or the path
            of a `.keras` file.
    """
    require(
        path is not None and str(path) not in ("", "???"),
        "run must be a run directory written by train, and none was given. Set "
        "run=outputs/runs/<date>_<time>_<data>-<model> (`runs` lists them).",
    )
    path = Path(os.path.expanduser(str(path)))
    require(
        (path / RUN_CONFIG).is_file(),
        f"run must be a run directory written by train (with a {RUN_CONFIG}). Received: "
        f"run='{path}', which {f'has no {RUN_CONFIG}' if path.is_dir() else 'does not exist'}. "
        "Pass the folder train printed as 'Run directory:' (`runs` lists them).",
    )
    try:
        config = OmegaConf.to_container(OmegaConf.load(path / RUN_CONFIG), resolve=False)
    except Exception as e:
        raise ConfigError(
            f"{path / RUN_CONFIG} cannot be read ({type(e).__name__}: {e}). "
            "It may be truncated: train the run again."
        ) from None
    for group in ("optimizer", "callbacks", "logger"):
        nodes = config.get(group) or {}
        nodes = {"": nodes} if "_target_" in nodes else nodes
        for name, node in nodes.items():
            if isinstance(node, dict) and "_target_" in node:
                check_target(node["_target_"], key=".".join(filter(None, (group, name))))
    # config.yaml's paths are where the run was trained: read relative to that place.
    recorded = (config.get("paths") or {}).get("output_dir")
    check_inside(config, path, source=path / RUN_CONFIG, recorded_dir=recorded)
    return Run(path, config, _checkpoint(path, checkpoint))


def _checkpoint(path, checkpoint):
    if checkpoint in CHECKPOINTS:
        candidates = [CHECKPOINTS[checkpoint](path)]
        if checkpoint == "best":  # runs without a checkpoint callback: the final model
            candidates.append(final_model_path(path))
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        raise ConfigError(
            f"checkpoint={checkpoint} needs {candidates[0]}, which does not exist: the run did "
            "not finish or saved no model. Choose another run, or checkpoint=<file.keras>."
        )
    candidate = Path(os.path.expanduser(str(checkpoint)))
    require(
        candidate.suffix == ".keras" and candidate.is_file(),
        f"checkpoint must be best, last or a .keras file. Received: checkpoint='{checkpoint}'. "
        "Set checkpoint=best (the best epoch) or checkpoint=last (the final model).",
    )
    return candidate


IMAGE_FILES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def image_files(inputs):
    """The image files named by `inputs` (files, or folders searched recursively), sorted.

    Raises:
        ConfigError: an input does not exist, or no image was found at all.
    """
    found = []
    for item in inputs or []:
        path = Path(os.path.expanduser(str(item)))
        require(
            path.exists(),
            f"inputs must be image files or folders. Received: '{item}', which does not exist. "
            "Fix the path (inputs=[cat.jpg,photos/]).",
        )
        if path.is_dir():
            found += sorted(
                p
                for p in path.rglob("*")
                if p.suffix.lower() in IMAGE_FILES and not p.name.startswith(".")
            )
        else:
            found.append(path)
    require(
        found,
        f"inputs must name at least one image ({', '.join(IMAGE_FILES)}). Received: "
        f"inputs={list(inputs or [])}. Set e.g. inputs=[cat.jpg,photos/].",
    )
    return found


def load_images(paths, input_shape):
    """Images as the run's training pipeline made them: float32 `(n, h, w, c)` in [0, 255].

    Colour images take training's own route (`kerasrun.data.images`): TensorFlow's decoder
    (a JPEG at least twice the target size at 1/2, 1/4 or 1/8 scale, `jpeg_ratio`), or Pillow
    for the files TensorFlow decodes wrongly (a 16-bit PNG, a huge JPEG at reduced size),
    then TensorFlow's bilinear resize rounded to uint8. Grayscale runs (digits, MNIST:
    trained on arrays, not files) get the image converted to gray by Pillow. The model does
    the rest of its preprocessing itself.

    Raises:
        ConfigError: a file is not an image that can be read (named, with the reason).
    """
    import tensorflow as tf

    height, width, channels = input_shape[-3:]
    loaded = []
    for path in paths:
        how, reason = pipeline.inspect_image(path)
        require(how, f"inputs: {path} is not an image that can be read ({reason}). Remove it.")
        if channels == 1:
            with Image.open(path) as image:
                image.seek(0)  # an animated GIF: its first frame, as training decodes it
                array = np.asarray(image.convert("L"))[..., None]
        elif how == "tf":
            contents = tf.io.read_file(str(path))
            (ratio,) = pipeline.jpeg_ratios([path], (height, width))
            if ratio > 1:  # a large JPEG: decoded at reduced size, as training did
                array = tf.io.decode_jpeg(contents, channels=3, ratio=ratio)
            else:
                array = tf.io.decode_image(contents, channels=3, expand_animations=False)
        else:
            array = pipeline.decode_with_pillow(str(path), height, width)
        resized = tf.image.resize(array, (height, width))
        loaded.append(tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8).numpy())
    return np.stack(loaded).astype("float32")
