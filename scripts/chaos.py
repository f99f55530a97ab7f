"""Kill real `train` runs at random moments, resume them, and check nothing was lost.

    python scripts/chaos.py                      # 20 cycles on the embedded digits
    python scripts/chaos.py --cycles 5 --signal TERM
    python scripts/chaos.py --json docs/chaos.json -- trainer.epochs=4 model=small_convnet

Each cycle starts `train <overrides>`, kills it (SIGKILL by default) after a random delay,
checks every file a later command would trust (best.keras loads, the backup's state names
weights that load, metrics.json and history.csv parse), then runs `train resume=<run>`
(killed again, `--kills` times in all) until it finishes. The finished run is compared with
one uninterrupted run of the same config: the same epochs, each epoch once in history.csv
and in TensorBoard (read with TensorBoard's reader), and accuracies within `--tolerance`
(0.05, as tests/cli/test_resume.py). Every difference is reported beside the noise floor: how
far the same run lands with another seed (`--noise-seeds` runs).
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TRAIN = str(Path(sys.executable).with_name("train"))
DEFAULT = ["trainer.epochs=6", "trainer.steps_per_epoch=80"]
COMPARED = ("val_accuracy", "val_loss", "best_val_accuracy", "test_accuracy")
CHECKED = ("val_accuracy", "best_val_accuracy", "test_accuracy")  # against --tolerance


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--kills", type=int, default=2, help="kills per run before it may end")
    parser.add_argument("--signal", default="KILL", choices=["KILL", "TERM", "INT"])
    parser.add_argument("--min-delay", type=float, default=2.0, help="seconds, from start")
    parser.add_argument(
        "--max-delay", type=float, help="seconds; default: 95%% of the uninterrupted run's"
    )
    parser.add_argument("--tolerance", type=float, default=0.05, help="for the accuracies")
    parser.add_argument("--noise-seeds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("overrides", nargs="*", help="train overrides (after --)")
    args = parser.parse_args()
    overrides = args.overrides or DEFAULT
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="kerasrun-chaos-"))
    try:
        started = run(work / "reference", overrides)
        reference = finished_run(started)
        args.max_delay = args.max_delay or 0.95 * started[3]  # kills land while it runs
        print(f"reference: {summary(reference)} in {started[3]:.1f} s", flush=True)
        # The noise floor: how far the same run with another seed lands. A resume that
        # stays within it is as good as the uninterrupted run.
        noise = {k: 0.0 for k in COMPARED}
        for seed in range(1, args.noise_seeds + 1):
            other = finished_run(run(work / f"seed{seed}", [*overrides, f"seed={42 + seed}"]))
            for k in COMPARED:
                noise[k] = max(noise[k], abs(other["metrics"][k] - reference["metrics"][k]))
        tolerance = {k: args.tolerance for k in CHECKED}
        print(f"noise (other seeds' largest difference): {noise}", flush=True)
        cycles = []
        for cycle in range(1, args.cycles + 1):
            result = chaos_cycle(work / f"cycle{cycle}", overrides, reference, tolerance, args, rng)
            cycles.append(result)
            print(f"cycle {cycle}: {json.dumps(result)}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = {
        "command": "python scripts/chaos.py " + " ".join(sys.argv[1:]),
        "overrides": overrides,
        "signal": args.signal,
        "reference": reference["metrics"],
        "tolerance": tolerance,
        "seed_noise": {k: round(v, 4) for k, v in noise.items()},
        "cycles": cycles,
        "kills": sum(c["kills"] for c in cycles),
        "ok": sum(c["ok"] for c in cycles),
        "max_abs_diff": {
            k: max((c["diff"].get(k, 0.0) for c in cycles), default=0.0) for k in COMPARED
        },
    }
    print(json.dumps({k: v for k, v in report.items() if k != "cycles"}, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["ok"] == len(cycles) else 1


def run(cwd, overrides, *, kill_after=None, signum=signal.SIGKILL):
    """`train <overrides>` in `cwd`; killed after `kill_after` seconds if still running.

    Returns `(returncode, killed, seconds)`.
    """
    cwd.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    with open(cwd / "console.txt", "a") as out:
        process = subprocess.Popen([TRAIN, *overrides], cwd=cwd, stdout=out, stderr=out, env=env)
        try:
            process.wait(timeout=kill_after)
            killed = False
        except subprocess.TimeoutExpired:
            process.send_signal(signum)
            process.wait()
            killed = True
    return cwd, process.returncode, killed, time.perf_counter() - start


def chaos_cycle(cwd, overrides, reference, tolerance, args, rng):
    signum = getattr(signal, f"SIG{args.signal}")
    delays, problems, kills = [], [], 0
    _, code, killed, _ = run(
        cwd, overrides, kill_after=(d := rng.uniform(args.min_delay, args.max_delay)), signum=signum
    )
    delays.append(round(d, 2))
    kills += killed
    run_dir = run_directory(cwd)
    while run_dir is not None:
        problems += check_files(run_dir)
        if not killed:
            break
        kill_again = kills < args.kills
        delay = rng.uniform(args.min_delay, args.max_delay) if kill_again else None
        _, code, killed, _ = run(cwd, [f"resume={run_dir}"], kill_after=delay, signum=signum)
        if delay is not None:
            delays.append(round(delay, 2))
        kills += killed
    if run_dir is None:  # killed before Hydra made the directory: nothing to resume
        _, code, killed, _ = run(cwd, overrides)
        run_dir = run_directory(cwd)
    final = finished_run((cwd, code, False, 0))
    problems += compare(final, reference, tolerance)
    diff = {
        k: abs(final["metrics"][k] - reference["metrics"][k])
        for k in COMPARED
        if k in final["metrics"] and k in reference["metrics"]
    }
    return {
        "delays_s": delays,
        "kills": kills,
        "resumed_from": final["resumed_from"],
        "epochs": final["metrics"].get("epochs"),
        "diff": {k: round(v, 4) for k, v in diff.items()},
        "problems": problems,
        "ok": not problems,
    }


def run_directory(cwd):
    """The cycle's run directory, or `None` if the kill came before Hydra had written its
    `.hydra/config.yaml` (a user would start again: so does the cycle)."""
    runs = sorted((cwd / "outputs" / "runs").glob("*")) if (cwd / "outputs").is_dir() else []
    if runs and not (runs[0] / ".hydra" / "config.yaml").is_file():
        shutil.rmtree(cwd / "outputs")
        return None
    return runs[0] if runs else None


def check_files(run_dir):
    """What a later command would trust after a kill: every such file must be whole."""
    import keras

    problems = []
    best = run_dir / "checkpoints" / "best.keras"
    if best.exists():
        try:
            keras.saving.load_model(best, compile=False)
        except Exception as e:  # noqa: BLE001 - any failure to load is the finding
            problems.append(f"best.keras does not load: {str(e)[:120]}")
    state_path = run_dir / "backup" / "state.json"
    if state_path.exists():
        try:
            state = json.loads(state_path.read_text())
            weights = run_dir / "backup" / state["weights"]
            import h5py

            with h5py.File(weights, "r"):
                pass
        except Exception as e:  # noqa: BLE001
            problems.append(f"backup state does not name readable weights: {str(e)[:120]}")
    for name in ("metrics.json", "config.yaml"):
        path = run_dir / name
        if path.exists() and not path.read_text().strip():
            problems.append(f"{name} is empty")
    return problems


def finished_run(result):
    """The metrics, the epochs in history.csv and in TensorBoard of a run that ended."""
    cwd, code, _, _ = result
    run_dir = run_directory(cwd)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    csv_epochs = [
        int(line.split(",")[0]) for line in (run_dir / "history.csv").read_text().splitlines()[1:]
    ]
    console = (cwd / "console.txt").read_text()
    resumed = [line for line in console.splitlines() if "Resumed from the backup" in line]
    return {
        "code": code,
        "metrics": metrics,
        "csv_epochs": csv_epochs,
        "tb_steps": {
            split: tb_steps(run_dir / "tensorboard" / split) for split in ("train", "validation")
        },
        "resumed_from": [line.split("epoch ")[1].split(" ")[0].rstrip(",") for line in resumed],
        "backup_left": (run_dir / "backup").exists(),
    }


def tb_steps(event_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(event_dir), size_guidance={"tensors": 0})
    acc.Reload()
    return (
        [e.step for e in acc.Tensors("epoch_loss")] if "epoch_loss" in acc.Tags()["tensors"] else []
    )


def compare(final, reference, tolerance):
    problems = []
    epochs = reference["metrics"]["epochs"]
    if final["code"] != 0 or final["metrics"].get("status") != "finished":
        problems.append(f"did not finish: exit {final['code']}, {final['metrics'].get('status')}")
    if final["metrics"].get("epochs") != epochs:
        problems.append(f"{final['metrics'].get('epochs')} epochs, not {epochs}")
    if final["csv_epochs"] != list(range(epochs)):
        problems.append(f"history.csv epochs {final['csv_epochs']}")
    for split, steps in final["tb_steps"].items():
        if steps != list(range(epochs)):
            problems.append(f"TensorBoard {split} steps {steps}")
    if final["backup_left"]:
        problems.append("backup/ left behind")
    for key in CHECKED:
        a, b = final["metrics"].get(key), reference["metrics"].get(key)
        if a is not None and b is not None and abs(a - b) > tolerance[key]:
            problems.append(f"{key} {a:.4f} vs {b:.4f}")
    return problems


def summary(run):
    return {k: round(run["metrics"][k], 4) for k in COMPARED if k in run["metrics"]}


if __name__ == "__main__":
    sys.exit(main())
