"""`evaluate runs=[a,b]`: the book's model ensembling (§7.3.3) on two real digits runs (two
different convnets, trained once by one real `train -m`), checked against Keras itself."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from helpers import command_runtime, one_error_line, run_train
from kerasrun.errors import ConfigError

EVALUATE = str(Path(sys.executable).with_name("evaluate"))


@pytest.fixture(scope="module")
def digits_runs(tmp_path_factory):
    """Two runs on the same digits split: a one-stage and a two-stage convnet, 1 epoch each,
    trained by one `train -m` (one process, so TensorFlow starts once)."""
    cwd = tmp_path_factory.mktemp("ensemble")
    result = run_train(
        "-m",
        "trainer.epochs=1",
        "optimizer.learning_rate=0.01",
        "model.filters=[8],[8,16]",
        "model.units=16",
        "logger=[]",
        "callbacks=[model_checkpoint]",
        f"hydra.sweep.dir={cwd / 'sweep'}",
        "hydra.sweep.subdir=${hydra.job.num}",
        cwd=cwd,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return cwd, [cwd / "sweep" / "0", cwd / "sweep" / "1"]


@pytest.fixture(scope="module")
def truth(digits_runs):
    """What Keras says in this process: each run's `model.evaluate` and probabilities on
    the test and validation splits, and the labels."""
    from kerasrun.rundir.run import open_run

    out = {}
    for run_dir in digits_runs[1]:
        run = open_run(run_dir)
        data, model = run.build_data(), run.load_model()
        for split in ("test", "validation"):
            dataset = getattr(data, f"{split}_dataset")
            out.setdefault(split, {"labels": np.concatenate([np.asarray(y) for _, y in dataset])})
            out[split].setdefault("scores", []).append(
                model.evaluate(dataset, verbose=0, return_dict=True)
            )
            out[split].setdefault("probs", []).append(model.predict(dataset, verbose=0))
    return out


def accuracy_and_loss(probs, labels):
    """Accuracy and cross-entropy of averaged softmax probabilities, in numpy."""
    p = np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1 - 1e-7)
    return float((probs.argmax(-1) == labels).mean()), float(-np.log(p).mean())


@pytest.fixture(scope="module")
def ensembled(digits_runs):
    """A real `evaluate runs=[a,b]` (plain average): its output and its metrics.json."""
    cwd, (a, b) = digits_runs
    result = subprocess.run(
        [EVALUATE, f"runs=[{a},{b}]"], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    (written,) = re.findall(r"Wrote (\S+)/metrics.json", result.stdout)
    out = cwd / written
    return result.stdout, out, json.loads((out / "metrics.json").read_text())


def test_the_ensemble_of_two_runs_evaluates(ensembled, digits_runs, truth):
    stdout, out, metrics = ensembled
    assert out.parent == digits_runs[0] / "outputs" / "ensembles"  # where a user finds it
    assert command_runtime(stdout) == ("CPU", "float32", "the run's", 42)  # train's set-up
    assert metrics["weights"] == [0.5, 0.5] and metrics["weights_mode"] == "plain"
    assert [m["run"] for m in metrics["members"]] == [str(r) for r in digits_runs[1]]
    test = truth["test"]
    # Each member's numbers are model.evaluate's (what `evaluate run=<it>` reports).
    for member, scores in zip(metrics["members"], test["scores"], strict=True):
        assert member["accuracy"] == pytest.approx(scores["accuracy"], abs=1e-5)
        assert member["loss"] == pytest.approx(scores["loss"], abs=1e-5)
    # The ensemble's are those of the averaged probabilities, computed here independently.
    accuracy, loss = accuracy_and_loss((test["probs"][0] + test["probs"][1]) / 2, test["labels"])
    assert metrics["ensemble"]["accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert metrics["ensemble"]["loss"] == pytest.approx(loss, abs=1e-5)
    assert metrics["examples"] == len(test["labels"]) == 270
    best = max(s["accuracy"] for s in test["scores"])
    assert metrics["beats_best_member"] == (accuracy > best)
    verb = "beats" if accuracy > best else "does not beat"
    assert f"The ensemble {verb} its best member (test accuracy {accuracy:.4f} vs {best:.4f}" in (
        " ".join(stdout.split())
    )
    assert "ensemble" in stdout and f"Wrote {out.relative_to(digits_runs[0])}" in stdout


def test_weights_change_the_result(digits_runs, truth, tmp_path):
    from kerasrun.evaluation.ensemble import evaluate_ensemble

    metrics = evaluate_ensemble(digits_runs[1], weights=[3, 1], output=tmp_path / "w")
    assert metrics["weights"] == [0.75, 0.25] and metrics["weights_mode"] == "given"
    test = truth["test"]
    accuracy, loss = accuracy_and_loss(
        0.75 * test["probs"][0] + 0.25 * test["probs"][1], test["labels"]
    )
    _, plain_loss = accuracy_and_loss((test["probs"][0] + test["probs"][1]) / 2, test["labels"])
    assert metrics["ensemble"]["accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert metrics["ensemble"]["loss"] == pytest.approx(loss, abs=1e-5)
    assert abs(loss - plain_loss) > 1e-3  # the weights changed the ensemble
    assert json.loads((tmp_path / "w" / "metrics.json").read_text()) == metrics


def test_optimized_weights_fit_on_validation(digits_runs, truth, tmp_path):
    from kerasrun.evaluation.ensemble import evaluate_ensemble

    metrics = evaluate_ensemble(digits_runs[1], weights="optimize", output=tmp_path / "o")
    weights = metrics["weights"]
    assert sum(weights) == pytest.approx(1.0) and min(weights) >= 0
    assert metrics["weights_mode"] == "optimize"
    validation = truth["validation"]
    _, plain = accuracy_and_loss(
        (validation["probs"][0] + validation["probs"][1]) / 2, validation["labels"]
    )
    _, fitted = accuracy_and_loss(
        weights[0] * validation["probs"][0] + weights[1] * validation["probs"][1],
        validation["labels"],
    )
    assert metrics["validation"]["plain"]["loss"] == pytest.approx(plain, abs=1e-5)
    assert fitted < plain - 1e-4  # the search moved, and downhill (it starts at the average)
    assert metrics["validation"]["optimized"]["loss"] == pytest.approx(fitted, abs=1e-5)
    with pytest.raises(ConfigError, match=r"Received: split=validation\. Set split=test"):
        evaluate_ensemble(digits_runs[1], weights="optimize", split="validation")


def changed_copy(run_dir, tmp_path, name, **changes):
    """A copy of `run_dir` whose config.yaml has `changes` (`data__validation_split=0.2`)."""
    copy = Path(shutil.copytree(run_dir, tmp_path / name))
    config = yaml.safe_load((copy / "config.yaml").read_text())
    for key, value in changes.items():
        node, *path = key.split("__")
        target = config
        for part in [node, *path][:-1]:
            target = target[part]
        target[[node, *path][-1]] = value
    (copy / "config.yaml").write_text(yaml.safe_dump(config))
    return copy


def test_runs_on_another_split_are_refused(digits_runs, tmp_path, monkeypatch):
    from kerasrun.evaluation.ensemble import evaluate_ensemble

    monkeypatch.chdir(tmp_path)  # where outputs/ensembles/ would go

    a, b = digits_runs[1]
    other = changed_copy(b, tmp_path, "other_split", data__validation_split=0.2)
    with pytest.raises(ConfigError) as error:
        evaluate_ensemble([a, other])
    message = str(error.value)
    assert f"{a} and {other} differ in data.validation_split" in message
    assert "Received: data.validation_split=0.15 and data.validation_split=0.2" in message
    # Another seed draws other digits for the test split: found once the labels are read.
    reseeded = changed_copy(b, tmp_path, "reseeded", seed=7)
    with pytest.raises(ConfigError, match=r"hold different labels \(seed=42 and seed=7"):
        evaluate_ensemble([a, reseeded])
    assert not (tmp_path / "outputs").exists()


def test_bad_weights_and_runs_are_one_line_errors(digits_runs, tmp_path, monkeypatch):
    from kerasrun.evaluate import ensemble_requested
    from kerasrun.evaluation.ensemble import evaluate_ensemble

    monkeypatch.chdir(tmp_path)

    runs = digits_runs[1]
    for weights, match in [
        ([0.5, 0.3, 0.2], r"one number per run \(2 runs\)\. Received: weights=\[0\.5, 0\.3"),
        ([1, -1], r"non-negative .* Received: weights=\[1, -1\]"),
        ("best", r"Received: weights='best'"),
    ]:
        with pytest.raises(ConfigError, match=match):
            evaluate_ensemble(runs, weights=weights)
    with pytest.raises(ConfigError, match="run and runs cannot be used together"):
        ensemble_requested({"run": str(runs[0]), "runs": list(map(str, runs))})
    with pytest.raises(ConfigError, match=r"'.*/0' twice in runs"):
        evaluate_ensemble([runs[0], runs[0]])
    with pytest.raises(ConfigError, match=r"^runs\[1\]: run must be a run directory"):
        evaluate_ensemble([runs[0], tmp_path / "nope"])
    # The command line: one run is not an ensemble.
    result = subprocess.run(
        [EVALUATE, f"runs=[{runs[0]}]"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    line = one_error_line(result)
    assert "runs must list at least 2 run directories" in line and "Received: runs=[" in line
