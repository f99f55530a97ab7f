"""JPEGs decoded at reduced resolution, on real files written in tmp_path.

`files_dataset` decodes a JPEG at least twice the target size at 1/2, 1/4 or 1/8 scale
(libjpeg scales while decoding). These tests check the pixels against a full decode +
resize (`reduced_decode=False`, the pipeline as it was), that other formats are untouched,
and that `predict` (`rundir.run.load_images`) reads a JPEG as training did. Correctness
only: the speed is measured by scripts/benchmark.py.
"""

import numpy as np
import pytest

from helpers import corrupt_deflate_png
from kerasrun.data.images import jpeg_ratio
from kerasrun.data.pipeline import files_dataset


def photo_like(width, height):
    """A smooth RGB picture with edges (gradients, a disc, stripes), as a Pillow image.

    Not noise: noise has no content below the pixel scale, and no two downscales agree on it.
    """
    from PIL import Image, ImageDraw

    y, x = np.mgrid[0:height, 0:width].astype("float32")
    pixels = np.stack(
        [
            255 * x / width,
            255 * y / height,
            127 + 100 * np.sin(x / 23) * np.cos(y / 17),
        ],
        axis=-1,
    )
    image = Image.fromarray(pixels.clip(0, 255).astype("uint8"))
    draw = ImageDraw.Draw(image)
    draw.ellipse((width // 4, height // 4, width // 2, height // 2), fill=(240, 30, 60))
    for i in range(0, width, 40):
        draw.rectangle((i, height - 60, i + 15, height - 10), fill=(20, 20, 20))
    return image


def decoded(path, size, reduced):
    ds = files_dataset([str(path)], [0], image_size=size, reduced_decode=reduced)
    image, _ = next(iter(ds))
    return image.numpy().astype("float32")


@pytest.mark.parametrize(
    "shape, size, ratio",
    [
        ((375, 500), (150, 150), 2),  # a cats_and_dogs photo at the book's size
        ((375, 500), (64, 64), 4),
        ((375, 500), (32, 32), 8),
        ((375, 500), (200, 200), 1),  # under twice the target: full size
        ((299, 500), (150, 150), 1),  # 299 // 2 = 149 < 150: one side decides
        ((4000, 3000), (150, 150), 8),  # 1/8 is the smallest libjpeg decodes at
    ],
)
def test_the_ratio_keeps_both_sides_at_least_the_target(shape, size, ratio):
    assert jpeg_ratio(shape, size) == ratio


@pytest.mark.parametrize("size", [(150, 150), (64, 64)])
def test_a_reduced_decode_is_close_to_a_full_decode(tmp_path, size):
    """Mean absolute difference under 3 of 255 (measured: 1.3 at 150x150, 2.3 at 64x64).

    The difference is mostly the full decode's fault: a bilinear resize to under half the
    size samples pixels (aliasing), while libjpeg's scaled decode averages them. On
    cats_and_dogs photos the reduced decode is as close as or closer to an antialiased
    resize than the full decode is (e.g. 1.8 vs. 7.3 at 64x64 for cat.1.jpg).
    """
    path = tmp_path / "photo.jpg"
    photo_like(500, 375).save(path, quality=90)
    reduced, full = decoded(path, size, True), decoded(path, size, False)
    assert reduced.shape == full.shape == (*size, 3)
    assert np.abs(reduced - full).mean() < 3.0


def test_grayscale_and_cmyk_jpegs_still_come_out_as_rgb(tmp_path):
    """The modes TensorFlow decodes right (`TF_DECODES`) decode the same at a reduced scale."""
    picture = photo_like(400, 300)
    for mode in ("L", "CMYK"):
        path = tmp_path / f"{mode}.jpg"
        picture.convert(mode).save(path, quality=95)
        reduced, full = decoded(path, (100, 100), True), decoded(path, (100, 100), False)
        assert reduced.shape == (100, 100, 3)
        assert np.abs(reduced - full).mean() < 2.0, mode


def test_a_png_is_decoded_exactly_as_before(tmp_path):
    path = tmp_path / "photo.png"
    photo_like(400, 300).save(path)
    assert np.array_equal(decoded(path, (100, 100), True), decoded(path, (100, 100), False))


def test_a_jpeg_named_png_is_recognised_by_its_bytes(tmp_path):
    """The JPEG test looks at the content, as `decode_image` does, not at the file name."""
    picture = photo_like(500, 375)
    picture.save(tmp_path / "photo.jpg", quality=90)
    picture.save(tmp_path / "photo.png", format="JPEG", quality=90)
    named_png = decoded(tmp_path / "photo.png", (150, 150), True)
    assert np.array_equal(named_png, decoded(tmp_path / "photo.jpg", (150, 150), True))


def test_mixed_ratios_keep_the_order_of_the_files(tmp_path):
    """Files of different decode ratios (and a PNG) come out in the order of `paths`, each
    with its own label: each ratio has its own map, put back in order."""
    sizes = [(500, 375), (120, 90), (1300, 1000), (500, 375)]  # ratios 2, 1, 8, 2 at 64x64
    paths = []
    for i, (w, h) in enumerate(sizes):
        paths.append(tmp_path / f"{i}.jpg")
        photo_like(w, h).save(paths[-1], quality=90)
    paths.append(tmp_path / "4.png")
    photo_like(300, 200).save(paths[-1])
    ds = files_dataset([str(p) for p in paths], [10, 11, 12, 13, 14], image_size=(64, 64))
    full = files_dataset(
        [str(p) for p in paths], [10, 11, 12, 13, 14], image_size=(64, 64), reduced_decode=False
    )
    got, expected = list(ds.as_numpy_iterator()), list(full.as_numpy_iterator())
    assert [label for _, label in got] == [10, 11, 12, 13, 14]
    for (image, _), (reference, _) in zip(got, expected, strict=True):
        assert np.abs(image.astype("float32") - reference).mean() < 6.0


@pytest.mark.parametrize("size", [(150, 150), (64, 64)])
def test_predict_reads_a_large_jpeg_exactly_as_training_did(tmp_path, size):
    # predict and evaluate-on-files use rundir.load_images: it must take the same reduced
    # decode as the training pipeline, or a model sees other pixels than it learned from.
    from kerasrun.rundir.run import load_images

    path = tmp_path / "photo.jpg"
    photo_like(500, 375).save(path, quality=90)
    (for_predict,) = load_images([path], (*size, 3))
    np.testing.assert_array_equal(for_predict, decoded(path, size, True))


def test_a_file_that_fails_to_decode_stops_the_pass_instead_of_vanishing(tmp_path):
    # FileCheck leaves such a file out before training (test_images.py); one that still fails
    # here (changed on disk since) must not be dropped without a count or a name.
    import tensorflow as tf
    from PIL import Image

    paths = []
    for i in range(3):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.new("RGB", (8, 8), (i, i, i)).save(paths[-1])
    corrupt_deflate_png(paths[1])
    ds = files_dataset(paths, [0, 1, 2], image_size=(8, 8))
    with pytest.raises(tf.errors.InvalidArgumentError, match="PNG"):
        list(ds)
