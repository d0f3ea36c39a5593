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
from omegaconf import OmegaConf

from dlrun.errors import Interrupted
from dlrun.folders import runs
from dlrun.folders.sweep_index import write_index
from dlrun.sweeps.job import objective, record_status


def call(launcher, parent_call, *args: Any) -> JobReturn:
    requeue = signal.getsignal(signal.SIGUSR2)  # submitit's checkpoint_and_try_requeue
    overrides, _, job_num = args[:3]
    say_jobs(launcher.config, [job_num])
    try:
        return parent_call(*args)
    except Interrupted as stop:
        cfg = launcher.job_config(overrides, job_num)
        return after(stop, cfg, job_num, requeue, launcher.params.get("max_num_timeout", 0))


def say_jobs(config, nums: list[int]) -> None:
    """The task log's first lines: which of the sweep's jobs this SLURM task trains."""
    from dlrun.sweeps.count import count_jobs, job_line

    params = OmegaConf.select(config, "hydra.sweeper.params")
    params = OmegaConf.to_container(params) if params is not None else None
    trials = OmegaConf.select(config, "hydra.sweeper.n_trials")
    total = count_jobs(list(config.hydra.overrides.task), params, trials)
    where = f"SLURM task {task_id()}" + (
        f", one of a stack of {len(nums)}" if len(nums) > 1 else ""
    )
    for num in nums:
        print(f"{job_line(num, total, None, 0)} in {where}", flush=True)


def task_id() -> str:
    """This SLURM task's id as squeue shows it (`4817_3`)."""
    import submitit

    try:
        return str(submitit.JobEnvironment().job_id)
    except Exception:  # not inside a SLURM job (a test)
        return os.environ.get("SLURM_JOB_ID", "?")


def after(stop: Interrupted, cfg, job_num: int, requeue, max_requeues: int) -> JobReturn:
    """One job's end after SLURM's signal (after_all for a task of one job)."""
    return after_all(stop, [(cfg, job_num)], requeue, max_requeues)[0]


def after_all(stop: Interrupted, jobs: list, requeue, max_requeues: int) -> list[JobReturn]:
    """The task's jobs after SLURM's signal stopped them at an epoch boundary.

    `jobs`: (config, job number) of every job of the task; those already
    finished keep their end. SIGUSR2 with submitit's handler: the others are
    `requeued`, then the handler requeues the task (the same jobs again) and
    exits, or, after max_requeues, they end `timeout`. Any other signal: the
    task exits without a result and the driver reads the end from squeue.
    """
    from submitit.core.utils import UncompletedJobError

    sweep_dir = Path(str(jobs[0][0].hydra.sweep.dir))
    rets, open_jobs = [], []
    for cfg, job_num in jobs:
        run_dir = sweep_dir / str(cfg.hydra.sweep.subdir)
        summary = runs.read_summary(run_dir) or {}
        ret = JobReturn(overrides=list(cfg.hydra.overrides.task), status=JobStatus.COMPLETED)
        ret.working_dir = str(run_dir)
        monitor = cfg.trainer.early_stopping.monitor
        ret.return_value = objective(summary, monitor)  # the worst value for an unfinished one
        rets.append(ret)
        if summary.get("status") not in runs.FINISHED:  # else the signal came after its last epoch
            open_jobs.append((job_num, run_dir, summary.get("epochs_run")))
    if not open_jobs:
        write_index(sweep_dir)
        return rets
    if stop.signal_name != "SIGUSR2" or not callable(requeue):
        for job_num, _, epoch in open_jobs:
            print(
                f"dlrun: job {job_num} stopped by {stop.signal_name} after epoch {epoch} "
                "(scancel or preemption); if SLURM runs it again, it continues from last.pt",
                flush=True,
            )
        write_index(sweep_dir)
        sys.exit(stop.exit_code)  # no result: the driver reads the end from squeue
    restarts = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
    for _, run_dir, epoch in open_jobs:
        said = f"time limit near: stopped after epoch {epoch}, requeued"
        record_status(run_dir, runs.REQUEUED, said)
    write_index(sweep_dir)
    for job_num, _, epoch in open_jobs:
        print(f"dlrun: job {job_num} stopped after epoch {epoch} for its time limit", flush=True)
    try:
        requeue(signal.SIGUSR2, None)  # checkpoint(), `scontrol requeue`, sys.exit
    except UncompletedJobError:
        for _, run_dir, epoch in open_jobs:
            record_status(
                run_dir,
                runs.TIMEOUT,
                f"stopped after epoch {epoch} at its time limit, {restarts} requeues "
                f"(hydra.launcher.max_num_timeout={max_requeues}); repeat the sweep to continue it",
            )
        write_index(sweep_dir)
    return rets
