"""The SLURM task's side of hydra/launcher=slurm: what SLURM's signals end as.

submitit binds SIGUSR2 (SLURM's warning, `--signal=USR2@signal_delay_s`) to
its checkpoint-and-requeue, which exits at once, mid-epoch. dlrun's run
binds it to "stop after this epoch" instead (dlrun.run.signals); once the run has
stopped with last.pt at that boundary, this calls submitit's own handler: it
pickles the launcher's checkpoint() (the same job again), runs `scontrol
requeue` and exits, or, after hydra.launcher.max_num_timeout requeues, raises
UncompletedJobError: the job then ends `timeout`. The requeued job continues
from its folder (dlrun.sweeps.job.continues). SIGTERM (scancel, preemption) ends
the run at its epoch boundary too; the task then exits without a result and
the driver reads from squeue how it ended (`cancelled`, or running again).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus

from dlrun.errors import Interrupted
from dlrun.folders import runs
from dlrun.folders.sweep_index import write_index
from dlrun.sweeps.job import objective, record_status


def call(launcher, parent_call, *args: Any) -> JobReturn:
    requeue = signal.getsignal(signal.SIGUSR2)  # submitit's checkpoint_and_try_requeue
    try:
        return parent_call(*args)
    except Interrupted as stop:
        overrides, _, job_num = args[:3]
        cfg = launcher.job_config(overrides, job_num)
        return after(stop, cfg, job_num, requeue, launcher.params.get("max_num_timeout", 0))


def after(stop: Interrupted, cfg, job_num: int, requeue, max_requeues: int) -> JobReturn:
    from submitit.core.utils import UncompletedJobError

    sweep_dir = Path(str(cfg.hydra.sweep.dir))
    run_dir = sweep_dir / str(cfg.hydra.sweep.subdir)
    summary = runs.read_summary(run_dir) or {}
    epoch = summary.get("epochs_run")
    monitor = cfg.trainer.early_stopping.monitor
    ret = JobReturn(overrides=list(cfg.hydra.overrides.task), status=JobStatus.COMPLETED)
    ret.working_dir = str(run_dir)
    if summary.get("status") in runs.FINISHED:  # the signal came after the last epoch
        write_index(sweep_dir)
        ret.return_value = objective(summary, monitor)
        return ret
    if stop.signal_name != "SIGUSR2" or not callable(requeue):
        print(
            f"dlrun: job {job_num} stopped by {stop.signal_name} after epoch {epoch} "
            "(scancel or preemption); if SLURM runs it again, it continues from last.pt",
            flush=True,
        )
        write_index(sweep_dir)
        sys.exit(stop.exit_code)  # no result: the driver reads the end from squeue
    restarts = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
    record_status(run_dir, runs.REQUEUED, f"time limit near: stopped after epoch {epoch}, requeued")
    write_index(sweep_dir)
    print(f"dlrun: job {job_num} stopped after epoch {epoch} for its time limit", flush=True)
    try:
        requeue(signal.SIGUSR2, None)  # checkpoint(), `scontrol requeue`, sys.exit
    except UncompletedJobError:
        record_status(
            run_dir,
            runs.TIMEOUT,
            f"stopped after epoch {epoch} at its time limit, {restarts} requeues "
            f"(hydra.launcher.max_num_timeout={max_requeues}); repeat the sweep to continue it",
        )
        write_index(sweep_dir)
    ret.return_value = objective({}, monitor)
    return ret
