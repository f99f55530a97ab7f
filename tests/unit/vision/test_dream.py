"""DeepDream and style transfer (the book's 8.2, 8.3) on real backbones with random weights, and
Grad-CAM over a folder of video frames from a real trained run.

DeepDream and style transfer run in this process through the real conf/visualize.yaml (Hydra's
compose API) and `kerasrun.visualize.generate`, with weights=null: Keras cannot download here, and
random weights still make the book's losses rise (DeepDream) or fall (style transfer). The
frames and the offline ImageNet error go through the real `visualize` command.
"""

import os
import re
import subprocess

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from PIL import Image

from conftest import write_image
from kerasrun.config.compose import conf_dir, plain
from kerasrun.errors import ConfigError
from test_visualize import VISUALIZE, png, tensorboard_images


def run_visualize(*overrides, cwd, env=None):
    """`visualize <overrides>` in `cwd`, with `env` added to the environment."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run(
        [VISUALIZE, *overrides], cwd=cwd, capture_output=True, text=True, timeout=300, env=env
    )


@pytest.fixture
def visualize_config(tmp_path, monkeypatch):
    """`config(*overrides)`: conf/visualize.yaml composed with Hydra, as plain dicts; the
    current directory is `tmp_path` (where outputs/visualize/ goes)."""
    monkeypatch.chdir(tmp_path)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        yield lambda *overrides: plain(compose("visualize", overrides=list(overrides)))
    GlobalHydra.instance().clear()


def photo(path, size, seed=0):
    """A real JPEG `size` (h, w): a smooth gradient with noise, so that it has some structure."""
    h, w = size
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    pixels = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (h + w)], axis=-1)
    pixels = np.clip(pixels + rng.normal(0, 20, (h, w, 3)), 0, 255).astype("uint8")
    Image.fromarray(pixels).save(path, quality=95)
    return path


def test_deepdream_raises_the_loss_and_writes_each_octave(visualize_config, tmp_path):
    from kerasrun.visualize import generate

    image = photo(tmp_path / "photo.jpg", (110, 120))
    config = visualize_config(
        "kind=deepdream", f"image={image}", "weights=null", "octaves=2", "iterations=4"
    )
    out_dir, losses = generate("deepdream", config)
    assert out_dir.resolve().parent == tmp_path.resolve() / "outputs" / "visualize"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_deepdream", out_dir.name)
    # InceptionV3 (the default), the book's mixed2..mixed5: 110x120 / 1.4 = 78x85, then 110x120.
    small, final = png(out_dir / "dream_at_scale_78x85.png"), png(out_dir / "final_dream.png")
    assert small.shape == (78, 85, 3) and final.shape == (110, 120, 3)
    assert np.array_equal(png(out_dir / "dream_at_scale_110x120.png"), final)
    # The dream changed the photo (random weights: a little; ImageNet's: a lot).
    changed = np.abs(final - np.asarray(Image.open(image), dtype="float32"))
    assert (changed > 0).mean() > 0.05 and changed.max() >= 3
    assert len(losses) == 8  # 2 octaves x 4 steps, none above max_loss
    assert losses[3] > losses[0] and losses[7] > losses[4]  # gradient ascent: each octave rises
    images = tensorboard_images(out_dir / "tensorboard")
    assert images["deepdream/final_dream"].size == (120, 110)
    assert "deepdream/dream_at_scale_78x85" in images


def test_each_call_gets_a_new_output_folder(tmp_path, monkeypatch):
    from kerasrun.vision.backbones import output_folder

    monkeypatch.chdir(tmp_path)
    first, second = output_folder(None, "deepdream"), output_folder(None, "deepdream")
    assert first != second and first.is_dir() and second.is_dir()  # even in the same second
    assert output_folder(str(tmp_path / "mine"), "deepdream") == tmp_path / "mine"


def test_style_transfer_lowers_the_loss_at_the_content_size(visualize_config, tmp_path):
    from kerasrun.visualize import generate

    content = photo(tmp_path / "content.jpg", (48, 64))
    style = photo(tmp_path / "style.jpg", (50, 50), seed=1)
    config = visualize_config(
        "kind=style_transfer",
        f"image={content}",
        f"style_image={style}",
        "weights=null",
        "height=32",
        "iterations=2",
        f"output={tmp_path / 'styled'}",
    )
    out_dir, losses = generate("style_transfer", config)
    assert out_dir == tmp_path / "styled"
    assert len(losses) == 3  # the start, then after each L-BFGS round
    assert losses[1] < losses[0] and losses[2] <= losses[1]
    result = png(out_dir / "result.png")
    assert result.shape == (32, 42, 3)  # height 32, the width in proportion: 64 * 32 / 48
    assert np.array_equal(png(out_dir / "result_at_iteration_1.png"), result)
    assert png(out_dir / "result_at_iteration_0.png").shape == (32, 42, 3)
    assert tensorboard_images(out_dir / "tensorboard")["style_transfer/result"].size == (42, 32)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["kind=deepdream"], "kind=deepdream needs an image"),
        (["kind=style_transfer", "image=p.jpg"], "kind=style_transfer needs a style_image"),
        (
            ["kind=deepdream", "image=p.jpg", "backbone=AlexNet"],
            "Unknown backbone. Available: VGG16",
        ),
        (["kind=deepdream", "image=p.jpg", "layers=[mixed3]"], "layers must map layer names"),
        (["kind=deepdream", "image=p.jpg", "octaves=4"], "shrink the 90x90 image to 32x32"),
        (["kind=deepdream", "image=p.jpg", "weights=no.h5"], "`weights` must be 'imagenet'"),
        (["kind=deepdream", "image=p.jpg", "frames=."], "frames is for kind=gradcam"),
    ],
)
def test_option_mistakes_are_config_errors(visualize_config, tmp_path, overrides, message):
    from kerasrun.vision.options import check_backbone_options

    photo(tmp_path / "p.jpg", (90, 90))
    config = visualize_config(*overrides)
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_backbone_options(config["kind"], config)


def test_a_backbone_without_the_layers_lists_its_layers():
    from kerasrun.vision.backbones import feature_extractor

    with pytest.raises(ConfigError) as error:
        feature_extractor("VGG16", None, ["mixed2", "block1_conv1"], "layers")
    assert "layers must name layers of VGG16: block1_conv1, block1_conv2," in str(error.value)
    assert "(mixed2 is not one)" in str(error.value)


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
