"""Grad-CAM over a folder of video frames, written as numbered PNGs for ffmpeg.

visualize run=<run> kind=gradcam frames=kitchen_frames/     # or image=kitchen_frames/

The practical book's kitchen-video heatmaps: extract the frames (`ffmpeg -i video.mp4
frames/%06d.png`), explain each with the run's Grad-CAM (`kerasrun.vision.gradcam.grad_cams`,
`batch_size` frames per pass), and get `frames/frame_000001.png ...`, numbered without gaps in
the natural order of the input names (`frame2` before `frame10`), each the size of its input
frame, plus the ffmpeg command that makes them a video again (printed, and in `command.txt`).

A file that cannot be read is skipped and listed, as `predict` does; only a folder with no
readable frame at all is an error.
"""

import logging
import re
import shlex
import time
from pathlib import Path

from kerasrun.data.images import inspect_image
from kerasrun.errors import require
from kerasrun.pictures import overlay_heatmap, read_rgb, save_png
from kerasrun.rundir.run import IMAGE_FILES, load_images
from kerasrun.vision.gradcam import check_class_index, class_names, grad_cams, gradcam_model

log = logging.getLogger("kerasrun")

FRAME_NAME = "frame_%06d.png"
FRAMERATE = 25


def natural_key(path):
    """Sort key: `frame2.png` before `frame10.png` (digit runs compare as numbers)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def frame_files(folder):
    """The image files directly in `folder`, in natural order of their names.

    Raises:
        ConfigError: there is none.
    """
    files = sorted(
        (
            p
            for p in Path(folder).iterdir()
            if p.is_file() and p.suffix.lower() in IMAGE_FILES and not p.name.startswith(".")
        ),
        key=natural_key,
    )
    require(
        files,
        f"frames must be a folder of image files ({', '.join(IMAGE_FILES)}). Received: "
        f"frames={folder}, which holds none. Extract them first: ffmpeg -i video.mp4 "
        f"{folder}/%06d.png",
    )
    return files


def ffmpeg_command(frames_dir, size):
    """The ffmpeg line that makes the numbered frames `frames_dir` a video beside it.

    `yuv420p` (what players read) needs an even width and height: an odd one is padded.
    """
    width, height = size
    pad = ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"] if width % 2 or height % 2 else []
    frames_dir = Path(frames_dir)
    words = [
        "ffmpeg",
        "-framerate",
        str(FRAMERATE),
        "-i",
        str(frames_dir / FRAME_NAME),
        *pad,
        "-pix_fmt",
        "yuv420p",
        str(frames_dir.parent / "heatmap.mp4"),
    ]
    return " ".join(shlex.quote(w) for w in words)


def gradcam_frames(model, run, folder, input_shape, out_dir, *, layer, class_index, batch_size):
    """Writes the Grad-CAM overlay of every readable frame of `folder` into `out_dir/frames/`.

    Returns:
        `{tensorboard tag: uint8 image}`: the first frame's overlay.
    """
    import numpy as np

    files = frame_files(folder)
    readable, skipped = [], []
    for path in files:
        how, reason = inspect_image(path)
        (readable.append(path) if how else skipped.append((path, reason)))
    for path, reason in skipped:
        log.warning(f"{path.name}: skipped, {reason}")
    require(
        readable,
        f"frames must hold at least one readable image. Received: frames={folder}, "
        f"{len(files)} files, none readable ({skipped[0][0].name}: {skipped[0][1]}).",
    )
    conv, extract = gradcam_model(model, layer)
    names = class_names(model, run)
    check_class_index(class_index, len(names))

    frames_dir = out_dir / "frames"
    for old in frames_dir.glob("frame_*.png"):  # a shorter second pass must not leave frames
        old.unlink()
    start, counts, images, size = time.perf_counter(), np.zeros(len(names), "int64"), {}, None
    for first in range(0, len(readable), batch_size):
        batch = readable[first : first + batch_size]
        heatmaps, probabilities = grad_cams(
            model, extract, load_images(batch, input_shape), class_index
        )
        counts += np.bincount(probabilities.argmax(axis=1), minlength=len(names))[: len(names)]
        for i, (path, heatmap) in enumerate(zip(batch, heatmaps, strict=True)):
            original = read_rgb(path)
            overlay = overlay_heatmap(original, heatmap)
            save_png(overlay, frames_dir / (FRAME_NAME % (first + i + 1)))
            size = size or (original.shape[1], original.shape[0])
            if not images:
                images[f"gradcam/{Path(folder).name}/frame_000001"] = overlay
        done = first + len(batch)
        elapsed = time.perf_counter() - start
        log.info(
            f"Frames {done}/{len(readable)} · {elapsed:.1f} s · "
            f"{elapsed / done * (len(readable) - done):.0f} s left"
        )
    target = "predicted class" if class_index is None else f"class {names[class_index]}"
    predicted = ", ".join(f"{n} {c}" for n, c in zip(names, counts, strict=True) if c)
    log.info(
        f"Grad-CAM of the {target} on {conv.name}: {len(readable)} frames → {frames_dir}/ "
        f"(predicted: {predicted})"
        + (f"; {len(skipped)} file{'s' if len(skipped) > 1 else ''} skipped" if skipped else "")
    )
    command = ffmpeg_command(frames_dir, size)
    (out_dir / "command.txt").write_text(command + "\n", encoding="utf-8")
    log.info(f"Video:        {command}")
    return images
