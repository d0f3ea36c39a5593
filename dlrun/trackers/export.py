"""`dlrun export tensorboard|mlflow PATH...`: trackers filled from run folders already written.

Reads the run folders (dlrun.results.load), replays each metrics.csv row and
the summary through the same tracker a live run uses (dlrun.trackers.loggers), so an
exported run looks like one logged as it trained. Runs of a sweep are nested
under the sweep's parent run in MLflow, as live. Nothing is instantiated
from the folders; only their numbers and config values are copied.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dlrun.errors import ConfigError, RunFailed, UsageError
from dlrun.folders import runs
from dlrun.trackers.background import cause
from dlrun.trackers.loggers import TRACKERS, check, finish_sweep, tracker_module


class Settings(dict):
    """The logger settings a tracker reads (`logger.tracking_uri`...), as attributes."""

    __getattr__ = dict.get


class Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting (the CLI prints one line)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"dlrun export: {message}")


def parser() -> Parser:
    p = Parser(
        prog="dlrun export",
        description="Copy finished run folders into TensorBoard event files or an MLflow store.",
    )
    p.add_argument("kind", choices=list(TRACKERS), help="the tracker to fill")
    p.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="run folders, sweeps, or folders holding them",
    )
    p.add_argument(
        "--tracking-uri",
        help="MLflow's store (default: MLFLOW_TRACKING_URI, else MLflow's default)",
    )
    p.add_argument("--experiment", default="dlrun", help="MLflow experiment (default: dlrun)")
    return p


def copy(module: Any, folders: list[Path], settings: Settings, kind: str) -> int:
    """Each run folder replayed into the tracker; how many were copied."""
    from dlrun.results.load import Incomplete, read_run

    done, sweeps = 0, {}  # each sweep: when its last copied job ended (ms), for its parent run
    for folder in folders:
        try:
            config, summary, metrics, _ = read_run(folder)
        except Incomplete as e:
            print(f"dlrun: skipped {folder}: {e}", file=sys.stderr)
            continue
        if not module.prepare_export(folder, settings):
            continue
        # the run's own times: it began when its first file, config.yaml, was written
        started = (folder / runs.CONFIG).stat().st_mtime
        tracker = module.Tracker(folder, config, settings, 0, started=started)
        for row in metrics.to_dict("records") if metrics is not None else []:
            tracker.epoch(row)
        tracker.finish(summary)
        done += 1
        sweep = runs.sweep_of(folder)
        if sweep is not None:
            ended = getattr(tracker, "ended_ms", None)
            sweeps[sweep] = max(sweeps.get(sweep) or 0, ended or 0) or None
    for sweep, ended in sorted(sweeps.items()):
        if kind == "mlflow":  # a parent run in MLflow; TensorBoard has none to end
            finish_sweep(sweep, failed=False, settings=settings, end_ms=ended)
    return done


def main(args: list[str]) -> int:
    from dlrun.results.load import find_run_dirs

    options = parser().parse_args(args)
    for path in options.paths:
        if not path.is_dir():
            raise UsageError(f"{path}: no such folder")
    settings = Settings(
        {options.kind: True, "tracking_uri": options.tracking_uri, "experiment": options.experiment}
    )
    try:
        check({"logger": settings})
    except ConfigError as e:
        raise UsageError(str(e)) from None
    module = tracker_module(options.kind)
    folders = sorted({f.resolve() for p in options.paths for f in find_run_dirs(p)})
    if not folders:
        raise UsageError(f"{', '.join(map(str, options.paths))}: no run folders here")
    try:
        done = copy(module, folders, settings, options.kind)
    except (UsageError, ConfigError):
        raise
    except Exception as e:  # a store that cannot be reached or written: one line, exit 1
        where = module.store(settings, options.paths[0])
        raise RunFailed(f"dlrun export {options.kind}: {where}: {cause(e)}") from None
    print(module.exported(done, options.paths, settings))
    return 0
