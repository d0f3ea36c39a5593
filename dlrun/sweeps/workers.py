"""A parallel sweep's workers stop with their driver: no orphans (hydra/launcher=parallel, joblib).

joblib runs jobs in worker processes, which a signal to the driver alone never
reaches: SIGTERM killed the driver at once and left its workers training,
unsupervised, into the folders a re-run of the sweep then raced them for. So:

- SIGTERM or SIGINT to the driver writes `.dlrun/stop` (the signal's name) in
  the sweep folder. Each worker reads it at its job's next epoch boundary and
  stops there as a single run does (summary `interrupted`, last.pt saved), and
  starts none of the jobs still queued; the driver then ends the sweep as
  interrupted, with the index complete. A second signal stops at once.
- A worker whose driver is gone (kill -9, out of memory: its parent process
  changed) stops its job at the next epoch boundary, saved and resumable, and
  starts no other.

The basic launcher runs its jobs in the driver, where run() handles signals itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dlrun.folders import runs
from dlrun.run import signals

DRIVER = "DLRUN_SWEEP_DRIVER"  # the driver's process id, inherited by its workers
STOP = "stop"  # in the sweep's .dlrun/: the signal the driver got; start no more jobs


def start(sweep_dir: Path, launcher_target: str | None) -> Any:
    """In the driver as a joblib sweep starts: its signal handler (exit it at the end), or None."""
    if "joblib" not in str(launcher_target or ""):
        return None
    os.environ[DRIVER] = str(os.getpid())
    stop_file = Path(sweep_dir) / runs.SWEEP_STATE / STOP
    stop_file.unlink(missing_ok=True)

    def tell_workers(signum: int) -> None:
        import signal

        try:
            stop_file.write_text(signal.Signals(signum).name + "\n")
        except OSError:
            pass  # a full disk: a second signal still stops the driver at once

    handled = signals.handled(forward=tell_workers)
    handled.__enter__()
    return handled


def driver() -> int | None:
    """In a worker: the driver's process id; None in the driver itself or outside a sweep."""
    pid = os.environ.get(DRIVER, "")
    if not pid.isdigit() or int(pid) == os.getpid():
        return None
    return int(pid)


def stop_check(sweep_dir: Path) -> Callable[[], str | None] | None:
    """In a worker: what asks its job to stop (dlrun.run.signals.watching); None elsewhere."""
    pid = driver()
    if pid is None:
        return None
    stop_file = Path(sweep_dir) / runs.SWEEP_STATE / STOP

    def check() -> str | None:
        if os.getppid() != pid:
            return "SIGHUP"  # the driver is gone, as a terminal that hangs up
        if stop_file.is_file() and not stop_file.is_symlink():
            name = stop_file.read_text()[:10].strip()
            return name if name in ("SIGINT", "SIGTERM", "SIGUSR2") else "SIGTERM"
        return None

    return check


def leave_if_orphaned() -> None:
    """In a worker whose driver is gone: exit now, its job saved; nobody waits for its result."""
    pid = driver()
    if pid is not None and os.getppid() != pid:
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(129)  # 128 + SIGHUP, as the stop is recorded
