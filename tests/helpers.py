"""What the tests share: the real commands in subprocesses, readers of what a run wrote, and
writers of tiny real data (image files, texts, CSV series, archives) in tmp_path.

Importable from every test file (`pythonpath = ["tests"]` in pyproject.toml); a test file never
imports another test file or conftest.py. Fixtures live in conftest.py.
"""

import csv
import functools
import http.server
import io
import json
import math
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# The real photos and datasets beside the repo; KERASRUN_SHARED_DATA points elsewhere (a git
# worktree, a CI machine with the data in another place) instead of skipping those tests.
SHARED_DATA = Path(os.environ.get("KERASRUN_SHARED_DATA") or REPO.parent / "shared" / "data")
CATS_AND_DOGS = SHARED_DATA / "cats_and_dogs_filtered"

TRAIN = str(Path(sys.executable).with_name("train"))


# --- the real `train` in a subprocess --------------------------------------------------------


def tiny_vgg16_finetune(root):
    """The book's 5.3.2 recipe, made tiny: random weights, 32x32 images of the folder `root`."""
    return [
        "model=vgg16_finetune",
        "model.weights=null",
        "data=cats_dogs",
        f"data.root={root}",
        "data.image_size=[32,32]",
        "data.batch_size=8",
    ]


def run_train(*overrides, cwd, timeout=600, env=None):
    """`train <overrides>` in `cwd` (its outputs/ go there); returns the CompletedProcess."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run(
        [TRAIN, *overrides], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env
    )


def one_error_line(result):
    """The single `Error:` line of a failed `train` run (exit code 2, no traceback, stderr)."""
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, output[-3000:]
    assert errors[0] in result.stderr.splitlines(), "the Error: line is not on stderr"
    return errors[0]


def help_output(script, module, cwd):
    """`<script> --help` in a fresh interpreter: `(stdout, whether TensorFlow got imported)`.

    `--help` must stay fast: it may not import TensorFlow (checked in `sys.modules`).
    """
    code = (
        f"import sys; sys.argv = [{script!r}, '--help']\n"
        f"from {module} import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('tensorflow imported:', 'tensorflow' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, "tensorflow imported: True" in result.stdout


def command_runtime(output):
    """What the one `Runtime:` line of `evaluate`, `predict`, `visualize` or `export-model`
    says (`runtime.set_up_command`): `(devices, precision, where it came from, seed)`, e.g.
    `("CPU", "mixed_float16", "the run's", 42)`."""
    lines = [line for line in output.splitlines() if line.startswith("Runtime: ")]
    assert len(lines) == 1, output[-3000:]
    devices, precision, seed = lines[0].removeprefix("Runtime: ").split(" · ")
    precision, source = precision.removesuffix(")").split(" (")
    return devices, precision, source, int(seed.removeprefix("seed "))


def subprocess_env(**extra):
    """The environment of a `python -c` subprocess that imports this checkout's kerasrun."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **extra}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    return env


# --- reading what a run wrote ----------------------------------------------------------------


def only_run_dir(cwd):
    """The one run directory under `cwd/outputs/runs/`."""
    runs = sorted((Path(cwd) / "outputs" / "runs").iterdir())
    assert len(runs) == 1, runs
    return runs[0]


def read_metrics(run_dir):
    return json.loads((Path(run_dir) / "metrics.json").read_text())


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def scalars(event_dir):
    """`{tag: [(step, value), ...]}` from the event files in `event_dir` (TensorBoard's reader)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    acc = EventAccumulator(str(event_dir), size_guidance={"tensors": 0, "scalars": 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags()["tensors"]:
        if acc.SummaryMetadata(tag).plugin_data.plugin_name != "scalars":
            continue  # e.g. the HParams session summary
        out[tag] = [
            (e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in acc.Tensors(tag)
        ]
    for tag in acc.Tags()["scalars"]:
        out[tag] = [(e.step, e.value) for e in acc.Scalars(tag)]
    return out


def hparams(event_dir):
    """The hyperparameters of the HParams session summary in `event_dir`."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    acc = EventAccumulator(str(event_dir))
    acc.Reload()
    for content in acc.PluginTagToContent("hparams").values():
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        if data.HasField("session_start_info"):
            return {
                k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind"))
                for k, v in data.session_start_info.hparams.items()
            }
    return {}


def tensorboard_images(event_dir):
    """`{tag: PIL image}` of the `tf.summary.image`s in `event_dir` (TensorBoard's reader)."""
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    acc = EventAccumulator(str(event_dir), size_guidance={"tensors": 0})
    acc.Reload()
    images = {}
    for tag in acc.Tags()["tensors"]:
        if acc.SummaryMetadata(tag).plugin_data.plugin_name != "images":
            continue  # e.g. a loss written beside the images
        # An image summary is [width, height, png bytes...] as strings.
        encoded = tensor_util.make_ndarray(acc.Tensors(tag)[-1].tensor_proto)
        images[tag] = Image.open(io.BytesIO(encoded[2]))
        assert images[tag].size == (int(encoded[0]), int(encoded[1]))
    return images


def png(path):
    """The PNG at `path` as a uint8 array, checked to be a non-empty file."""
    from PIL import Image

    assert path.is_file() and path.stat().st_size > 0, path
    return np.asarray(Image.open(path))


def grid_size(channels, height, width, per_row=16, margin=1):
    """The `(height, width)` of an activation grid: 16 channels a row, 1 px between them."""
    cols, rows = min(per_row, channels), math.ceil(channels / per_row)
    return rows * height + (rows - 1) * margin, cols * width + (cols - 1) * margin


def collect(ds):
    """All `(images, labels)` of a batched dataset as two numpy arrays."""
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds], strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def assert_one_line(excinfo, *parts):
    """Asserts a one-line, Keras-style message holding every one of `parts`."""
    message = str(excinfo.value)
    assert "\n" not in message and "Received: " in message, message
    for part in parts:
        assert part in message, message
    return message


def embedding_of(model):
    """A model's word `Embedding` layer."""
    import keras

    return next(layer for layer in model.layers if isinstance(layer, keras.layers.Embedding))


# --- images ----------------------------------------------------------------------------------


def write_image(path, label, size=(24, 20), seed=0):
    """Writes one real image file whose colour depends on `label` (a separable problem).

    Label 0 ("cats") is reddish, label 1 ("dogs") bluish, with noise so no two files are equal.
    The format follows the suffix: .jpg/.jpeg → JPEG, .png → PNG.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    h, w = size
    base = np.array([200, 40, 40]) if label == 0 else np.array([40, 40, 200])
    pixels = np.clip(base + rng.normal(0, 25, size=(h, w, 3)), 0, 255).astype("uint8")
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def make_class_folder(
    root, classes=("cats", "dogs"), per_class=12, size=(24, 20), suffix=".jpg", start=0
):
    """`root/<class>/<class>.<i><suffix>` for each class; returns `root`."""
    for label, name in enumerate(classes):
        for i in range(start, start + per_class):
            write_image(
                Path(root) / name / f"{name[:-1]}.{i}{suffix}",
                label,
                size,
                seed=hash((name, i)) % 2**32,
            )
    return Path(root)


def photo(path, size, seed=0):
    """A real JPEG `size` (h, w): a smooth gradient with noise, so that it has some structure."""
    from PIL import Image

    h, w = size
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    pixels = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (h + w)], axis=-1)
    pixels = np.clip(pixels + rng.normal(0, 20, (h, w, 3)), 0, 255).astype("uint8")
    Image.fromarray(pixels).save(path, quality=95)
    return path


def noisy_jpeg_bytes(size=64):
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    from PIL import Image

    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype="uint8")).save(buffer, "JPEG")
    return buffer.getvalue()


def truncated_jpeg(path):
    jpeg = noisy_jpeg_bytes()
    path.write_bytes(jpeg[: len(jpeg) // 2])


def corrupt_deflate_png(path, size=(16, 16)):
    """A PNG whose chunks are all valid (Pillow's `verify` passes it) but whose deflate stream
    is corrupt, so decoding it fails: a real noisy PNG whose first deflate block header is
    rewritten to the reserved block type 3, with the IDAT chunk's CRC recomputed to match."""
    import struct
    import zlib

    from PIL import Image

    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype="uint8")).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    start = 8  # after the signature: chunks of length, type, data, CRC
    while data[start + 4 : start + 8] != b"IDAT":
        start += 12 + struct.unpack(">I", data[start : start + 4])[0]
    length = struct.unpack(">I", data[start : start + 4])[0]
    data[start + 10] = 0xFF  # after the 2-byte zlib header: BFINAL=1, BTYPE=11 (reserved)
    end = start + 8 + length
    data[end : end + 4] = struct.pack(">I", zlib.crc32(data[start + 4 : end]))
    Path(path).write_bytes(bytes(data))
    return path


def raw_images(shape, n=2, seed=0):
    """Float32 images in [0, 255], what every model takes."""
    return np.random.default_rng(seed).uniform(0, 255, size=(n, *shape)).astype("float32")


# --- texts -----------------------------------------------------------------------------------

SHORT_TEXT = (
    "The Cat sat on the mat. The dog sat on the log.\n"
    "A bird sang in the tree, and the cat looked up at the bird.\n"
) * 3


def write_text_file(tmp_path, text=SHORT_TEXT, name="text.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


FILLER = ["the", "movie", "film", "plot", "actor", "scene", "story", "music"]
# The second word of every review says its class: a separable problem.
CLASS_WORD = {0: "awful", 1: "great"}
MORE = {0: ["boring", "dull"], 1: ["wonderful", "superb"]}
PER_CLASS = {"train": 40, "test": 20}


def write_aclimdb(parent, seed=0):
    """`parent/aclImdb/{train,test}/{neg,pos}/<i>_<rating>.txt`, as Stanford's archive.

    Review k starts with its own word `uniq<k>` (so a word of a validation or test review is
    never in the training vocabulary), then its class word. One positive training review has
    `<br />` tags, one negative one a byte that is not UTF-8; train/unsup/ must be ignored.
    """
    rng = np.random.default_rng(seed)
    k = 0
    for split, n in PER_CLASS.items():
        for label, name in enumerate(("neg", "pos")):
            folder = parent / "aclImdb" / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                words = [f"uniq{k}", CLASS_WORD[label], *rng.choice(FILLER + MORE[label], 12)]
                data = " ".join(words).encode()
                if (split, label, i) == ("train", 1, 0):
                    data += b"<br /><br />the end"
                if (split, label, i) == ("train", 0, 1):
                    data += b" caf\xe9"  # Latin-1, not UTF-8
                (folder / f"{i}_{8 if label else 2}.txt").write_bytes(data)
                k += 1
    unsup = parent / "aclImdb" / "train" / "unsup"
    unsup.mkdir()
    (unsup / "0_0.txt").write_text("unlabelled words " * 5)
    (parent / "aclImdb" / "README").write_text("Large Movie Review Dataset v1.0")
    return parent / "aclImdb"


GLOVE_DIM = 4
GLOVE = {  # words of the reviews and one that is not ("banana"); "the", "film"... are missing
    "great": [1.0, 2.0, 3.0, 4.0],
    "awful": [-1.0, -2.0, -3.0, -4.0],
    "movie": [0.5, 0.25, -0.5, 0.125],
    "boring": [0.0, 1.5, 0.0, -1.5],
    "banana": [9.0, 9.0, 9.0, 9.0],
}


def write_glove(path, vectors=GLOVE):
    path.write_text("".join(f"{w} {' '.join(map(str, v))}\n" for w, v in vectors.items()))
    return path


# --- CSV series ------------------------------------------------------------------------------

JENA_COLUMNS = [
    "Date Time",
    "p (mbar)",
    "T (degC)",
    "Tpot (K)",
    "Tdew (degC)",
    "rh (%)",
    "VPmax (mbar)",
    "VPact (mbar)",
    "VPdef (mbar)",
    "sh (g/kg)",
    "H2OC (mmol/mol)",
    "rho (g/m**3)",
    "wv (m/s)",
    "max. wv (m/s)",
    "wd (deg)",
]


def write_csv(path, header, columns, dates=True):
    """`columns`: numeric arrays of one length; a "Date Time" text column first if `dates`."""
    n = len(columns[0])
    with open(path, "w") as f:
        f.write(",".join(f'"{h}"' for h in header) + "\n")
        for i in range(n):
            cells = [f"01.01.2009 {i:06d}"] if dates else []
            cells += [repr(float(c[i])) for c in columns]
            f.write(",".join(cells) + "\n")
    return path


# Small windows for a small file: 48 rows a "day", predict a quarter day ahead.
JENA_SMALL = [
    "data.lookback=96",
    "data.step=2",
    "data.delay=12",
    "data.train_rows=1500",
    "data.validation_rows=750",
    "data.batch_size=32",
]


def write_jena_csv(path, rows=3000, seed=0):
    """Jena's 15 columns; the temperature follows a daily cycle a model can learn to project."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    temperature = 10 * np.sin(2 * np.pi * t / 48) + rng.normal(0, 0.5, rows)
    other = rng.normal(0, 1, (rows, len(JENA_COLUMNS) - 2)).cumsum(axis=0) * 0.1
    return write_csv(path, JENA_COLUMNS, [other[:, 0], temperature, *other[:, 1:].T])


def series_text(rows=40, header=("Date Time", "T", "p"), sep=","):
    """A CSV series: a "Date Time" text column `d<i>` if `header` starts with it, then
    numeric columns `i`, `-i`, `i`, ... (row `i`)."""
    dated = header[0] == "Date Time"
    lines = [sep.join(f'"{h}"' for h in header)]
    for i in range(rows):
        cells = [f"d{i}"] if dated else []
        cells += [repr(float(i * (-1) ** k)) for k in range(len(header) - dated)]
        lines.append(sep.join(cells))
    return "\n".join(lines) + "\n"


def zipped(text):
    """The bytes of a zip archive holding `text` as series.csv."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("series.csv", text)
    return buffer.getvalue()


# --- a web server on 127.0.0.1 ---------------------------------------------------------------


class Server:
    """http.server in a thread serving one folder on 127.0.0.1; counts the requests."""

    def __init__(self, folder):
        handler = functools.partial(_QuietHandler, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.requests = 0
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        self.server.requests += 1
        super().do_GET()

    def log_message(self, *args):
        pass
