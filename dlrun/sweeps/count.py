"""Which job of how many, and the time the sweep has left: the line a sweep prints per job.

The count is the basic sweeper's: the product of the values of every swept key,
from the command line and `hydra.sweeper.params` (a command-line value of a
key replaces its params'). An Optuna search runs `n_trials`; anything else
(a glob of choices) leaves the count unknown, and the line says only which job.
"""

from __future__ import annotations

import math
import time
from typing import Any

from dlrun.config.compose import parse_overrides


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


def job_line(num: int, total: int | None, started: float | None, done: int) -> str:
    """`dlrun: job #4 (5 of 9), about 1m20s left in the sweep`: Hydra's job number and the count."""
    from dlrun.run.progress import clock

    if total is None:
        return f"dlrun: job #{num}"
    line = f"dlrun: job #{num} ({num + 1} of {total})"
    if started is not None and done > 0 and total > done:
        left = (time.perf_counter() - started) / done * (total - done)
        line += f", about {clock(left)} left in the sweep"
    return line
