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
from dataclasses import dataclass, field
from pathlib import Path

from dlrun.errors import UnusableFile, UsageError
from dlrun.folders import runs, safe

DEFAULT_ROOT = Path("outputs")


MAX_CONFIG_BYTES = 1_000_000  # a config.yaml larger than this is not one dlrun wrote


@dataclass
class Entry:
    started: float  # seconds since the epoch
    name: str
    status: str
    best: str  # the best monitored value, e.g. "val_loss 1.234"
    epochs: str  # "best/run" for a run, the number of jobs for a sweep
    folder: Path
    test: str = ""  # the final test score, e.g. "acc 0.652"
    config: dict = field(default_factory=dict)  # the run's flat config (keys as users type them)


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
        test=test_score(summary),
        config=flat_config(folder),
    )


def test_score(summary: dict) -> str:
    """The run's final test score, as `acc 0.652` (`rmse 0.31` for regression); '' if none."""
    score = runs.score_name(str(summary.get("task", "classification")))
    for name in (score, "loss"):
        value = summary.get(f"test_{name}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return f"{name} {value:.4g}"
    return ""


def flat_config(folder: Path) -> dict:
    """config.yaml as flat keys, read as plain values (untrusted: dlrun.folders.safe: bounded,
    no aliases, never a link out of the folder, never resolved); {} when unusable."""
    try:
        config = safe.read_yaml(folder / runs.CONFIG, MAX_CONFIG_BYTES, root=folder)
    except (OSError, UnusableFile):
        return {}  # a YAML "billion laughs" flattened here held `dlrun runs` for minutes
    return runs.flatten(config) if isinstance(config, dict) else {}


def differences(entries: list[Entry]) -> list[str]:
    """Per entry, the settings that differ among these runs, as typed: `optimizer=adam, seed=1`."""
    import pandas as pd

    from dlrun.results.study import drop_implied, label, varying_keys

    table = pd.DataFrame([e.config for e in entries])
    if len(entries) < 2 or table.empty:
        return [""] * len(entries)
    keys = drop_implied(table, varying_keys(table, list(table.columns)))
    if "seed" in table and table["seed"].astype(str).nunique() > 1:
        keys.append("seed")
    return [label({k: row[k] for k in keys if k in row}) for _, row in table.iterrows()]


def sweep_entries(root: Path) -> list[Entry]:
    from dlrun.folders.sweep_index import index_rows
    from dlrun.folders.sweep_table import ranked

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
        score = next(
            (k for k in ("test_acc", "test_rmse", "test_loss") if any(k in r for r in rows)), None
        )
        top = best_first[0].get(score) if score and best_first else None
        entries.append(
            Entry(
                test=f"{score.removeprefix('test_')} {float(top):.4g}"
                if top not in (None, "")
                else "",
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
    print_entries(
        entries[: options.n],
        f"{len(entries)} {what} under {options.path}, newest first",
        options.sweeps,
    )
    if len(entries) > options.n:
        print(f"... and {len(entries) - options.n} older (-n {len(entries)} shows all)")
    return 0


def print_entries(entries: list[Entry], title: str, sweeps: bool) -> None:
    """A rich table: what differs, status, test score, best value, epochs or jobs, folder.

    The folder comes last and is never cut or folded, so it can be copied whole;
    off a terminal (a log, a pipe) no column is squeezed to 80 characters.
    """
    from rich.console import Console
    from rich.table import Table

    class Piped(Console):
        def on_broken_pipe(self) -> None:  # `dlrun runs | head`: dlrun's main ends quietly (141)
            raise BrokenPipeError

    console = Piped(highlight=False)
    if not console.is_terminal:
        console = Piped(highlight=False, width=max(console.width, 1000))
    table = Table(title=title, title_justify="left", box=None, pad_edge=False, header_style="bold")
    columns = ["when", "name", *([] if sweeps else ["differs"]), "status", "test", "best"]
    for column in columns:
        fold = column in ("differs", "status")
        table.add_column(column, overflow="fold" if fold else "ellipsis", no_wrap=not fold)
    table.add_column("jobs" if sweeps else "epochs", justify="right", no_wrap=True)
    table.add_column("folder", no_wrap=True, overflow="ignore")
    differs = differences(entries)
    for entry, differ in zip(entries, differs):
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.started))
        cells = [when, entry.name, *([] if sweeps else [differ or "-"]), entry.status]
        cells += [entry.test or "-", entry.best or "-", entry.epochs, shown_path(entry.folder)]
        table.add_row(*cells)
    console.print(table)


def _job_folders(sweep: Path) -> list[Path]:
    from dlrun.results.load import find_run_dirs

    return find_run_dirs(sweep)


def _raise(message: str) -> None:
    raise UsageError(message)
