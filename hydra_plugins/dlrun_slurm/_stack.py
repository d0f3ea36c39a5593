"""`hydra.launcher.stack=N`: the jobs the batched launcher would stack share one SLURM task.

The driver's side (`pack`): the unfinished jobs are grouped by the batched
launcher's own rules (hydra_plugins/dlrun_batched/_core.alone_reason,
dlrun.sweeps.replicas.group_jobs) into tasks of at most N jobs; a job that
cannot join a stack gets a task of its own and the batched launcher's note.
The task's side (`StackTask`): the batched launcher's jobs and stacked trainer
(_core.Job, _core.run_jobs) in the SLURM task, with what _job.py does for a
solo job when SLURM's signals come: every replica stops at the same epoch
boundary and is saved; SIGUSR2 requeues the task (the same jobs), and its
unfinished replicas then train as one stack again, each resumed from its own
last.pt (dlrun.sweeps.replicas.resume_replica; the local batched launcher runs
such a job alone instead).
"""

from __future__ import annotations

import copy
import signal
from typing import Any

from hydra.core.utils import JobReturn

from dlrun.errors import Interrupted, UsageError


def check_stack(stack: Any) -> int:
    """hydra.launcher.stack as an int of at least 1, else UsageError (one line)."""
    if isinstance(stack, bool) or not isinstance(stack, int) or stack < 1:
        raise UsageError(
            f"hydra.launcher.stack={stack} must be a whole number of at least 1 "
            "(jobs per SLURM task; 1: one job per task)"
        )
    return stack


def pack(jobs: list, stack: int) -> list[list]:
    """The driver's jobs (_driver.Job) in SLURM tasks: stacks of at most `stack`, in sweep order."""
    if stack <= 1:
        return [[job] for job in jobs]
    from dlrun.sweeps.replicas import group_jobs
    from hydra_plugins.dlrun_batched._core import alone_reason, task_configs

    reasons, cfgs = {}, {}
    for job in jobs:
        _, _, cfg = task_configs(copy.deepcopy(job.cfg))
        reason = alone_reason(job.cfg, cfg, job.run_dir, resume_stacks=True)
        reasons[job.num], cfgs[job.num] = reason, cfg
    stackable = [job for job in jobs if reasons[job.num] is None]
    capped, _ = group_jobs([cfgs[j.num] for j in stackable], max_replicas=stack)
    whole, _ = group_jobs([cfgs[j.num] for j in stackable])
    shared = {stackable[k].num for group in whole if len(group) > 1 for k in group}
    tasks = [[stackable[k] for k in group] for group in capped]
    for job in jobs:
        reason = reasons[job.num]
        if reason is None and job.num not in shared:
            reason = "no other job shares its shapes"
        if reason:
            print(f"dlrun: job {job.num} runs alone: {reason}")
        if reasons[job.num] is not None:
            tasks.append([job])
    return sorted(tasks, key=lambda task: task[0].num)


class StackTask:
    """What each array task of a stacked sweep runs (submitit pickles it with the launcher)."""

    def __init__(self, launcher: Any):
        self.launcher = launcher

    def __call__(self, numbered: list[tuple[list[str], int]], state: Any) -> list[JobReturn]:
        from hydra.core.singleton import Singleton
        from hydra.core.utils import setup_globals

        from hydra_plugins.dlrun_batched._core import Job, run_jobs
        from hydra_plugins.dlrun_slurm import _job

        launcher = self.launcher
        requeue = signal.getsignal(signal.SIGUSR2)  # submitit's checkpoint_and_try_requeue
        Singleton.set_state(state)
        setup_globals()
        _job.say_jobs(launcher.config, [num for _, num in numbered])
        task_id = _job.task_id()
        jobs = [Job(launcher, num, overrides, job_id=task_id) for overrides, num in numbered]
        try:
            if len(jobs) == 1:
                jobs[0].run_alone()  # a job the driver gave a task of its own
            else:
                exact = launcher.own.get("exact_dropout", True)
                run_jobs(jobs, launcher.own.get("stack"), exact, resume_stacks=True)
        except Interrupted as stop:
            ended = [(job.config, job.num) for job in jobs]
            timeouts = launcher.params.get("max_num_timeout", 0)
            return _job.after_all(stop, ended, requeue, timeouts)
        return [job.result for job in jobs]

    def checkpoint(self, *args: Any) -> Any:
        """submitit's requeue: the same task again; each job continues from its own folder."""
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args)
