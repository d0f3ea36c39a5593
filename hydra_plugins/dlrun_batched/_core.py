"""What the batched launcher does with a sweep's jobs.

Per job, what Hydra's basic launcher does (hydra.core.utils.run_job): compose
its config (each job once, derived where that is the same: _compose.py), point HydraConfig at it, create its output folder with `.hydra/`,
call the callbacks' on_job_start and on_job_end (dlrun's sweep index) and
return a JobReturn, in job order. In between, jobs that differ only in values
(dlrun.sweeps.replicas.group_jobs) train as stacks (dlrun.sweeps.batched.train_stack),
groups of different shapes one after another, each stack capped by memory.
A job that cannot join a stack runs the ordinary way (dlrun.sweeps.job.run_job,
through Hydra's run_job), with a one-line note saying why; so does a job whose
folder already finished (it is skipped there, as on a resumed sweep).
"""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import (
    JobReturn,
    JobRuntime,
    JobStatus,
    _save_config,
    configure_log,
    run_job,
    setup_globals,
)
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from dlrun.errors import ConfigError
from dlrun.folders import runs
from dlrun.sweeps.batched import train_stack
from dlrun.sweeps.job import continues, objective, record_failure
from dlrun.sweeps.replicas import (
    build_replica,
    group_jobs,
    resume_replica,
    stack_limit,
    unbatchable_reason,
)


class Job:
    """One job of the sweep: its composed config, its folder, and Hydra's bookkeeping."""

    def __init__(self, launcher: Any, num: int, overrides: Sequence[str], job_id: Any = None):
        self.launcher, self.num = launcher, num
        loader = launcher.hydra_context.config_loader  # _compose.ComposingLoader, or Hydra's
        config = loader.load_sweep_config(launcher.config, list(overrides))
        with open_dict(config):
            config.hydra.job.id = num if job_id is None else job_id  # a SLURM task: its own id
            config.hydra.job.num = num
        self.config = config
        out, self.task_cfg, self.cfg = task_configs(config)
        self.run_dir = Path(out)
        self.result: JobReturn | None = None

    def hydra(self):
        """A context in which HydraConfig is this job's, restored afterwards."""
        return _HydraConfigOf(self.config)

    def alone(self, resume_stacks: bool = False) -> str | None:
        """Why this job takes the ordinary path ('' for no note), or None to join a stack."""
        return alone_reason(self.config, self.cfg, self.run_dir, resume_stacks)

    def run_alone(self) -> None:
        """The basic launcher's way: Hydra's run_job with dlrun's task (dlrun.sweeps.job.run_job)."""
        launcher = self.launcher
        self.result = run_job(
            hydra_context=launcher.hydra_context,
            task_function=launcher.task_function,
            config=self.config,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )
        configure_log(launcher.config.hydra.hydra_logging, launcher.config.hydra.verbose)

    def start(self, resuming: bool = False) -> None:
        """run_job's part before the task: folder, `.hydra/`, on_job_start."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if not resuming:
            (self.run_dir / runs.SUMMARY).unlink(missing_ok=True)  # a stale `failed` or `running`
        with self.hydra():
            hydra_cfg = self.config.hydra
            if hydra_cfg.output_subdir is not None:
                folder = self.run_dir / str(hydra_cfg.output_subdir)
                _save_config(self.task_cfg, "config.yaml", folder)
                _save_config(HydraConfig.instance().cfg, "hydra.yaml", folder)
                _save_config(hydra_cfg.overrides.task, "overrides.yaml", folder)
            self.callbacks.on_job_start(config=self.config, task_function=self.task_function)

    def end(self, summary: dict[str, Any]) -> None:
        """run_job's part after the task: the JobReturn and on_job_end."""
        with self.hydra():
            ret = JobReturn()
            ret.cfg = self.task_cfg
            ret.hydra_cfg = copy.deepcopy(HydraConfig.instance().cfg)
            ret.overrides = OmegaConf.to_container(self.config.hydra.overrides.task)
            ret.working_dir = os.getcwd()
            ret.return_value = objective(summary, self.cfg.trainer.early_stopping.monitor)
            ret.status = JobStatus.COMPLETED  # as dlrun's task: a failed job is a result
            ret.task_name = JobRuntime.instance().get("name")
            self.callbacks.on_job_end(config=self.config, job_return=ret)
        self.result = ret

    def fail(self, error: BaseException) -> None:
        """A job that failed before training: its folder says why, the sweep goes on."""
        message = record_failure(self.run_dir, self.cfg, error)
        print(f"dlrun: job {self.num} failed: {message}", file=sys.stderr)  # as run_job says it
        self.end(runs.read_summary(self.run_dir) or {})

    @property
    def callbacks(self) -> Any:
        return self.launcher.hydra_context.callbacks

    @property
    def task_function(self) -> Any:
        return self.launcher.task_function


def task_configs(config: DictConfig) -> tuple[str, DictConfig, DictConfig]:
    """A composed job's folder, its task config as Hydra passes it, and that config resolved.

    Resolved now, while HydraConfig is this job's: a stack trains many jobs at once.
    """
    with _HydraConfigOf(config):
        sweep = config.hydra.sweep
        out = os.path.abspath(os.path.join(str(sweep.dir), str(sweep.subdir)))
        with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
            config.hydra.runtime.output_dir = out
        HydraConfig.instance().set_config(config)  # with its folder, as run_job does
        task_cfg = copy.deepcopy(config)
        with read_write(task_cfg), open_dict(task_cfg):
            del task_cfg["hydra"]
        cfg = copy.deepcopy(task_cfg)
        OmegaConf.resolve(cfg)
    return out, task_cfg, cfg


def alone_reason(
    config: DictConfig, cfg: DictConfig, run_dir: Path, resume_stacks: bool = False
) -> str | None:
    """Why a job takes the ordinary path ('' for no note), or None when it may join a stack.

    `config`: the job's composed config (with `hydra`), `cfg`: its task config resolved.
    `resume_stacks`: a job that continues from its last.pt may join a stack of jobs
    that continue from the same epoch (a requeued SLURM task's); else it runs alone.
    """
    done = runs.read_summary(run_dir)
    if done is not None and done.get("status") in runs.FINISHED:
        return ""  # dlrun.sweeps.job.run_job skips it and says so
    if continues(run_dir) and not resume_stacks:
        return f"continues from its {runs.CHECKPOINTS}/{runs.LAST}"
    job = config.hydra.job
    if job.chdir:
        return "hydra.job.chdir=true: each job needs its own working directory"
    if job.env_set:
        return "hydra.job.env_set: each job needs its own environment"
    return unbatchable_reason(cfg)


class _HydraConfigOf:
    def __init__(self, config: DictConfig):
        self.config = config

    def __enter__(self) -> None:
        self.saved = HydraConfig.instance().cfg
        HydraConfig.instance().set_config(self.config)

    def __exit__(self, *exc: Any) -> None:
        HydraConfig.instance().cfg = self.saved


def launch(launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list:
    if launcher.max_replicas is not None and launcher.max_replicas < 1:
        raise ConfigError(
            f"hydra.launcher.max_replicas={launcher.max_replicas} must be at least 1 "
            "(or null: as many as fit in memory)"
        )
    setup_globals()
    configure_log(launcher.config.hydra.hydra_logging, launcher.config.hydra.verbose)
    Path(str(launcher.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    jobs = [Job(launcher, initial_job_idx + i, o) for i, o in enumerate(job_overrides)]
    run_jobs(jobs, launcher.max_replicas, launcher.exact_dropout)
    return [job.result for job in jobs]


def run_jobs(
    jobs: list[Job], max_replicas: int | None, exact_dropout: bool, resume_stacks: bool = False
) -> None:
    """Train the jobs: those that share shapes as stacks, the others alone, each with its note.

    Also a SLURM task's stack (hydra_plugins/dlrun_slurm), with `resume_stacks`: jobs
    that continue from their own last.pt at the same epoch (a requeued stack) train
    as one stack again, each resumed as `resume=<folder>` would resume it.
    """
    reasons = {j: job.alone(resume_stacks) for j, job in enumerate(jobs)}
    stackable = [j for j, reason in reasons.items() if reason is None]
    groups, _ = group_jobs([jobs[j].cfg for j in stackable])
    group_of = {}
    for group in groups:
        members = [stackable[k] for k in group]
        for j in members:
            group_of[j] = members
    for j, job in enumerate(jobs):
        if job.result is not None:
            continue  # trained in an earlier job's stack
        members = group_of.get(j, [j])
        if len(members) == 1:
            reason = reasons[j] if reasons[j] is not None else "no other job shares its shapes"
            if reason:
                print(f"dlrun: job {job.num} runs alone: {reason}")
            job.run_alone()
        else:
            run_group([jobs[m] for m in members], max_replicas, exact_dropout, resume_stacks)


def run_group(
    jobs: list[Job], max_replicas: int | None, exact_dropout: bool, resume_stacks: bool = False
) -> None:
    """Build each job's replica, train them in stacks of at most stack_limit replicas.

    With `resume_stacks`, a job with its own last.pt is built from its folder's config
    and resumed; replicas that resume from another epoch than the stack's start a new one.
    """
    stack: list[tuple[Job, Any, dict | None]] = []
    limit = max_replicas
    for job in jobs:
        resuming = resume_stacks and continues(job.run_dir)
        previous = (runs.read_summary(job.run_dir) or {}) if resuming else None
        job.start(resuming)
        try:
            replica = build_replica(job.cfg if not resuming else folder_config_of(job.run_dir))
            if resuming:
                resume_replica(replica, job.run_dir)
        except Exception as e:  # a bad value only visible now (optimizer.lr=-1), a bad last.pt
            job.fail(e)
            continue
        if stack and replica.state.epoch != stack[0][1].state.epoch:
            train(stack, exact_dropout)
            stack = []
        if not stack:
            limit = stack_limit(replica, max_replicas)
        stack.append((job, replica, previous))
        if len(stack) >= limit:
            train(stack, exact_dropout)
            stack = []
    if stack:
        train(stack, exact_dropout)


def folder_config_of(run_dir: Path) -> DictConfig:
    """The config a resume of the folder trains (dlrun.run.resume.folder_config), as a job's."""
    from dlrun.run.resume import folder_config

    cfg = folder_config(run_dir, {})
    cfg.resume = None  # resumed by resume_replica, into the stack
    return cfg


def train(stack: list[tuple[Job, Any, dict | None]], exact_dropout: bool) -> None:
    jobs = [job for job, _, _ in stack]
    replicas = [replica for _, replica, _ in stack]
    try:
        train_stack(
            replicas,
            [job.run_dir for job in jobs],
            [f"job {job.num}" for job in jobs],
            lambda i, summary: jobs[i].end(summary),
            exact_dropout,
            previous=[previous for _, _, previous in stack],
        )
    except Exception as e:  # before training (a folder that cannot be written)
        for job in jobs:
            if job.result is None:
                job.fail(e)
