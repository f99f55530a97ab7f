"""`export-model`: a finished run's model in a serving format, checked by its own runtime.

export-model run=<run> format=keras          # <run>/export/keras/model.keras (re-saved)
export-model run=<run> format=saved_model    # <run>/export/saved_model/model/ (TF Serving)
export-model run=<run> format=tflite         # <run>/export/tflite/model.tflite
export-model run=<run> format=onnx           # <run>/export/onnx/model.onnx (".[onnx]" extra)

An export is only useful if it predicts what the Keras model predicts. So each one is loaded
back with the runtime that will serve it (Keras, `tf.saved_model.load`, the TFLite interpreter,
ONNX Runtime), both predict on `samples` real examples of the run's data, and the largest
absolute difference is printed and saved in `export.json`. Above `atol` the command fails
(exit code 1), the file is renamed `*.mismatch` and `export.json` says `"status": "mismatch"`.
When the run's data is not here, it is an error (exit code 2), unless `random_inputs=true`
asks for the check on random inputs.
The exporters and the check live in `kerasrun.inference.export`.
"""

import logging
import os
import sys
from pathlib import Path

from kerasrun.config.command import command
from kerasrun.config.compose import plain
from kerasrun.errors import check_int, check_number, require
from kerasrun.inference.export import check_format, check_inputs, export_dir, export_model
from kerasrun.rundir.run import open_run

log = logging.getLogger("kerasrun")


@command("export_model")
def main(cfg):
    """Exports the run's model, checks it; exit code 1 when the export predicts differently."""
    config = plain(cfg)
    fmt = check_format(config["format"])
    samples, atol = check_comparison_keys(config["samples"], config["atol"])
    run = open_run(config["run"], config["checkpoint"])
    output = config["output"]
    output_dir = Path(os.path.expanduser(str(output))) if output else export_dir(run.path, fmt)
    require(
        not output_dir.is_file(),
        f"output must be a folder. Received: output='{output}', which is a file. Choose a "
        "folder (it is created if needed), or output=null for <run>/export/<format>.",
    )
    data_overrides = config.get("data") or {}
    check_inputs(run, data_overrides, config["random_inputs"])
    record = export_model(
        run,
        fmt,
        output_dir,
        samples=samples,
        atol=atol,
        data_overrides=data_overrides,
        random_inputs=config["random_inputs"],
    )
    if record["status"] != "ok":
        log.error(
            f"The {fmt} export predicts differently from the Keras model: max abs diff "
            f"{record['max_abs_diff']:.3g} > atol={atol:g} on {record['samples']} examples. It "
            f"was renamed {Path(record['path']).name} and export.json says status: mismatch. "
            "Do not serve it; if that difference is acceptable, export again with a larger atol."
        )
        sys.exit(1)


def check_comparison_keys(samples, atol):
    """`(samples, atol)` as int and float, or a `ConfigError` naming the bad key."""
    check_int("samples", samples, example=8, why="examples to compare")
    check_number("atol", atol, minimum=0, example=1e-4, why="the largest allowed difference")
    return samples, float(atol)
