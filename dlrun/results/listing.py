"""`dlrun runs [PATH] [--sweeps] [-n N]`: runs or sweeps under a folder, newest first; `latest`.

A run is any run folder (dlrun.results.load.find_run_dirs) outside a sweep; a
sweep is a folder holding a sweep index (`sweep.csv`) or its `.dlrun/`. When a
run or sweep started is when its config.yaml (a sweep: `.dlrun/sweep.json`)
was written, the first file each gets. Only summary files are read, so
listing a thousand runs takes a moment, not a report.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path

from dlrun.errors import UsageError
from dlrun.folders import runs

DEFAULT_ROOT = Path("outputs")


@dataclass
class Entry:
    started: float  # seconds since the epoch
    name: str
    status: str
    best: str  # the best monitored value, e.g. "val_loss 1.234"
    epochs: str  # "best/run" for a run, the number of jobs for a sweep
    folder: Path


def is_sweep(folder: Path) -> bool:
    return (folder / runs.SWEEP_INDEX).is_file() or (folder / runs.SWEEP_STATE).is_dir()


def _started(*candidates: Path) -> float:
    for path in candidates:
        try:
            return path.stat().st_mtime
        except OSError:
            continue
    return 0.0


def find_sweeps(root: Path) -> list[Path]:
    found = []
    for here, dirs, _ in os.walk(root):
        folder = Path(here)
        if is_sweep(folder):
            found.append(folder)
            dirs.clear()  # sweeps do not nest
        dirs[:] = [
            d for d in dirs if not d.startswith(".") and d not in (runs.CHECKPOINTS, "report")
        ]
    return found


def run_entries(root: Path) -> list[Entry]:
    from dlrun.results.load import find_run_dirs

    entries = []
    for folder in find_run_dirs(root):
        if is_sweep(folder.parent):
            continue  # a sweep's job: `dlrun runs --sweeps`, or `dlrun runs <sweep folder>`
        entries.append(run_entry(folder))
    return entries


def run_entry(folder: Path) -> Entry:
    summary = runs.read_summary(folder) or {}
    monitor = summary.get("monitor", "val_loss")
    best = summary.get(runs.best_key(monitor))
    epochs = f"{summary.get('best_epoch') or ''}/{summary.get('epochs_run') or ''}".strip("/")
    return Entry(
        started=_started(folder / runs.CONFIG, folder / runs.SUMMARY, folder),
        name=str(summary.get("name") or folder.name),
        status=str(summary.get("status", "no summary")),
        best=f"{monitor} {best:.4g}" if isinstance(best, (int, float)) else "",
        epochs=epochs,
        folder=folder,
    )


def sweep_entries(root: Path) -> list[Entry]:
    from dlrun.folders.sweep_index import index_rows, ranked

    entries = []
    for folder in find_sweeps(root):
        _, rows = index_rows(folder)
        counts: dict[str, int] = {}
        for row in rows:
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        metric, best_first = ranked(rows)
        value = best_first[0].get(metric) if metric and best_first else None
        best = (
            f"{metric.removeprefix('best_')} {float(value):.4g}" if value not in (None, "") else ""
        )
        entries.append(
            Entry(
                started=_started(folder / runs.SWEEP_STATE / "sweep.json", folder),
                name=folder.name.split("_", 1)[-1],
                status=", ".join(f"{n} {status}" for status, n in counts.items()) or "no jobs",
                best=best,
                epochs=f"{len(rows)} jobs",
                folder=folder,
            )
        )
    return entries


def newest(root: Path = DEFAULT_ROOT) -> Path | None:
    """The folder `dlrun report` with no PATH reports: the newest sweep, else the newest run."""
    for entries in (sweep_entries(root), run_entries(root)):
        if entries:
            return max(entries, key=lambda e: e.started).folder
    return None


def shown_path(folder: Path) -> str:
    try:
        return str(folder.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(folder)


def main(args: list[str]) -> int:
    p = argparse.ArgumentParser(prog="dlrun runs", description="Runs or sweeps, newest first.")
    p.add_argument("path", nargs="?", type=Path, default=DEFAULT_ROOT, help="default: outputs")
    p.add_argument("--sweeps", action="store_true", help="list sweeps instead of single runs")
    p.add_argument("-n", type=int, default=20, metavar="N", help="show the N newest (default 20)")
    p.error = lambda message: _raise(f"dlrun runs: {message}")  # type: ignore[method-assign]
    options = p.parse_args(args)
    if not options.path.is_dir():
        raise UsageError(f"{options.path}: no such folder (run dlrun train first?)")
    inside_sweep = is_sweep(options.path)
    if options.sweeps:
        entries = sweep_entries(options.path)
    elif inside_sweep:  # a sweep folder given: its jobs
        entries = [run_entry(f) for f in _job_folders(options.path)]
    else:
        entries = run_entries(options.path)
    entries.sort(key=lambda e: e.started, reverse=True)
    what = "sweeps" if options.sweeps else "runs"
    if not entries:
        print(f"no {what} under {options.path}")
        return 0
    print(f"{len(entries)} {what} under {options.path}, newest first")
    header = ("when", "name", "status", "best", "jobs" if options.sweeps else "epochs", "folder")
    rows = [
        (
            time.strftime("%Y-%m-%d %H:%M", time.localtime(e.started)),
            e.name,
            e.status,
            e.best,
            e.epochs,
            shown_path(e.folder),
        )
        for e in entries[: options.n]
    ]
    print("\n".join(aligned([header, *rows])))
    if len(entries) > options.n:
        print(f"... and {len(entries) - options.n} older (-n {len(entries)} shows all)")
    return 0


def aligned(rows: list[tuple[str, ...]]) -> list[str]:
    """Plain columns; the folder last and never cut, so it can be copied whole at any width."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join([*(c.ljust(w) for c, w in zip(row, widths)), row[-1]]) for row in rows]


def _job_folders(sweep: Path) -> list[Path]:
    from dlrun.results.load import find_run_dirs

    return find_run_dirs(sweep)


def _raise(message: str) -> None:
    raise UsageError(message)
