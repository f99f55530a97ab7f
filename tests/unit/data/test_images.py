"""Bad image data, on real files written in tmp_path (Pillow, raw bytes).

Each case goes through `build_data("image_folder", ...)` and real tf.data. A decoded case
checks the pixels that come out of the pipeline; a skipped case checks `DataBundle.bad_files`
(what `train` counts and writes to `<run>/bad_files.txt`, see cli/test_bad_data.py) and, with
`data.on_bad_file=error`, the one-line error.
"""

import json
import logging
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

from helpers import (
    CATS_AND_DOGS,
    collect,
    corrupt_deflate_png,
    make_class_folder,
    noisy_jpeg_bytes,
    truncated_jpeg,
    write_image,
)
from kerasrun.data import build_data
from kerasrun.errors import ConfigError

RGB = (200, 100, 50)


def build(root, **kwargs):
    kwargs = {"image_size": [4, 4], "batch_size": 8, "seed": 0, **kwargs}
    return build_data("image_folder", root=str(root), **kwargs)


def save(path, image, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **kwargs)


def uniform(mode, value, size=(8, 8)):
    from PIL import Image

    return Image.new(mode, size, value)


def png_bytes(width, height, bit_depth, color_type, raw_rows):
    """A PNG file's bytes, chunk by chunk (Pillow cannot write 16-bit RGB)."""

    def chunk(kind, data):
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw_rows))
        + chunk(b"IEND", b"")
    )


def with_size(jpeg, width, height):
    """`jpeg` whose frame header (SOF0) claims `width`×`height`: a decompression bomb."""
    at = jpeg.index(b"\xff\xc0") + 5
    return jpeg[:at] + struct.pack(">HH", height, width) + jpeg[at + 4 :]


# --- writers: each writes one file at `path` ---------------------------------------------


def rgba_png(path):
    image = uniform("RGBA", (*RGB, 128))
    save(path, image)


def gray_jpeg(path):
    save(path, uniform("L", 124), quality=100)


def cmyk_jpeg(path):  # Pillow writes Adobe (inverted) CMYK, as Photoshop does
    save(path, uniform("CMYK", (20, 120, 200, 60)), quality=100)


def gray16_png(path):
    from PIL import Image

    save(path, Image.fromarray(np.full((8, 8), 0x8080, "uint16")))  # mode I;16


def rgb16_png(path):
    pixel = struct.pack(">HHH", 65535, 0x8080, 50 * 257)
    rows = b"".join(b"\x00" + pixel * 8 for _ in range(8))
    path.write_bytes(png_bytes(8, 8, 16, 2, rows))


def animated_gif(path):
    frames = [uniform("RGB", (255, 0, 0)), uniform("RGB", (0, 255, 0))]
    save(path, frames[0], save_all=True, append_images=frames[1:], duration=100, loop=0)


def palette_bmp(path):  # TensorFlow reads its palette indices as gray levels
    save(path, uniform("RGB", (204, 102, 51)).convert("P"))


def tiff_named_png(path):  # a format TensorFlow does not decode at all
    save(path, uniform("RGB", RGB), format="TIFF")


def rgb_jpeg(path):
    save(path, uniform("RGB", RGB), quality=100)


def truncated_png(path):
    rows = b"".join(b"\x00" + bytes(range(24)) for _ in range(8))
    data = png_bytes(8, 8, 8, 2, rows)
    path.write_bytes(data[:-20])


def huge_png(path):  # only the header is read: 10000×10000 is over Pillow's limit
    path.write_bytes(png_bytes(10_000, 10_000, 8, 2, b"\x00" * 30_001))


def bomb_jpeg(path):  # 20000×20000 declared in 1.5 KB: over twice the limit
    path.write_bytes(with_size(noisy_jpeg_bytes(16), 20_000, 20_000))


def dangling_link(path):
    path.symlink_to(path.parent / "gone.jpg")


def folder_with(tmp_path, name, write):
    """train/{cats,dogs}/ of plain images; test/cats/ holds <name> written by `write` and a
    plain zz.png, test/dogs/ one plain image: the test split keeps its (sorted) order, so the
    case is its first image."""
    root = tmp_path / "images"
    make_class_folder(root / "train", per_class=2, size=(8, 8))
    write_image(root / "test" / "cats" / "zz.png", 0, size=(8, 8))
    write_image(root / "test" / "dogs" / "dog.png", 1, size=(8, 8))
    path = root / "test" / "cats" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    write(path)
    return root, path


# --- files that are decoded, to the right pixels -----------------------------------------


@pytest.mark.parametrize(
    "name, write, expected, tolerance",
    [
        ("rgba.png", rgba_png, RGB, 0),  # alpha dropped, as Keras does
        ("gray.jpg", gray_jpeg, (124, 124, 124), 2),
        ("cmyk.jpg", cmyk_jpeg, (180, 103, 42), 3),  # (255-C)(255-K)/255 per channel
        ("gray16.png", gray16_png, (128, 128, 128), 1),  # scaled, not clipped to 255
        ("rgb16.png", rgb16_png, (255, 128, 50), 1),
        ("animated.gif", animated_gif, (255, 0, 0), 0),  # the first frame
        ("palette.bmp", palette_bmp, (204, 102, 51), 0),  # decoded by Pillow
        ("tiff.png", tiff_named_png, RGB, 0),  # decoded by Pillow
        ("chat_été_猫.jpg", rgb_jpeg, RGB, 3),
        (os.fsdecode(b"chat_\xe9t\xe9.jpg"), rgb_jpeg, RGB, 3),  # Latin-1 name, not UTF-8
        ("2023/summer/deep.png", lambda p: save(p, uniform("RGB", RGB)), RGB, 0),  # nested
    ],
)
def test_a_readable_file_is_decoded_to_its_rgb_pixels(tmp_path, name, write, expected, tolerance):
    root, _ = folder_with(tmp_path, name, write)
    bundle = build(root)
    assert bundle.bad_files == []
    assert bundle.sizes == {"train": 3, "validation": 1, "test": 3}
    x, y = collect(bundle.test_dataset)
    assert y.tolist() == [0, 0, 1]
    assert np.abs(x[0] - np.array(expected)).max() <= tolerance, x[0, 0, 0]


def test_a_10000x10000_jpeg_is_decoded_at_a_reduced_size(tmp_path):
    # 100 megapixels, over Pillow's 89.5-megapixel limit: a full decode takes 1.7 s and
    # 600 MB; libjpeg's 1/8-scale decode 0.05 s and 20 MB. Measured in a fresh process.
    root, path = folder_with(
        tmp_path, "huge.jpg", lambda p: save(p, uniform("L", 77, (10_000,) * 2))
    )
    code = f"""
import json, resource, time
import numpy as np
import tensorflow as tf
from kerasrun.data import build_data
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
bundle = build_data("image_folder", root={str(root)!r}, image_size=[4, 4], seed=0)
x = np.concatenate([x.numpy() for x, _ in bundle.test_dataset])
print(json.dumps({{
    "pixel": x[0, 0, 0].tolist(), "bad": bundle.bad_files, "seconds": time.perf_counter() - start,
    "mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024}}))
"""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["bad"] == [] and np.abs(np.array(out["pixel"]) - 77).max() <= 2, out
    assert out["mb"] < 250 and out["seconds"] < 20, out


# --- files that are skipped, with the reason; or refused with on_bad_file=error -----------


@pytest.mark.parametrize(
    "name, write, reason",
    [
        ("truncated.jpg", truncated_jpeg, "broken JPEG: image file is truncated"),
        ("empty.jpg", lambda p: p.write_bytes(b""), "empty file (0 bytes)"),
        ("notes.jpg", lambda p: p.write_text("a text file"), "not an image"),
        ("truncated.png", truncated_png, "broken PNG"),
        # valid chunks (Pillow's verify passes it), corrupt deflate: TensorFlow fails on it
        ("deflate.png", corrupt_deflate_png, "broken PNG"),
        ("huge.png", huge_png, "too large: 10000x10000 pixels"),
        ("bomb.jpg", bomb_jpeg, "too large: Image size (400000000 pixels) exceeds limit"),
        ("dangling.jpg", dangling_link, "cannot be read: No such file or directory"),
        ("chat_été_猫.jpg", lambda p: p.write_text("not a cat"), "not an image"),
    ],
)
def test_an_unreadable_file_is_skipped_with_its_reason(tmp_path, name, write, reason):
    root, path = folder_with(tmp_path, name, write)
    bundle = build(root)
    ((bad, why),) = bundle.bad_files
    assert bad == str(path) and why.startswith(reason), why
    assert "\n" not in why and "\t" not in why  # one line of bad_files.txt
    assert bundle.sizes["test"] == 2  # counts the images really used
    for _ in range(2):  # nothing is dropped (or fails) while reading, epoch after epoch
        assert collect(bundle.test_dataset)[1].tolist() == [0, 1]
        assert len(collect(bundle.train_dataset)[1]) == 3

    with pytest.raises(ConfigError) as error:
        build(root, on_bad_file="error")
    message = str(error.value)
    assert "\n" not in message and str(path) in message and reason in message
    assert "data.on_bad_file='error'" in message and "data.on_bad_file=skip" in message


def test_a_latin1_file_name_is_listed_readably(tmp_path):
    root, _ = folder_with(tmp_path, os.fsdecode(b"\xe9t\xe9.jpg"), lambda p: p.write_bytes(b""))
    ((bad, _),) = build(root).bad_files
    assert bad.endswith("cats/\\xe9t\\xe9.jpg")
    bad.encode("utf-8")  # bad_files.txt can be written


def test_a_skipped_file_changes_the_splits_as_deleting_it_would(tmp_path):
    root = make_class_folder(tmp_path / "images", per_class=10, size=(8, 8))
    (root / "cats" / "cat.5.jpg").write_bytes(b"")
    skipped = build(root, validation_split=0.3, test_split=0.2)
    (root / "cats" / "cat.5.jpg").unlink()
    deleted = build(root, validation_split=0.3, test_split=0.2)
    assert skipped.sizes == deleted.sizes == {"train": 9, "validation": 6, "test": 4}
    for split in ("train", "validation", "test"):
        a, b = (collect(getattr(d, f"{split}_dataset")) for d in (skipped, deleted))
        assert sorted(map(bytes, a[0])) == sorted(map(bytes, b[0])), split


# --- the folders -------------------------------------------------------------------------


def test_hidden_files_and_macos_metadata_are_not_images(tmp_path):
    root = make_class_folder(tmp_path / "images", per_class=3, size=(8, 8))
    (root / "cats" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(100))
    (root / "cats" / "._cat.0.jpg").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X")
    (root / "__MACOSX" / "cats").mkdir(parents=True)
    (root / "__MACOSX" / "cats" / "._cat.1.jpg").write_bytes(b"\x00\x05\x16\x07")
    (root / ".thumbnails").mkdir()
    write_image(root / ".thumbnails" / "cat.jpg", 0)
    bundle = build(root, validation_split=0.0)
    assert bundle.class_names == ["cats", "dogs"] and bundle.sizes["train"] == 6
    assert bundle.bad_files == []


def test_a_symlink_loop_is_not_followed(tmp_path, caplog):
    root = make_class_folder(tmp_path / "images", per_class=3, size=(8, 8))
    (root / "loop").symlink_to(root)  # not a class
    (root / "cats" / "loop").symlink_to(root)  # the data folder itself
    (root / "cats" / "self").symlink_to(root / "cats")
    (root / "dogs" / "sub").mkdir()
    (root / "dogs" / "sub" / "up").symlink_to(root / "dogs")
    make_class_folder(tmp_path / "more", classes=("cats",), per_class=2, size=(8, 8), start=50)
    (root / "cats" / "more").symlink_to(tmp_path / "more" / "cats")  # followed: more cats
    with caplog.at_level(logging.WARNING, logger="kerasrun"):
        bundle = build(root, validation_split=0.0)
    assert bundle.class_names == ["cats", "dogs"]
    assert bundle.sizes["train"] == 8 and bundle.bad_files == []
    assert collect(bundle.train_dataset)[1].sum() == 3  # the dogs; no cat twice
    assert caplog.text.count("Not following the symlinked folder") == 4, caplog.text


def test_an_empty_class_folder_is_one_line_error(tmp_path):
    root = make_class_folder(tmp_path / "images", classes=("cats",), per_class=3)
    (root / "dogs").mkdir()
    (root / "dogs" / ".DS_Store").write_bytes(b"\x00")
    with pytest.raises(ConfigError, match=r"'dogs/' holds none\. Add images or remove it"):
        build(root)
    (root / "dogs" / "dog.jpg").write_bytes(b"")  # a class of unreadable files only
    with pytest.raises(ConfigError) as error:
        build(root)
    message = str(error.value)
    assert "'dogs/' holds 1, all unreadable" in message and "empty file (0 bytes)" in message
    assert f"data.root='{root}'" in message and "\n" not in message


def test_a_single_class_is_one_line_error(tmp_path):
    root = make_class_folder(tmp_path / "images", classes=("cats",), per_class=3)
    write_image(root / "loose.jpg", 0)
    with pytest.raises(ConfigError) as error:
        build(root)
    message = str(error.value)
    assert "needs at least 2 class sub-folders" in message and "\n" not in message
    assert f"Received: data.root='{root}' with 1 (cats) and 1 images directly inside" in message


@pytest.mark.skipif(not CATS_AND_DOGS.is_dir(), reason="shared cats_and_dogs_filtered is absent")
def test_the_real_photos_all_pass_the_check(caplog):
    with caplog.at_level(logging.INFO, logger="kerasrun"):
        bundle = build_data("cats_dogs", root=str(CATS_AND_DOGS), seed=0)
    assert bundle.sizes == {"train": 2000, "validation": 500, "test": 500}
    assert bundle.bad_files == []
    assert "Checked 3000 image files in" in caplog.text
    assert "0 unreadable, 0 decoded with Pillow" in caplog.text
