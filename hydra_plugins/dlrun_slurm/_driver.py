"""The sweep's side of hydra/launcher=slurm: what to submit, how big, and waiting that ends.

The plugin's own launch() submits every job and blocks on each result in
turn: a job that vanishes (scancel, a lost node) blocks it forever without
SLURM accounting. Here finished jobs are skipped, the rest go out as one
array sized from the jobs, and the driver reads results from their files
and the queue from squeue, so every job ends in bounded time with a status
in its run folder.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import DictConfig, OmegaConf

from dlrun.config.compose import override_values
from dlrun.folders import runs
from dlrun.folders.sweep_index import one_line, record_job, write_index
from dlrun.sweeps.job import objective, record_status
from hydra_plugins.dlrun_slurm import _cluster, _stack


@dataclass
class Job:
    num: int
    overrides: list[str]
    cfg: DictConfig

    @property
    def run_dir(self) -> Path:
        return Path(str(self.cfg.hydra.sweep.dir)) / str(self.cfg.hydra.sweep.subdir)

    def done(self, value: Any) -> JobReturn:
        """The sweeper's record of a job dlrun has recorded itself (the run folder says how)."""
        ret = JobReturn(overrides=self.overrides, status=JobStatus.COMPLETED)
        ret.working_dir = str(self.run_dir)
        ret.return_value = value
        return ret

    def worst(self) -> JobReturn:
        return self.done(objective({}, self.cfg.trainer.early_stopping.monitor))


def launcher_keys(config: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(config.hydra.launcher, resolve=True)


def check_sweep(config: DictConfig) -> None:
    """Before the sweep folder exists: can SLURM ever run a job of the shared settings' size?"""
    threads = OmegaConf.select(config, "trainer.threads")
    device = str(OmegaConf.select(config, "device.name") or "auto")
    keys = launcher_keys(config)
    _stack.check_stack(keys.get("stack", 1))
    _cluster.check(_cluster.size(keys, device, threads))


def launch(launcher, job_overrides, initial_job_idx: int) -> list[JobReturn]:
    jobs = [
        Job(initial_job_idx + i, list(o), launcher.job_config(o, initial_job_idx + i))
        for i, o in enumerate(job_overrides)
    ]
    results: dict[int, JobReturn] = {}
    todo = []
    for job in jobs:
        summary = runs.read_summary(job.run_dir) or {}
        if summary.get("status") in runs.FINISHED:
            print(f"dlrun: job {job.num} skipped: already {summary['status']} in {job.run_dir}")
            results[job.num] = job.done(objective(summary, job.cfg.trainer.early_stopping.monitor))
        else:
            todo.append(job)
    if todo:
        request = request_of(launcher, todo)
        _cluster.check(request)  # a swept device=cuda or trainer.threads may ask for more
        tasks = _stack.pack(todo, _stack.check_stack(launcher.own.get("stack", 1)))
        submitted = submit(launcher, tasks, request)
        results.update(wait(launcher, tasks, submitted))
    return [results[job.num] for job in jobs]


def executor(launcher, request: _cluster.Request):
    """submitit's executor with the launcher's parameters, CPUs and GPUs as sized."""
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    params = dict(launcher.params)
    params.update(cpus_per_task=request.cpus, gpus_per_node=request.gpus or None)
    params.update(mem_gb=request.mem_gb)
    folder = params.pop("submitit_folder")
    timeouts = params.pop("max_num_timeout")
    ex = submitit.AutoExecutor(folder=folder, cluster="slurm", slurm_max_num_timeout=timeouts)
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    ex.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    return ex


def request_of(launcher, jobs: list[Job]) -> _cluster.Request:
    """What each job of the array asks for: the largest of the jobs' own sizes."""
    keys = {**launcher.params, **launcher.own}  # nodes_have_gpus is dlrun's own key
    sizes = [_cluster.size(keys, str(j.cfg.device.name), j.cfg.trainer.threads) for j in jobs]
    return _cluster.largest(sizes)


def submit(launcher, tasks: list[list[Job]], request: _cluster.Request) -> list:
    """One array of the unfinished jobs, a task per job or per stack; each job keeps its number."""
    import submitit

    sweep_dir = Path(str(launcher.config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    state = Singleton.get_state()
    stacked = any(len(task) > 1 for task in tasks)
    if stacked:  # each task trains its jobs as one stack (_stack.StackTask)
        function = _stack.StackTask(launcher)
        args = [([(j.overrides, j.num) for j in task], state) for task in tasks]
    else:  # the plugin's own call, one job per task
        function = launcher
        args = [(j.overrides, "hydra.sweep.dir", j.num, f"job_id_for_{j.num}", state)
                for [j] in tasks]  # fmt: skip
    try:
        submitted = executor(launcher, request).map_array(function, *zip(*args))
    except submitit.core.utils.FailedJobError as e:  # sbatch refused: its own words
        from dlrun.errors import UsageError

        raise UsageError(f"sbatch refused the sweep: {one_line(str(e))}") from None
    ids = submitted[0].job_id.split("_")[0]
    numbers = ", ".join(str(j.num) for task in tasks for j in task)
    each = f"{request}".replace(" each", " per task" if stacked else " each")
    print(f"dlrun: SLURM job {ids}: jobs {numbers} ({each}); logs in {sweep_dir}/.submitit/")
    if stacked:
        for task, job in zip(tasks, submitted):
            names = ", ".join(str(j.num) for j in task)
            print(
                f"dlrun: SLURM task {job.job_id}: jobs {names}" + " as one stack" * (len(task) > 1)
            )
    return submitted


def wait(launcher, tasks: list[list[Job]], submitted: list) -> dict[int, JobReturn]:
    """Each job's result, or its loss noticed within `lost_after_s` of SLURM ending its task.

    Result files are looked at every second (cheap), squeue every `poll_s`.
    """
    own = {"poll_s": 10.0, "pending_every_s": 60.0, "lost_after_s": 45.0, **launcher.own}
    watch = _cluster.Watch(own["lost_after_s"], own["pending_every_s"])
    waiting = {task.job_id: (task, jobs) for task, jobs in zip(submitted, tasks)}
    array_id = submitted[0].job_id.split("_")[0]
    results: dict[int, JobReturn] = {}
    asked = 0.0
    try:
        with stopped_by_sigterm():
            while True:
                for tid, (task, jobs) in list(waiting.items()):
                    if task.paths.result_pickle.exists():
                        results.update(read_result(task, jobs))
                        del waiting[tid]
                if not waiting:
                    return results
                if time.monotonic() - asked >= own["poll_s"]:
                    asked = time.monotonic()
                    states = _cluster.queue(array_id)
                    if states is not None:  # squeue could not answer: judge nothing, ask again
                        look(watch, waiting, states, results)
                time.sleep(1.0)
    except KeyboardInterrupt:  # the driver stops; the jobs are SLURM's and run on
        left = sum(len(jobs) for _, jobs in waiting.values())
        print(
            f"dlrun: the driver stopped; {left} jobs run on in SLURM job {array_id} "
            f"(squeue -j {array_id}; scancel {array_id} stops them), each writing its own folder",
            file=sys.stderr,
            flush=True,
        )
        raise


@contextmanager
def stopped_by_sigterm():
    """SIGTERM (kill, a driver job's own time limit) stops the driver as Ctrl-C does."""
    from dlrun.errors import Interrupted

    def stop(signum, frame):
        raise Interrupted("SIGTERM", 143)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def look(watch: _cluster.Watch, waiting: dict, states: dict, results: dict) -> None:
    """Record the tasks squeue says are lost; print why the others pend, now and then."""
    for tid, state in watch.lost(set(waiting), states).items():
        task, jobs = waiting.pop(tid)
        if task.paths.result_pickle.exists():  # it came in just now
            results.update(read_result(task, jobs))
            continue
        if state.startswith("PENDING"):
            _cluster.cancel(tid)
        for job in jobs:  # a stack's replicas that finished before SLURM ended it keep their end
            summary = runs.read_summary(job.run_dir) or {}
            if summary.get("status") in runs.FINISHED:
                monitor = job.cfg.trainer.early_stopping.monitor
                results[job.num] = job.done(objective(summary, monitor))
            else:
                results[job.num] = lost(job, tid, state)
    reasons = watch.pending(set(waiting), states)
    if reasons:
        said = ", ".join(
            f"job{'s' * (len(waiting[t][1]) > 1)} {', '.join(str(j.num) for j in waiting[t][1])} ({r})"
            for t, r in sorted(reasons.items())
        )
        print(f"dlrun: pending in SLURM: {said}", flush=True)


def read_result(task, jobs: list[Job]) -> dict[int, JobReturn]:
    """The task's JobReturn per job; a task that raised outside the training: its jobs `failed`."""
    from submitit.core.utils import pickle_load

    outcome, value = pickle_load(task.paths.result_pickle)
    if outcome == "success":
        values = value if isinstance(value, list) else [value]  # a stack's, or one job's
        return {job.num: ret for job, ret in zip(jobs, values)}
    error = one_line((str(value).strip().splitlines() or ["?"])[-1])
    ended = {}
    for job in jobs:
        print(f"dlrun: job {job.num} failed in SLURM task {task.job_id}: {error}", file=sys.stderr)
        finish(job, runs.FAILED, f"SLURM task {task.job_id}: {error}")
        ended[job.num] = job.worst()
    return ended


# what SLURM's final state means for the job, and what the user does next
ENDS = {
    "CANCELLED": (runs.CANCELLED, "scancel, or an administrator"),
    "TIMEOUT": (runs.TIMEOUT, "its time limit came before an epoch ended: raise timeout_min"),
    "OUT_OF_MEMORY": (runs.FAILED, "out of memory: raise hydra.launcher.mem_gb"),
    "PENDING": (runs.CANCELLED, "cancelled by dlrun: SLURM would never start it"),
}


def lost(job: Job, tid: str, state: str) -> JobReturn:
    status, why = ENDS.get(state.split()[0], (runs.CANCELLED, "the scheduler ended it"))
    message = f"SLURM task {tid} ended without a result: {state}; {why}"
    print(f"dlrun: job {job.num} {status}: {message}", file=sys.stderr, flush=True)
    finish(job, status, message)
    return job.worst()


def finish(job: Job, status: str, message: str) -> None:
    """Record a job's end in its run folder and the index (also for a job that never started)."""
    sweep_dir = Path(str(job.cfg.hydra.sweep.dir))
    if not (sweep_dir / runs.SWEEP_STATE / "jobs" / f"{job.num}.json").exists():
        record_job(sweep_dir, job.num, override_values(job.overrides), job.run_dir)
    if runs.read_summary(job.run_dir) is None:  # it never started: what the index shows of it
        job.run_dir.mkdir(parents=True, exist_ok=True)
        keys = ("seed", "name", "trainer.early_stopping.monitor")
        base = {k.rsplit(".", 1)[-1]: OmegaConf.select(job.cfg, k) for k in keys}
        runs.write_json(job.run_dir / runs.SUMMARY, base)
    if not runs.is_finished(job.run_dir):
        record_status(job.run_dir, status, message)
    write_index(sweep_dir)
