"""Which job of how many, and the time the sweep has left: the line a sweep prints per job.

The basic launcher runs its jobs in the driver, which counts them as they end;
the parallel launchers' workers (joblib, submitit) read the count the driver
recorded in the sweep's `.dlrun/sweep.json` and the jobs that ended since the
sweep started (DLRUN_SWEEP_STARTED, which they inherit).

The count is the basic sweeper's: the product of the values of every swept key,
from the command line and `hydra.sweeper.params` (a command-line value of a
key replaces its params'). An Optuna search runs `n_trials`; anything else
(a glob of choices) leaves the count unknown, and the line says only which job.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

from dlrun.config.compose import parse_overrides
from dlrun.folders import runs
from dlrun.folders.sweep_index import expected_jobs, swept
from dlrun.paths import short_numbers, yaml_words

STARTED = "DLRUN_SWEEP_STARTED"  # the driver's time.time() as the sweep started


def count_jobs(
    overrides: list[str], params: dict[str, Any] | None, trials: int | None
) -> int | None:
    """How many jobs the sweep runs, or None when that cannot be told before it runs."""
    if trials is not None:
        return int(trials)
    lines = [*(f"{key}={value}" for key, value in (params or {}).items()), *overrides]
    try:
        parsed = parse_overrides(lines)
    except Exception:
        return None
    sizes: dict[str, int | None] = {}
    for override in parsed:
        if override.is_hydra_override():
            continue
        if not override.is_sweep_override():
            sizes[override.key_or_group] = 1
            continue
        try:
            sizes[override.key_or_group] = len(list(override.sweep_string_iterator()))
        except Exception:  # glob(*) needs Hydra's config loader to list its choices
            sizes[override.key_or_group] = None
    if any(size is None for size in sizes.values()):
        return None
    return math.prod(sizes.values()) if sizes else 1


def job_line(
    num: int, total: int | None, elapsed: float | None, done: int, settings: str = ""
) -> str:
    """`dlrun: job #4 (5 of 9) seed=4, about 1m20s left in the sweep`: Hydra's job number,
    the count, the job's own values of the swept keys, and the time left at the rate so far."""
    from dlrun.run.progress import clock

    line = f"dlrun: job #{num}" if total is None else f"dlrun: job #{num} ({num + 1} of {total})"
    if settings:
        line += f" {short_numbers(yaml_words(settings))}"
    if total is not None and elapsed is not None and done > 0 and total > done:
        left = elapsed / done * (total - done)
        line += f", about {clock(left)} left in the sweep"
    return line


def mark_start() -> None:
    """In the driver: the sweep's start, for workers to measure its rate against."""
    os.environ[STARTED] = repr(time.time())


def started() -> float | None:
    """In a driver or worker: when the sweep started (time.time()), if the driver said."""
    try:
        value = float(os.environ.get(STARTED, ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def ended_since(sweep_dir: Path, since: float) -> int:
    """Jobs of this sweep that ended (any status but running) after `since`: the parallel
    workers' shared count, read from the job folders' summaries."""
    ended = 0
    try:
        folders = [p for p in Path(sweep_dir).iterdir() if p.is_dir() and not p.is_symlink()]
    except OSError:
        return 0
    for folder in folders:
        path = folder / runs.SUMMARY
        try:
            if path.is_symlink() or path.stat().st_mtime < since:
                continue
        except OSError:
            continue
        summary = runs.read_summary(folder)
        if summary is not None and summary.get("status") not in (None, runs.RUNNING):
            ended += 1
    return ended


def start_line(config: Any, overrides: dict[str, str], driver: dict[str, Any]) -> str:
    """Which job of how many, its swept values, the sweep's time left: counted by the driver
    when it runs the jobs itself (basic launcher), else from the sweep folder (workers)."""
    num, folder = config.hydra.job.num, Path(config.hydra.sweep.dir)
    if "started" in driver:
        total, done = driver["count"], driver["done"]
        elapsed = time.perf_counter() - driver["started"]
    else:  # a joblib or submitit worker: the driver's record and the jobs ended since it began
        trials = config.hydra.sweeper.get("n_trials")
        total = expected_jobs(folder) if trials is None else int(trials)
        since = started()
        done = ended_since(folder, since) if since is not None else 0
        elapsed = time.time() - since if since is not None else None
    keys = swept(folder)
    settings = " ".join(f"{k}={v}" for k, v in overrides.items() if k.lstrip("+~") in keys)
    return job_line(num, total, elapsed, done, settings)
