"""`visualize`: what a finished run's convnet sees, the book's 5.4, as one command.

visualize run=<run> kind=activations image=cat.jpg   # 5.4.1: each conv/pool layer's channels
visualize run=<run> kind=filters                     # 5.4.2: what each filter responds to most
visualize run=<run> kind=gradcam image=cat.jpg       # 5.4.3: where the evidence for a class is

The image is read exactly as training read its images (`kerasrun.rundir.run.load_images`: any
format and size, resized to the run's input), and fed to the run's own model, which does its
own preprocessing (`Rescaling(1/255)` or a pretrained backbone's `preprocess_input` layer).
Layers of a pretrained run's nested backbone (`conv_base`) are found inside it
(`kerasrun.vision.layers`).

PNGs go to `<run>/visualize/<kind>/`, the same images to TensorBoard under
`<run>/tensorboard/visualize/` (or both under `output=`).

Two kinds need no run, only a pretrained backbone (the book's chapter 8):

visualize kind=deepdream image=photo.jpg                              # kerasrun.vision.dream
visualize kind=style_transfer image=photo.jpg style_image=painting.jpg # kerasrun.vision.style

They write into a new `outputs/visualize/<date>_<time>_<kind>/` (or `output=`). And
`kind=gradcam frames=<folder>` explains every frame of a video (`kerasrun.vision.gradcam_frames`).

The story: check every option (before TensorFlow) → open the run, or the backbone → make the
images → write them as PNGs and to TensorBoard. The kinds live in `kerasrun.vision`, whose
modules import NumPy, Pillow and TensorFlow inside their functions, so `visualize --help`
stays fast.
"""

import logging
import os
from pathlib import Path

from kerasrun.config.command import command
from kerasrun.config.compose import plain
from kerasrun.errors import ConfigError
from kerasrun.pictures import write_tensorboard_images
from kerasrun.rundir.layout import TENSORBOARD, VISUALIZE
from kerasrun.rundir.run import open_run, require_classifier
from kerasrun.training import runtime
from kerasrun.vision import backbones
from kerasrun.vision.activations import activations
from kerasrun.vision.dream import deepdream
from kerasrun.vision.filters import filters
from kerasrun.vision.gradcam import check_class_index, gradcam
from kerasrun.vision.gradcam_frames import gradcam_frames
from kerasrun.vision.options import (
    BACKBONE_KINDS,
    check_backbone_options,
    check_frames,
    check_image,
    check_kind,
    check_options,
    image_input_shape,
)
from kerasrun.vision.style import style_transfer

log = logging.getLogger("kerasrun")

# The kinds that look at a run: each writes its PNGs and returns `{tensorboard tag: image}`.
VISUALIZERS = {"activations": activations, "filters": filters, "gradcam": gradcam}


@command("visualize")
def main(cfg):
    """Checks every key, then writes the images of `kind` and says where they are."""
    config = plain(cfg)
    kind = check_kind(config["kind"])
    if kind in BACKBONE_KINDS:
        return generate(kind, config)
    options = check_options(kind, config)
    frames = check_frames(kind, config)
    run = open_run(config["run"], config["checkpoint"])
    require_classifier(run, f"visualize kind={kind}")
    input_shape = image_input_shape(run)
    if kind == "gradcam" and run.class_names:  # else checked once the model is loaded
        check_class_index(options["class_index"], len(run.class_names))
    image = None if frames else check_image(config["image"], kind)
    output = config["output"]
    out_dir = Path(os.path.expanduser(str(output))) if output else run.path / VISUALIZE
    tensorboard_dir = (out_dir if output else run.path) / TENSORBOARD / VISUALIZE

    runtime.set_up_command(run.config)
    model = run.load_model()
    if frames:
        where = out_dir / kind / frames.name
        images = gradcam_frames(model, run, frames, input_shape, where, **options)
    else:
        options.pop("batch_size", None)
        images = VISUALIZERS[kind](model, run, image, input_shape, out_dir / kind, **options)
    write_tensorboard_images(tensorboard_dir, images)
    log.info(f"Model:        {run.model_path}")
    log.info(f"TensorBoard:  tensorboard --logdir {tensorboard_dir.parent}  (tab Images)")


def generate(kind, config):
    """DeepDream or style transfer: checks their options, runs them, writes TensorBoard.

    Returns:
        `(out_dir, losses)`: where the PNGs and tensorboard/ are, and the loss at each step.
    """
    options = check_backbone_options(kind, config)
    out_dir = backbones.output_folder(config["output"], kind)
    runtime.set_up_command()
    try:
        if kind == "deepdream":
            images, losses = deepdream(options.pop("image"), out_dir, **options)
            losses = [loss for octave in losses for loss in octave]
        else:
            images, losses = style_transfer(options.pop("image"), out_dir, **options)
    except ConfigError:  # e.g. offline ImageNet weights: leave no empty folder behind
        if not config["output"] and out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise
    tensorboard_dir = out_dir / TENSORBOARD
    write_tensorboard_images(tensorboard_dir, images)
    backbones.write_scalars(tensorboard_dir, f"{kind}/loss", losses)
    log.info(f"Results:      {out_dir}")
    log.info(f"TensorBoard:  tensorboard --logdir {tensorboard_dir}  (tabs Images, Scalars)")
    return out_dir, losses


if __name__ == "__main__":
    main()
