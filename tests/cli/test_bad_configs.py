"""Bad configs through the real `train`: one `Error:` line, exit code 2, nothing trained.

Two kinds of mistakes. Those Hydra finds while composing the config (a key or option typo,
`+`/`~` misuse, unparseable syntax) are reported by `kerasrun.hydra_errors` on stderr before
anything runs: no run directory is made. Those `train` finds itself (values out of range, a
missing folder, a batch larger than the data) are `ConfigError`s logged by its console, with
the run directory holding only the failure record.
"""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers import one_error_line, run_train, subprocess_env

HYDRA = "hydra"  # refused while Hydra composes the config
TRAIN = "train"  # refused by train's own checks, before fitting

# (overrides, where it is refused, fragments of the error line: the key, the allowed values)
CASES = {
    "negative learning rate": (
        ["optimizer.learning_rate=-0.001"],
        TRAIN,
        ["optimizer.learning_rate must be a positive number", "learning_rate=-0.001"],
    ),
    "negative epochs": (["trainer.epochs=-1"], TRAIN, ["trainer.epochs", "non-negative integer"]),
    "epochs of the wrong type": (
        ["trainer.epochs=abc"],
        TRAIN,
        ["trainer.epochs", "non-negative integer", "trainer.epochs='abc'"],
    ),
    "dropout of 1": (
        ["model=small_convnet", "model.dropout=1.0"],
        TRAIN,
        ["model.dropout", "[0, 1)", "model.dropout=1.0"],
    ),
    "image size too small": (
        ["model=small_convnet", "data.image_size=[4,4]"],
        TRAIN,
        ["data.image_size", "at least [46, 46]", "data.image_size=[4, 4]"],
    ),
    "batch larger than the training set": (
        ["data.batch_size=5000"],
        TRAIN,
        ["data.batch_size", "1257 with data=digits", "data.batch_size=5000"],
    ),
    "global batch larger than the training set": (
        ["trainer.strategy=mirrored", "trainer.cpu_replicas=2", "data.batch_size=700"],
        TRAIN,
        ["data.batch_size × replicas", "1257 with data=digits", "700 × 2 replicas = 1400"],
    ),
    "cpu_replicas of 0": (
        ["trainer.cpu_replicas=0"],
        TRAIN,
        ["trainer.cpu_replicas must be a positive integer", "trainer.cpu_replicas=0"],
    ),
    "scale_learning_rate typo": (
        ["trainer.scale_learning_rate=linaer"],
        TRAIN,
        ["trainer.scale_learning_rate must be false or linear", "'linaer'"],
    ),
    "validation split out of range": (
        ["data.validation_split=1.5"],
        TRAIN,
        ["data.validation_split", "[0, 1)", "data.validation_split=1.5"],
    ),
    "missing required folder": (["data=image_folder"], TRAIN, ["data.root", "data.root=None"]),
    "optimizer outside the allowlist": (
        ["optimizer._target_=os.system"],
        TRAIN,
        ["optimizer._target_", "keras.optimizers.*", "'os.system'"],
    ),
    "key typo": (
        ["trainer.epoch=3"],
        HYDRA,
        ["Unknown key trainer.epoch", "Did you mean trainer.epochs?", "trainer.epoch=3"],
    ),
    "key typo with a close match": (
        ["optimizer.learnig_rate=0.01"],
        HYDRA,
        ["Keys of optimizer: _target_, learning_rate", "Did you mean optimizer.learning_rate?"],
    ),
    "group option typo": (
        ["model=convnett"],
        HYDRA,
        ["Available options in 'model'", "small_convnet", "Did you mean model=convnet?"],
    ),
    "multi-select option typo": (
        ["callbacks=[early_stoping]"],
        HYDRA,
        ["Available options in 'callbacks'", "callbacks=[early_stoping]"],
    ),
    # A group whose default is null (conf/train.yaml: not `optional`, or Hydra would skip an
    # unknown option and train the default).
    "experiment typo": (
        ["experiment=imbd_dense"],
        HYDRA,
        ["Available options in 'experiment'", "Did you mean experiment=imdb_dense?"],
    ),
    # Experiments are named after their data option; an old name says the new one.
    "renamed experiment": (
        ["experiment=catsdogs_aug_dropout"],
        HYDRA,
        [
            "experiment 'catsdogs_aug_dropout' was renamed: use "
            "experiment=cats_dogs_aug_dropout. Received: experiment=catsdogs_aug_dropout."
        ],
    ),
    "renamed experiment in a sweep": (
        ["-m", "experiment=cats_dogs_scratch,deck_cnn64"],
        HYDRA,
        [
            "experiment 'deck_cnn64' was renamed: use experiment=cats_dogs_deck_cnn64",
            "Received: experiment=cats_dogs_scratch,deck_cnn64",
        ],
    ),
    "data/augment option typo": (
        ["data/augment=bok"],
        HYDRA,
        ["Available options in 'data/augment': book", "Did you mean data/augment=book?"],
    ),
    "null for a group": (
        ["data/augment=null"],
        HYDRA,
        ["A config group takes an option's name, not null", "~data/augment", "data.augment=null"],
    ),
    "debug option typo": (
        ["debug=defualt"],
        HYDRA,
        ["Available options in 'debug': default, overfit", "debug=defualt"],
    ),
    "bad override syntax": (
        ["optimizer.learning_rate=[0.1"],
        HYDRA,
        ["optimizer.learning_rate is not valid override syntax", "learning_rate=[0.1"],
    ),
    "+ on an existing key": (
        ["+trainer.epochs=3"],
        HYDRA,
        ["trainer.epochs already exists", "++trainer.epochs=3"],
    ),
    "~ on a missing key": (["~trainer.kfoldd"], HYDRA, ["Cannot delete trainer.kfoldd"]),
    "key typo in a sweep": (
        ["-m", "trainer.epoch=1,2"],
        HYDRA,
        ["Unknown key trainer.epoch", "Received: trainer.epoch=1,2"],
    ),
    "option typo in a sweep": (
        ["-m", "model=convnet,convnett"],
        HYDRA,
        ["Unknown option 'convnett'", "Received: model=convnet,convnett"],
    ),
    # Keys that no part of the run reads (`+` adds them past Hydra's struct mode): refused
    # before TensorFlow is imported, naming the closest key that is read.
    "+ on a misspelt group": (
        ["+optimzer.learning_rate=1"],
        TRAIN,
        [
            "Unknown key optimzer:",
            "Did you mean optimizer.learning_rate?",
            "optimzer.learning_rate=1",
        ],
    ),
    "+ on a misspelt key": (
        ["+trainer.epoch=3"],
        TRAIN,
        ["Unknown key trainer.epoch: no part of train reads it", "Did you mean trainer.epochs?"],
    ),
    "+ of a key nothing reads": (["+foo=1"], TRAIN, ["Unknown key foo:", "Keys at the top level"]),
    "keys of a callback the run did not pick": (
        ["+callbacks.early_stopping.patience=3"],
        TRAIN,
        ["'callbacks=[model_checkpoint,backup_and_restore,terminate_on_nan,early_stopping]'"],
    ),
    "a misspelt key in a multirun": (
        ["-m", "+trainer.epoch=3"],
        TRAIN,
        ["Unknown key trainer.epoch", "Did you mean trainer.epochs?"],
    ),
    "missing required value (???)": (
        ["experiment=imdb_raw_glove_200"],
        TRAIN,
        ["glove_path is required", "Received: glove_path=???", "Set it on the command line"],
    ),
}


def run_dirs(cwd):
    """Every folder under outputs/runs/ and outputs/sweeps/ (none for a Hydra-stage error)."""
    roots = [cwd / "outputs" / "runs", cwd / "outputs" / "sweeps"]
    return [d for root in roots if root.is_dir() for d in root.iterdir()]


@pytest.mark.parametrize("case", CASES)
def test_a_bad_config_is_one_error_line_and_exit_code_2(tmp_path, case):
    overrides, stage, fragments = CASES[case]
    result = run_train(*overrides, cwd=tmp_path)
    error = one_error_line(result)
    for fragment in fragments:
        assert fragment in error, error
    assert "Received: " in error, error
    assert "Epoch 1/" not in result.stdout  # refused before fitting
    if stage == HYDRA:  # before Hydra made anything: stderr only, no run directory
        assert error in result.stderr.splitlines() and result.stdout == "", result.stdout
        assert run_dirs(tmp_path) == []
    else:
        assert all(not (d / "model.keras").exists() for d in run_dirs(tmp_path))


@pytest.mark.parametrize("overrides", [["trainer.epoch=3"], ["experiment=imbd_dense"]])
def test_hydra_full_error_keeps_the_traceback(tmp_path, overrides):
    result = run_train(*overrides, cwd=tmp_path, env={"HYDRA_FULL_ERROR": "1"})
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" in result.stderr
    assert "hydra.errors." in result.stderr  # Hydra's own exception, unformatted
    lines = (result.stdout + result.stderr).splitlines()
    assert not [line for line in lines if line.startswith("Error:")]  # not our one line


APP = """
import sys

import hydra

from kerasrun.config.hydra_errors import one_line_errors


@one_line_errors
@hydra.main(config_path="conf", config_name="app", version_base="1.3")
def main(cfg):
    if cfg.mode == "bug":
        raise RuntimeError("a bug in the task")
    if cfg.mode == "exit":
        sys.exit(3)
    if cfg.mode == "interrupt":
        raise KeyboardInterrupt
    print("ran", cfg.mode)


main()
"""


@pytest.mark.parametrize(
    "override, returncode, expected",
    [
        ("mode=ok", 0, "ran ok"),
        ("mdoe=ok", 2, "Error: Unknown key mdoe. Keys at the top level: hydra, mode."),
        ("mode=bug", 1, "RuntimeError: a bug in the task"),  # a bug keeps its traceback
        ("mode=exit", 3, ""),  # sys.exit passes through unchanged
        ("mode=interrupt", -2, "KeyboardInterrupt"),  # Ctrl-C too
    ],
)
def test_only_hydras_own_errors_become_one_line(tmp_path, override, returncode, expected):
    """A minimal real Hydra app: the task function's own exceptions are left alone."""
    import subprocess

    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "app.yaml").write_text("mode: ok\n")
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    result = subprocess.run(
        [sys.executable, "app.py", override, f"hydra.run.dir={tmp_path / 'out'}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode == returncode, output
    assert expected in output
    assert ("Traceback" in output) == (override in ("mode=bug", "mode=interrupt")), output


HARNESS = """
import atexit
import sys

atexit.register(lambda: print("tensorflow imported:", "tensorflow" in sys.modules))
sys.argv = {argv!r}
from {module} import main

main()
"""


def run_main(module, *argv, cwd):
    """`main()` of a command's `module` with `argv`, in a fresh interpreter that says at exit
    whether TensorFlow was imported."""
    code = HARNESS.format(argv=[module.rpartition(".")[2], *argv], module=module)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=subprocess_env(),
    )


@pytest.mark.parametrize(
    "module, argv, fragment",
    [
        ("kerasrun.train", ["+optimzer.learning_rate=1"], "Did you mean optimizer.learning_rate?"),
        ("kerasrun.evaluate", ["run=x", "+chekpoint=last"], "Did you mean checkpoint?"),
        ("kerasrun.predict", ["inputs=[a.jpg]", "+top=1"], "Did you mean top_k?"),
        ("kerasrun.visualize", ["kind=filters", "+stpes=3"], "Did you mean steps?"),
        ("kerasrun.export", ["run=x", "format=keras", "+fromat=onnx"], "Did you mean format?"),
    ],
)
def test_every_command_refuses_a_key_it_does_not_read_before_tensorflow(
    tmp_path, module, argv, fragment
):
    result = run_main(module, *argv, cwd=tmp_path)
    error = one_error_line(result)
    assert "no part of" in error and fragment in error, error
    assert "tensorflow imported: False" in result.stdout, result.stdout[-2000:]


def test_a_sweep_over_a_misspelt_key_stops_before_its_second_job(tmp_path):
    # Each job would fail alike: the sweep stops at the first, instead of recording a failed
    # job per value and exiting 0.
    result = run_main("kerasrun.train", "-m", "+optimzer.learning_rate=1e-3,1e-4", cwd=tmp_path)
    error = one_error_line(result)
    assert "Unknown key optimzer:" in error and "optimzer.learning_rate=0.001" in error, error
    assert "tensorflow imported: False" in result.stdout, result.stdout[-2000:]
    (sweep,) = (tmp_path / "outputs" / "sweeps").iterdir()
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert jobs == ["0_+optimzer.learning_rate=0.001"], jobs


def test_the_targets_arguments_are_checked_before_any_data_work(tmp_path):
    # Keras's own error would be a traceback from inside training (Argument(s) not recognized).
    # The data folder does not exist: building the data would say so first.
    result = run_train(
        "data=image_folder", f"data.root={tmp_path / 'missing'}", "+optimizer.lr=1", cwd=tmp_path
    )
    error = one_error_line(result)
    assert "data.root" not in error, error
    for fragment in (
        "Unknown key optimizer.lr: keras.optimizers.RMSprop takes no argument lr",
        "Arguments of keras.optimizers.RMSprop: learning_rate, rho",
        "Did you mean optimizer.learning_rate? Received: optimizer.lr=1.",
    ):
        assert fragment in error, error


def test_hydras_line_suggests_plus_only_where_a_new_key_is_read(tmp_path):
    # +trainer.epoch=3 would be refused (nothing reads it); +model.x may be a builder's argument.
    error = one_error_line(run_train("trainer.epoch=3", cwd=tmp_path))
    assert error.endswith("Received: trainer.epoch=3. Fix the spelling."), error
    error = one_error_line(run_train("model.poolin=avg", cwd=tmp_path))
    assert error.endswith("Fix the spelling, or add a new key with +model.poolin=avg."), error


def test_runs_refuses_an_option_it_does_not_know_naming_the_closest(tmp_path):
    # `runs` parses its options with argparse, which refuses an unknown one itself.
    runs = Path(sys.executable).parent / "runs"
    result = subprocess.run(
        [runs, "--sortt", "time"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    error = one_error_line(result)
    assert "unrecognized arguments: --sortt. Did you mean --sort?" in error, error
