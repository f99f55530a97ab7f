"""The real `visualize` command on a real trained run: PNGs, TensorBoard images, errors.

Also Grad-CAM over a folder of video frames, the offline ImageNet error of style transfer, and
batched Grad-CAM checked against one image at a time on the same trained run (conftest's
`trained_image_run`).
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import (
    command_runtime,
    grid_size,
    help_output,
    make_class_folder,
    photo,
    png,
    run_train,
    tensorboard_images,
    write_image,
)

VISUALIZE = str(Path(sys.executable).with_name("visualize"))


def run_visualize(*overrides, cwd, timeout=300, env=None):
    """`visualize <overrides>` in `cwd`, with `env` added to the environment; returns the
    CompletedProcess."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run(
        [VISUALIZE, *overrides], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.fixture
def run_copy(trained_image_run, tmp_path):
    """A writable copy of the shared trained run, and its photos."""
    run_dir, photos = trained_image_run
    return Path(shutil.copytree(run_dir, tmp_path / "run")), photos


@pytest.fixture(scope="module")
def model_of(trained_image_run):
    """The trained run's model, loaded in this process (to compare with what visualize says)."""
    from kerasrun.rundir.run import open_run

    return open_run(trained_image_run[0]).load_model()


def test_help_lists_keys_without_importing_tensorflow(tmp_path):
    out, tensorflow = help_output("visualize", "kerasrun.visualize", cwd=tmp_path)
    assert not tensorflow
    for key in ("run:", "kind:", "image:", "layers:", "class_index:", "steps:", "output:"):
        assert key in out, key
    assert "kind=gradcam" in out


@pytest.mark.slow
def test_activations_one_grid_per_layer_sized_by_channels(run_copy, model_of, tmp_path):
    run_dir, photos = run_copy
    result = run_visualize(
        f"run={run_dir}", "kind=activations", f"image={photos / 'cats' / 'cat.3.jpg'}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # train's runtime set-up, the run's precision and seed (training.runtime.set_up_command).
    assert command_runtime(result.stdout) == ("CPU", "float32", "the run's", 42)
    folder = run_dir / "visualize" / "activations" / "cat.3"
    # The convnet's conv and pool layers (the book's first 8 layer outputs; this one has 4).
    layers = [x for x in model_of.layers if type(x).__name__ in ("Conv2D", "MaxPooling2D")]
    assert sorted(p.stem for p in folder.iterdir()) == sorted(x.name for x in layers)
    for layer in layers:
        _, h, w, c = layer.output.shape
        grid = png(folder / f"{layer.name}.png")
        assert grid.shape == (*grid_size(c, h, w), 3), layer.name
        assert grid.std() > 0  # not a blank image
        assert f"{layer.name}: {c} channels of {h}x{w}" in result.stdout
    images = tensorboard_images(run_dir / "tensorboard" / "visualize")
    first = images[f"activations/cat.3/{layers[0].name}"]
    assert first.size == Image.open(folder / f"{layers[0].name}.png").size


@pytest.mark.slow
def test_filters_gradient_ascent_raises_the_activation(run_copy, tmp_path):
    run_dir, _ = run_copy
    result = run_visualize(
        f"run={run_dir}", "kind=filters", "layers=[conv2d_1]", "max_filters=9", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    grid = png(run_dir / "visualize" / "filters" / "conv2d_1.png")
    # 9 patterns of the 32x32 input in a 3x3 grid, 5 px apart (the book's margin).
    assert grid.shape == (3 * 32 + 2 * 5, 3 * 32 + 2 * 5, 3)
    before, after = map(
        float, re.search(r"mean activation (\S+) → (\S+) →", result.stdout).groups()
    )
    assert after > before, result.stdout
    images = tensorboard_images(run_dir / "tensorboard" / "visualize")
    assert images["filters/conv2d_1"].size == (106, 106)


def predicted(model, image_path):
    """`(class name, probability)` as `model.predict` says for one image file."""
    from kerasrun.rundir.run import load_images

    p = float(model.predict(load_images([image_path], (32, 32, 3)), verbose=0)[0, 0])
    return ("dogs", p) if p > 0.5 else ("cats", 1 - p)


@pytest.mark.slow
def test_gradcam_overlay_at_image_size_and_class_of_predict(run_copy, model_of, tmp_path):
    run_dir, photos = run_copy
    cat, dog = photos / "cats" / "cat.5.jpg", photos / "dogs" / "dog.105.png"
    heatmaps = {}
    for image in (cat, dog):
        result = run_visualize(f"run={run_dir}", "kind=gradcam", f"image={image}", cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        name, probability = re.search(r"Predicted: (\w+) \(([\d.]+)\)", result.stdout).groups()
        expected_name, expected_probability = predicted(model_of, image)
        assert name == expected_name
        assert float(probability) == pytest.approx(expected_probability, abs=1e-3)
        assert "on conv2d_1 (16x16)" in result.stdout  # the last Conv2D by default
        folder = run_dir / "visualize" / "gradcam"
        overlay = png(folder / f"{image.stem}.png")
        with Image.open(image) as original:
            assert overlay.shape == (original.height, original.width, 3)
        heatmaps[image.stem] = png(folder / f"{image.stem}_heatmap.png")
        assert heatmaps[image.stem].shape == (32, 32, 3)  # the model's input size
    assert not np.array_equal(heatmaps["cat.5"], heatmaps["dog.105"])
    assert any(h.reshape(-1, 3).std(axis=0).max() > 0 for h in heatmaps.values())
    images = tensorboard_images(run_dir / "tensorboard" / "visualize")
    assert images["gradcam/cat.5"].size == Image.open(cat).size
    assert images["gradcam/dog.105_heatmap"].size == (32, 32)


@pytest.mark.slow
def test_gradcam_of_another_class_and_layer_into_output(run_copy, tmp_path):
    run_dir, photos = run_copy
    out = tmp_path / "viz"
    result = run_visualize(
        f"run={run_dir}",
        "kind=gradcam",
        f"image={photos / 'cats' / 'cat.105.png'}",
        "class_index=1",
        "layer=conv2d",
        f"output={out}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Grad-CAM of dogs on conv2d (32x32)" in result.stdout
    assert png(out / "gradcam" / "cat.105.png").shape == (50, 30, 3)
    assert "gradcam/cat.105" in tensorboard_images(out / "tensorboard" / "visualize")
    assert not (run_dir / "visualize").exists()  # output= keeps the run untouched


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["kind=saliency"], "kind must be one of activations, filters, gradcam"),
        (["kind=gradcam"], "kind=gradcam needs an image"),
        (["kind=activations"], "kind=activations needs an image"),
        (["kind=gradcam", "image=missing.jpg"], "image=missing.jpg, which does not exist"),
        (["kind=gradcam", "image=notes.jpg"], "image must be an image file Pillow can read"),
        (
            ["kind=gradcam", "image=cat.png", "class_index=-1"],
            "class_index must be a non-negative integer or null",
        ),
        (["kind=filters", "steps=0"], "steps must be a positive integer"),
        (["kind=gradcam", "image=cat.png", "class_index=2"], "below the run's 2 classes"),
        (["kind=filters", "layer=conv2d"], "layer is for kind=gradcam"),
        (["kind=filters", "run=nowhere"], "run='nowhere', which does not exist"),
        (["kind=filters", "run=null"], "run must be a run directory written by train"),
    ],
)
def test_a_mistake_is_one_error_line_before_tensorflow(run_copy, tmp_path, overrides, message):
    run_dir, photos = run_copy
    (tmp_path / "notes.jpg").write_text("not an image")
    shutil.copy(photos / "cats" / "cat.100.png", tmp_path / "cat.png")
    run = [] if any(o.startswith("run=") for o in overrides) else [f"run={run_dir}"]
    result = run_visualize(*run, *overrides, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), lines
    assert message in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["kind=activations", "image=cat.png", "layers=[dense,conv2d]"],
            "layers must name conv/pool layers of the model: conv2d, max_pooling2d, conv2d_1, "
            "max_pooling2d_1. Received: layers=['dense', 'conv2d']",
        ),
        (
            ["kind=gradcam", "image=cat.png", "layer=max_pooling2d"],
            "layer must name conv layers of the model: conv2d, conv2d_1. "
            "Received: layer=max_pooling2d",
        ),
    ],
)
def test_unknown_layers_list_the_models_layers(run_copy, tmp_path, overrides, message):
    run_dir, photos = run_copy
    shutil.copy(photos / "cats" / "cat.100.png", tmp_path / "cat.png")
    result = run_visualize(f"run={run_dir}", *overrides, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines


@pytest.mark.slow
def test_gradcam_finds_the_last_conv_inside_a_pretrained_backbone(tmp_path):
    photos = make_class_folder(tmp_path / "photos", per_class=6, size=(64, 64))
    trained = run_train(
        "data=image_folder",
        f"data.root={photos}",
        "data.image_size=[64,64]",
        "data.batch_size=4",
        "data.validation_split=0.25",
        "model=pretrained",
        "model.backbone=MobileNetV2",
        "model.weights=null",
        "model.units=8",
        "trainer.epochs=1",
        cwd=tmp_path,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    (run_dir,) = (tmp_path / "outputs" / "runs").iterdir()
    image = photos / "dogs" / "dog.0.jpg"
    result = run_visualize(f"run={run_dir}", "kind=gradcam", f"image={image}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    # MobileNetV2's last Conv2D, inside the nested conv_base; 64 px / 32 = a 2x2 map.
    assert "on Conv_1 (2x2)" in result.stdout
    assert png(run_dir / "visualize" / "gradcam" / "dog.0.png").shape == (64, 64, 3)


def test_imagenet_weights_offline_is_one_line_and_no_folder(tmp_path):
    photo(tmp_path / "p.jpg", (40, 40))
    offline = {k: "http://127.0.0.1:9" for k in ("HTTP_PROXY", "HTTPS_PROXY", "https_proxy")}
    result = run_visualize(  # VGG19: the quickest backbone to build before the download
        "kind=style_transfer",
        "image=p.jpg",
        "style_image=p.jpg",
        "height=32",
        cwd=tmp_path,
        env={"KERAS_HOME": str(tmp_path / "keras"), **offline},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2 and "Traceback" not in output, output[-3000:]
    (error,) = [line for line in output.splitlines() if line.startswith("Error:")]
    assert "The ImageNet weights of VGG19 could not be downloaded" in error
    assert "Put vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 under" in error
    assert "or set weights=/path/to/file" in error
    assert command_runtime(output) == ("CPU", "float32", "no run", 0)  # train's set-up first
    assert not any((tmp_path / "outputs" / "visualize").iterdir())


def test_batched_grad_cam_equals_one_image_at_a_time(trained_image_run):
    from kerasrun.rundir.run import load_images, open_run
    from kerasrun.vision.gradcam import grad_cam, grad_cams
    from kerasrun.vision.layers import choose_layers, feature_model

    run_dir, photos = trained_image_run
    model = open_run(run_dir).load_model()
    extract = feature_model(model, choose_layers(model, None, kind="gradcam"))
    files = [photos / "cats" / "cat.1.jpg", photos / "dogs" / "dog.2.jpg"]
    images = load_images(files, (32, 32, 3))
    for class_index in (None, 0):
        heatmaps, probabilities = grad_cams(model, extract, images, class_index)
        for i in range(2):
            heatmap, p = grad_cam(model, extract, images[i : i + 1], class_index)
            np.testing.assert_allclose(heatmaps[i], heatmap, atol=1e-5)
            np.testing.assert_allclose(probabilities[i], p, atol=1e-6)


def test_gradcam_over_video_frames(trained_image_run, tmp_path):
    run_dir, _ = trained_image_run
    frames = tmp_path / "kitchen"
    # Natural order: 1, 2, 3, 10, 11 (not 1, 10, 11, 2, 3); a width per frame shows the order.
    for n in (10, 2, 11, 1, 3):
        write_image(frames / f"img{n}.{'png' if n % 2 else 'jpg'}", n % 2, (30, 40 + n), seed=n)
    (frames / "img5.jpg").write_text("not an image")
    out = tmp_path / "viz"
    result = run_visualize(
        f"run={run_dir}",
        "kind=gradcam",
        f"frames={frames}",
        "batch_size=2",
        f"output={out}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    written = out / "gradcam" / "kitchen" / "frames"
    assert sorted(p.name for p in written.iterdir()) == [f"frame_00000{i}.png" for i in range(1, 6)]
    for i, n in enumerate((1, 2, 3, 10, 11), start=1):
        assert png(written / f"frame_00000{i}.png").shape == (30, 40 + n, 3)
    assert "img5.jpg: skipped" in result.stdout and "1 file skipped" in result.stdout
    assert "Frames 4/5" in result.stdout and "Frames 5/5" in result.stdout  # batches of 2
    command = (out / "gradcam" / "kitchen" / "command.txt").read_text().strip()
    assert command.startswith(f"ffmpeg -framerate 25 -i {written}/frame_%06d.png")
    assert command.endswith(f"-pix_fmt yuv420p {out / 'gradcam' / 'kitchen' / 'heatmap.mp4'}")
    assert command in result.stdout
