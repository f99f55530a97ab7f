"""What a sweep (`train -m ...`) leaves behind when it ends: `summary.csv` and a table.

Hydra calls `SweepSummary.on_multirun_end` once every job has run (conf/hydra/default.yaml
registers it), for grid sweeps and for Optuna searches alike. Each job's row comes from the
files the job wrote, read as the `runs` command reads them (`rundir.index.read_run`): failed
jobs are listed with their one-line error, jobs that never finished as `killed`.
"""

import csv
import logging
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import OmegaConf
from rich.table import Table

from kerasrun.console import console
from kerasrun.errors import is_number
from kerasrun.rundir.index import read_run
from kerasrun.rundir.layout import HYDRA_DIR, SWEEP_SUMMARY
from kerasrun.rundir.results import lower_is_better

log = logging.getLogger("kerasrun")

EXTRA = ("epochs", "wall_time_s")


class SweepSummary(Callback):
    """Writes `<sweep>/summary.csv` and prints the jobs sorted by the sweep's objective."""

    def on_multirun_end(self, config, **kwargs):
        sweep_dir = Path(OmegaConf.select(config, "hydra.sweep.dir"))
        metric = OmegaConf.select(config, "optimized_metric", default="best_val_loss")
        if sweep_dir.is_dir():
            summarize(sweep_dir, metric)


def summarize(sweep_dir, metric):
    """Writes `summary.csv` for the jobs in `sweep_dir`, prints them; returns the rows.

    Args:
        sweep_dir: the sweep's folder, holding one folder per job.
        metric: the objective (`optimized_metric`): rows are sorted by it, best first, in
            the direction its name implies (lower for losses and errors, higher otherwise).
    """
    rows = [job_row(d, metric) for d in sorted(Path(sweep_dir).iterdir()) if _is_job(d)]
    if not rows:
        return rows
    lower = lower_is_better(metric)

    def key(row):
        value = row[metric]
        if not is_number(value):
            return (1, 0.0)  # failed, killed or missing: after every scored job
        return (0, value if lower else -value)

    rows.sort(key=key)
    metrics = sorted({k for r in rows for k in r["metrics"]} - {metric})
    columns = ["job", "overrides", "status", metric, *metrics, *EXTRA, "error", "dir"]
    path = Path(sweep_dir) / SWEEP_SUMMARY
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, **row["metrics"]})
    _print(rows, metric, path)
    return rows


def job_row(job_dir, metric):
    """One job's summary: number, overrides, status, objective, best/test metrics, error."""
    run = read_run(Path(job_dir))  # the same reading as the `runs` command
    return {
        "job": run.job if run.in_sweep else run.path.name,
        "overrides": " ".join(run.overrides),
        "status": run.status,
        metric: run.value(metric),
        "metrics": {
            k: v
            for k, v in run.metrics.items()
            if k.startswith(("best_val_", "test_", "kfold_val_")) and is_number(v)
        },
        **{k: run.metrics.get(k) for k in EXTRA},
        "error": run.error,
        "dir": str(run.path),
    }


def _is_job(path):
    return path.is_dir() and (path / HYDRA_DIR).is_dir()


def _print(rows, metric, path):
    table = Table(title=f"Sweep: {len(rows)} jobs by {metric}", title_justify="left")
    for column in ("job", "overrides", "status", metric, "error"):
        table.add_column(column, justify="right" if column in ("job", metric) else "left")
    for row in rows:
        value = f"{row[metric]:.4f}" if is_number(row[metric]) else ""
        error = row["error"] if len(row["error"]) < 80 else row["error"][:77] + "..."
        table.add_row(str(row["job"]), row["overrides"], row["status"], value, error)
    console.print(table)
    best = rows[0]
    if is_number(best[metric]):
        console.print(f"Best job: {best['dir']}", markup=False, soft_wrap=True)
    console.print(f"Summary:  {path}", markup=False, soft_wrap=True)
    failed = sum(row["status"] != "finished" for row in rows)
    if failed:
        log.warning(f"{failed} of {len(rows)} jobs did not finish: see the table above.")
