"""A sweep's workers stop with their driver: no orphans (parallel, joblib, submitit_local).

joblib and submitit_local run jobs in other processes (joblib's workers, a
submitit controller per job and the task it starts), which a signal to the
driver alone never reaches: SIGTERM killed the driver at once and left them
training, unsupervised, into the folders a re-run of the sweep then raced them
for. So:

- SIGTERM or SIGINT to the driver writes `.dlrun/stop` (the signal's name) in
  the sweep folder. Each worker reads it at its job's next epoch boundary and
  stops there as a single run does (summary `interrupted`, last.pt saved), and
  starts none of the jobs still queued; the driver then ends the sweep as
  interrupted, with the index complete. A second signal stops at once.
- A worker whose driver is gone (kill -9, out of memory: the driver is no
  longer among its ancestors, its parent or its controller's parent) stops its
  job at the next epoch boundary, saved and resumable, and starts no other.

The basic launcher (with or without the Optuna sweeper) and the batched one run
their jobs in the driver, where run() handles signals itself. The SLURM
launchers' jobs run on other machines: hydra/launcher=slurm has its own rules.
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
# launchers whose jobs run in processes under the driver, on this machine
LOCAL_WORKERS = (
    "hydra_joblib_launcher.",
    "hydra_submitit_launcher.submitit_launcher.LocalLauncher",
)


def start(sweep_dir: Path, launcher_target: str | None) -> Any:
    """In the driver as a sweep with local workers starts: its signal handler (exit it at the
    end), or None."""
    if not any(name in str(launcher_target or "") for name in LOCAL_WORKERS):
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
        if not descends_from(pid):
            return "SIGHUP"  # the driver is gone, as a terminal that hangs up
        if stop_file.is_file() and not stop_file.is_symlink():
            name = stop_file.read_text()[:10].strip()
            return name if name in ("SIGINT", "SIGTERM", "SIGUSR2") else "SIGTERM"
        return None

    return check


def leave_if_orphaned() -> None:
    """In a worker whose driver is gone: exit now, its job saved; nobody waits for its result."""
    pid = driver()
    if pid is not None and not descends_from(pid):
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(129)  # 128 + SIGHUP, as the stop is recorded


def descends_from(pid: int, depth: int = 8) -> bool:
    """Whether process `pid` is this process's parent, or (Linux) its parent's parent...

    A joblib worker's parent is the driver; a submitit_local task's parent is
    its controller, whose parent is the driver until the driver dies (then it
    is init, or a subreaper). Without /proc, the parent alone is checked.
    """
    parent = os.getppid()
    for _ in range(depth):
        if parent == pid:
            return True
        if parent <= 1:
            return False
        try:
            stat = Path(f"/proc/{parent}/stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])  # the name may hold spaces or ')'
        except (OSError, ValueError, IndexError):
            return False
    return False
