"""Runs the real `train` console script in a subprocess and reads what it wrote."""

import json
import os
import subprocess
import sys
from pathlib import Path

TRAIN = str(Path(sys.executable).with_name("train"))


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


def only_run_dir(cwd):
    """The one run directory under `cwd/outputs/runs/`."""
    runs = sorted((Path(cwd) / "outputs" / "runs").iterdir())
    assert len(runs) == 1, runs
    return runs[0]


def read_metrics(run_dir):
    return json.loads((Path(run_dir) / "metrics.json").read_text())


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
