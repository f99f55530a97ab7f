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


def pixels(path):
    """The image file at `path` as training fed it: decoded, resized (bilinear) to 32x32 and
    rounded, float32 `(1, 32, 32, 3)` (written here with TensorFlow, not kerasrun's loader)."""
    import tensorflow as tf

    image = tf.io.decode_image(tf.io.read_file(str(path)), channels=3, expand_animations=False)
    return tf.clip_by_value(tf.round(tf.image.resize(image, (32, 32))), 0, 255)[None]


def uncolorize(image, stops):
    """A colormapped uint8 RGB image back to its 0..255 values: the nearest colour of the map."""
    from kerasrun.pictures import colorize

    table = colorize(np.arange(256) / 255, stops).astype("int64")
    distances = ((image[..., None, :].astype("int64") - table) ** 2).sum(axis=-1)
    return distances.argmin(axis=-1)


@pytest.mark.slow
def test_activations_one_grid_per_layer_sized_by_channels(run_copy, model_of, tmp_path):
    from kerasrun.pictures import GRID_MARGIN, VIRIDIS

    run_dir, photos = run_copy
    image = photos / "cats" / "cat.3.jpg"
    result = run_visualize(f"run={run_dir}", "kind=activations", f"image={image}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    # train's runtime set-up, the run's precision and seed (training.runtime.set_up_command).
    assert command_runtime(result.stdout) == ("CPU", "float32", "the run's", 42)
    folder = run_dir / "visualize" / "activations" / "cat.3"
    # The convnet's conv and pool layers (the book's first 8 layer outputs; this one has 4).
    layers = [x for x in model_of.layers if type(x).__name__ in ("Conv2D", "MaxPooling2D")]
    assert sorted(p.stem for p in folder.iterdir()) == sorted(x.name for x in layers)
    # What each layer outputs for the image, by calling the saved model's layers in turn.
    x, outputs = pixels(image), {}
    for layer in model_of.layers:
        x = outputs[layer.name] = layer(x, training=False)
    images = tensorboard_images(run_dir / "tensorboard" / "visualize")
    for layer in layers:
        feature = outputs[layer.name].numpy()[0]
        h, w, c = feature.shape
        grid = png(folder / f"{layer.name}.png")
        assert grid.shape == (*grid_size(c, h, w), 3), layer.name
        assert f"{layer.name}: {c} channels of {h}x{w}" in result.stdout
        # Channel i in cell (i // 16, i % 16), normalised as the book's plots (each channel
        # minus its mean, over its std, × 64 + 128), in viridis: back to the values.
        values = uncolorize(grid, VIRIDIS)
        cells = np.stack(
            [
                values[(i // 16) * (h + GRID_MARGIN) :][:h, (i % 16) * (w + GRID_MARGIN) :][:, :w]
                for i in range(c)
            ],
            axis=-1,
        )
        expected = (feature - feature.mean(axis=(0, 1))) / (feature.std(axis=(0, 1)) + 1e-5)
        expected = np.round(np.clip(expected * 64 + 128, 0, 255))
        assert np.abs(cells - expected).max() <= 1, layer.name  # float rounding at most
        assert expected.std() > 10  # not a blank layer
        written = np.asarray(images[f"activations/cat.3/{layer.name}"].convert("RGB"))
        np.testing.assert_array_equal(written, grid)  # TensorBoard shows the same picture


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


def reference_grad_cam(model, image, layer_name, target):
    """Grad-CAM (Selvaraju et al. 2017) of class `target` on layer `layer_name`, written here.

    The class score is the logit of the sigmoid head (its negative for class 0), the gradient
    of which a GradientTape gives on the layer's output; each channel is weighted by its mean
    gradient, summed, clipped at 0 and divided by its maximum.
    """
    import tensorflow as tf

    x = pixels(image)
    with tf.GradientTape() as tape:
        for layer in model.layers[:-1]:
            x = layer(x, training=False)
            if layer.name == layer_name:
                feature = x
                tape.watch(feature)
        head = model.layers[-1]
        logit = (tf.matmul(x, head.kernel) + head.bias)[0, 0]
        score = logit if target == 1 else -logit
    weights = tf.reduce_mean(tape.gradient(score, feature), axis=(1, 2), keepdims=True)
    heatmap = tf.nn.relu(tf.reduce_sum(feature * weights, axis=-1))[0].numpy()
    return heatmap / heatmap.max()


@pytest.mark.slow
def test_gradcam_overlay_at_image_size_and_class_of_predict(run_copy, model_of, tmp_path):
    from kerasrun.pictures import JET

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
        # The heatmap is Grad-CAM's, computed here (16x16, shown 2x2 a cell at 32x32, in jet).
        target = int(expected_name == "dogs")
        reference = np.kron(
            reference_grad_cam(model_of, image, "conv2d_1", target), np.ones((2, 2))
        )
        written = uncolorize(heatmaps[image.stem], JET)
        assert np.abs(written - np.round(reference * 255)).max() <= 1
        assert reference.std() > 0.1  # a heatmap with something in it
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
    # Nothing but the one error, and the Runtime: line every command starts with.
    lines = [
        line
        for line in (result.stdout + result.stderr).strip().splitlines()
        if not line.startswith("Runtime: ")
    ]
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
