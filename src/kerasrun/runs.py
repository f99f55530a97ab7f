"""`runs`: every run and sweep job under `outputs/` in one table, newest or best first.

runs                                        # every run under outputs/, newest first
runs outputs/sweeps/2026-11-22_19-30-13     # the jobs of one sweep
runs --data digits --model convnet --since 7d
runs --status failed,killed                 # what went wrong lately
runs --sort best_val_accuracy --limit 5     # the five best (accuracy: highest first)
runs --sort test_mae                        # loss/mae/mse/error metrics: lowest first
runs --sweep --csv runs.csv                 # only sweep jobs, also written to a CSV file

`runs` only reads what `train` wrote (config.yaml, metrics.json, .hydra/overrides.yaml,
train.log) and never imports TensorFlow, so it answers at once. A run without metrics.json
is "running" while its train.log changed in the last 2 minutes, "failed" when the log ends
with an error, else "killed"; a run whose files cannot be read is "unreadable".
"""

import argparse
import csv
import difflib
import os
import re
import sys
from datetime import datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from kerasrun.console import console
from kerasrun.errors import ConfigError, check_int, did_you_mean
from kerasrun.rundir.index import (
    STATUSES,
    RunRecord,
    best_run,
    filter_runs,
    find_run_dirs,
    key_overrides,
    read_runs,
    recorded_metrics,
    sort_runs,
)
from kerasrun.rundir.layout import backup_state_path
from kerasrun.rundir.results import lower_is_better

STATUS_STYLES = {
    "finished": "green",
    "running": "cyan",
    "failed": "bold red",
    "unreadable": "bold red",
}
EXTRA_METRICS = ("test_accuracy", "test_mae")
OVERRIDES_WIDTH = 60
DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class UsageError(ConfigError):
    """A bad command-line value: printed as one `Error:` line, exit code 2."""


# Command-line values.


def parse_since(text, now=None):
    """`7d`, `24h`, `30m`, `2w` before `now`, or an ISO date (`2026-11-01[T09:30]`)."""
    now = now or datetime.now()
    match = DURATION.match(text.strip())
    if match:
        return now - timedelta(**{UNITS[match.group(2)]: float(match.group(1))})
    try:
        since = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            "--since must be a duration (30m, 24h, 7d, 2w) or a date (2026-11-01, "
            f"2026-11-01T09:30). Received: --since={text}"
        ) from None
    return since.astimezone().replace(tzinfo=None) if since.tzinfo else since


def parse_statuses(text):
    """`failed,killed` → `{"failed", "killed"}`, each one of `STATUSES`."""
    statuses = {s.strip() for s in text.split(",") if s.strip()}
    unknown = sorted(statuses - set(STATUSES) - {"unknown"})
    if unknown or not statuses:
        raise UsageError(
            f"--status must be one or more (comma-separated) of {', '.join(STATUSES)}. "
            f"Received: --status={text}"
        )
    return statuses


def check_sort(sort, runs):
    """Refuses a `--sort` key that is neither `time` nor a metric any run recorded."""
    known = recorded_metrics(runs)
    if sort == "time" or sort in known:
        return
    close = difflib.get_close_matches(sort, known, n=1)
    hint = f" Did you mean --sort={close[0]}?" if close else ""
    raise UsageError(
        f"--sort must be time or a metric in the runs' metrics.json "
        f"({', '.join(known) or 'none recorded yet'}). Received: --sort={sort}.{hint}"
    )


# Selecting.


def select(runs, args):
    """The runs that pass `--data`, `--model`, `--status`, `--since` and `--sweep`."""
    return filter_runs(
        runs,
        data=args.data,
        model=args.model,
        statuses=parse_statuses(args.status) if args.status else None,
        since=parse_since(args.since) if args.since else None,
        sweep_only=args.sweep,
    )


def metric_columns(runs, sort):
    """Each run's optimized_metric, the sort metric, then test_accuracy / test_mae if any."""
    keys = [run.optimized_metric for run in runs if run.optimized_metric]
    keys += [sort] if sort != "time" else []
    keys += EXTRA_METRICS
    return [k for k in dict.fromkeys(keys) if any(k in run.metrics for run in runs)]


# Output.


def display_path(path):
    """`path` relative to the working directory when it is below it, else absolute."""
    cwd = Path.cwd()
    return os.path.relpath(path, cwd) if path.is_relative_to(cwd) else str(path)


def format_duration(seconds):
    """`8.4 s`, `21m 03s`, `2h 05m`."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def _truncate(text, width=OVERRIDES_WIDTH):
    return text if len(text) <= width else text[: width - 1] + "…"


def table_cells(run, metrics):
    """One table row: every cell as text."""
    wall, epochs = run.value("wall_time_s"), run.value("epochs")
    return [
        run.started.strftime("%Y-%m-%d %H:%M:%S"),
        run.kind,
        run.data,
        run.model,
        _truncate(", ".join(key_overrides(run.overrides))),
        run.status,
        "" if epochs is None else str(int(epochs)),
        *("" if run.metrics.get(k) is None else f"{run.metrics[k]:.4f}" for k in metrics),
        "" if wall is None else format_duration(wall),
        display_path(run.path),
    ]


def csv_row(run, metrics):
    """One CSV row: the table's columns with full values, then the error message."""
    return {
        "time": run.started.isoformat(sep=" "),
        "kind": run.kind,
        "data": run.data,
        "model": run.model,
        "overrides": ", ".join(key_overrides(run.overrides)),
        "status": run.status,
        "epochs": run.metrics.get("epochs", ""),
        **{key: run.metrics.get(key, "") for key in metrics},
        "wall_time_s": run.metrics.get("wall_time_s", ""),
        "path": display_path(run.path),
        "error": run.error,
    }


# How each column may shrink on a narrow terminal: these never wrap, the rest fold.
FIXED_COLUMNS = ("kind", "status", "epochs")
MIN_WIDTHS = {"date/time": 10}


def print_table(runs, metrics, title):
    """The rich table (text cells: no markup, so `callbacks=[...]` prints as typed)."""
    table = Table(title=title, title_justify="left")
    headers = ["date/time", "kind", "data", "model", "overrides", "status", "epochs"]
    for header in headers + metrics + ["wall time", "path"]:
        numeric = header in metrics or header in ("epochs", "wall time")
        table.add_column(
            header,
            justify="right" if numeric else "left",
            overflow="fold",
            no_wrap=header in FIXED_COLUMNS,
            min_width=MIN_WIDTHS.get(header),
        )
    for run in runs:
        cells = [Text(cell) for cell in table_cells(run, metrics)]
        cells[5].stylize(STATUS_STYLES.get(run.status, "yellow"))
        table.add_row(*cells)
    _print_unwrapped(table)


def _print_unwrapped(renderable):
    """Prints to kerasrun's console; into a file or a pipe at full width (no wrapped rows)."""
    if console.is_terminal:
        console.print(renderable)
        return
    wide = console.options.update_width(100_000)
    width = Measurement.get(console, wide, renderable).maximum
    Console(file=console.file, width=max(width, console.width), highlight=False).print(renderable)


def write_csv(path, runs, metrics):
    """Writes the rows to `path` (`-`: standard output)."""
    fieldnames = list(csv_row(RunRecord(Path(), datetime.now()), metrics))
    try:
        if path == "-":
            _write_rows(sys.stdout, fieldnames, runs, metrics)
            return
        with open(path, "w", newline="") as f:
            _write_rows(f, fieldnames, runs, metrics)
    except OSError as e:
        raise UsageError(
            f"--csv could not write {path}: {e.strerror}. Received: --csv={path}"
        ) from e


def _write_rows(f, fieldnames, runs, metrics):
    writer = csv.DictWriter(f, fieldnames=fieldnames)
    writer.writeheader()
    writer.writerows(csv_row(run, metrics) for run in runs)


# The command.


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # An option argparse does not know (`--sortt`): the closest one it does.
        unknown = re.findall(r"--?[\w-]+", message.partition("unrecognized arguments:")[2])
        guess = did_you_mean(unknown[0], self._option_string_actions) if unknown else ""
        raise UsageError(f"{message}.{guess} See: runs --help")


def build_parser():
    """The `runs` command line."""
    lines = __doc__.splitlines()
    parser = _Parser(
        prog="runs",
        description=lines[0].strip("`").replace("`", ""),
        epilog="examples:\n  " + "\n  ".join(lines[2:9]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("root", nargs="?", default="outputs", help="where to look (default: outputs)")
    add("--data", help="only runs of this data option (exact name, e.g. digits)")
    add("--model", help="only runs of this model option (exact name, e.g. convnet)")
    add("--status", help=f"only these statuses, comma-separated: {', '.join(STATUSES)}")
    add("--since", help="only runs started since: 30m, 24h, 7d, 2w or a date (2026-11-01)")
    add("--sort", default="time", help="time (default: newest first) or a metrics.json key")
    direction = parser.add_mutually_exclusive_group()
    direction.add_argument(
        "--asc",
        dest="ascending",
        action="store_true",
        default=None,
        help="lowest first (the default for loss, mae, mse and error metrics)",
    )
    direction.add_argument(
        "--desc", dest="ascending", action="store_false", help="highest (or newest) first"
    )
    add("--limit", type=int, help="show only the first N rows")
    add("--sweep", action="store_true", help="only the jobs of sweeps (train -m)")
    add("--csv", metavar="FILE", help="also write the rows as CSV (-: only CSV, to stdout)")
    return parser


def run_command(args):
    """Finds, filters, sorts and prints the runs; returns the exit code."""
    root = Path(args.root)
    where = f"{str(root).rstrip('/')}/"
    if args.limit is not None:
        check_int("--limit", args.limit)
    runs = read_runs(find_run_dirs(root.absolute()))
    if not runs:
        print(f"No runs under {where}. Train one with: train")
        return 0
    check_sort(args.sort, runs)
    selected = select(runs, args)
    if not selected:
        print(f"No runs under {where} match the filters ({len(runs)} runs in all).")
        return 0
    ascending = args.ascending
    if ascending is None:
        ascending = args.sort != "time" and lower_is_better(args.sort)
    ordered = sort_runs(selected, args.sort, ascending)[: args.limit]
    metrics = metric_columns(ordered, args.sort)
    if args.csv == "-":
        write_csv("-", ordered, metrics)
        return 0
    shown = f"{len(ordered)} of {len(runs)}" if len(ordered) < len(runs) else str(len(runs))
    print_table(ordered, metrics, title=f"{shown} runs under {where}")
    _print_best_and_write_csv(args, selected, ordered, metrics)
    return 0


def _print_best_and_write_csv(args, selected, ordered, metrics):
    best = best_run(selected, args.sort) if args.sort != "time" else None
    for run in ordered:  # what to do about a killed run: continue it
        if run.kind == "run" and run.status in ("killed", "interrupted", "failed"):
            if backup_state_path(run.path).is_file():
                line = f"Continue the {run.status} run: train resume={display_path(run.path)}"
                console.print(line, markup=False, soft_wrap=True)
    if best is not None:
        line = f"Best {args.sort}: {best.value(args.sort):.4f} in {display_path(best.path)}"
        console.print(line, markup=False, soft_wrap=True)
    if args.csv:
        write_csv(args.csv, ordered, metrics)
        console.print(f"Wrote {len(ordered)} rows to {args.csv}", markup=False, soft_wrap=True)


def main(argv=None):
    """The `runs` console script; returns its exit code (0, or 2 for a bad option)."""
    try:
        return run_command(build_parser().parse_args(argv))
    except ConfigError as e:  # a UsageError, or check_int's
        print(f"Error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `runs | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
