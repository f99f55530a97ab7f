"""Times a 4-job debug sweep: sequential (Hydra's basic launcher) vs `hydra/launcher=processes`.

    python scripts/benchmark_sweeps.py [--repeats 3] [--out docs/sweeps.md]

Each variant runs the same 2 x 2 grid (`debug=default`: 1 epoch of 2 steps on the embedded
digits) through the real `train -m`, alternately, in a temporary folder; the page reports the
median wall time of each and the per-job time from the jobs' own metrics.json.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import machine_line

TRAIN = str(Path(sys.executable).with_name("train"))
GRID = ["debug=default", "optimizer.learning_rate=0.001,0.003", "data.batch_size=32,64"]
VARIANTS = {
    "sequential (basic launcher, one process)": [],
    "parallel (hydra/launcher=processes, n_jobs=2)": [
        "hydra/launcher=processes",
        "hydra.launcher.n_jobs=2",
    ],
}


def run_sweep(extra):
    """Wall seconds of one sweep, and the mean of its jobs' own wall_time_s."""
    with tempfile.TemporaryDirectory() as cwd:
        start = time.perf_counter()
        subprocess.run(
            [TRAIN, "-m", *GRID, *extra],
            cwd=cwd,
            check=True,
            capture_output=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
        wall = time.perf_counter() - start
        jobs = [
            json.loads(p.read_text()) for p in Path(cwd).glob("outputs/sweeps/*/*/metrics.json")
        ]
        assert len(jobs) == 4 and all(j["status"] == "finished" for j in jobs), jobs
        return wall, statistics.fmean(j["wall_time_s"] for j in jobs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="docs/sweeps.md")
    args = parser.parse_args()
    times = {name: [] for name in VARIANTS}
    for _ in range(args.repeats):
        for name, extra in VARIANTS.items():  # alternate, so both see the same machine
            times[name].append(run_sweep(extra))
            print(name, f"{times[name][-1][0]:.1f} s", flush=True)

    lines = [
        "# A 4-job debug sweep, sequential and in parallel",
        "",
        f"Machine: {machine_line()}, no GPU.",
        f"Reproduce: `python scripts/benchmark_sweeps.py --repeats {args.repeats}`.",
        f"Sweep: `train -m {' '.join(GRID)}` (+ the launcher overrides below); median of "
        f"{args.repeats} runs each, run alternately.",
        "",
        "| launcher | sweep wall time | per job, inside train |",
        "| --- | --- | --- |",
    ]
    for name, runs in times.items():
        wall = statistics.median(w for w, _ in runs)
        job = statistics.median(j for _, j in runs)
        lines.append(f"| {name} | {wall:.1f} s | {job:.1f} s |")
    lines += [
        "",
        "A debug job trains for well under a second; what a fresh process adds is starting",
        "Python, TensorFlow and Hydra again (several seconds on 2 cores), so for jobs this",
        "small the one-process sweep is faster. The processes launcher pays that once per job",
        "to give each job a clean TensorFlow (and GPU memory); for real jobs of minutes to",
        "hours it is a small cost, and with one GPU per job the jobs run side by side.",
    ]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
