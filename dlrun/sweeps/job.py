"""Sweeps: one job of a Hydra multirun, where it runs, and the callback that keeps the index.

`dlrun train -m` runs `run_job` once per job (through cli.train_task), and Hydra
calls `SweepIndex` (conf/train.yaml, hydra.callbacks) around the sweep and
each job. Hydra calls the job hooks in the process that ran the job (a joblib
worker, a SLURM task), so each job's end rebuilds sweep.csv there
(dlrun.folders.sweep_index): parallel jobs never wait for the driver, a crashed
driver leaves the rows so far, and jobs of a killed driver still on a cluster
complete the index themselves. docs/sweeps.md is the user's side of this.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from dlrun.config.compose import override_values
from dlrun.config.resolvers import register_resolvers
from dlrun.errors import UsageError, WriteError
from dlrun.folders import runs
from dlrun.folders.sweep_index import (
    Outcome,
    drive,
    finish,
    forget_unstarted,
    one_line,
    record_job,
    record_sweep,
    write_index,
)
from dlrun.placement import cpu_count, place_device, threads_per_job
from dlrun.run import runlog, signals
from dlrun.sweeps import count, workers
from dlrun.sweeps.count import count_jobs
from dlrun.sweeps.plan import follow_monitor, planned_jobs, swept_keys
from dlrun.sweeps.watch import Watch
from dlrun.toolbox.transfer import pretrain_source
from dlrun.trackers.loggers import finish_sweep

# Launcher workers unpickle this module (the callback) before they resolve
# hydra.sweep.subdir, which uses dlrun's resolvers.
register_resolvers()


# --- one job ------------------------------------------------------------------


def objective(summary: dict[str, Any], monitor: str) -> float:
    """best_<monitor>, or the worst possible value for a job that has none.

    hydra-optuna-sweeper 1.2 ends the whole search when a trial returns None or
    nan, so a failed job returns +inf (-inf when maximising): a bad trial.
    """
    value = summary.get(runs.best_key(monitor))
    if not isinstance(value, (int, float)) or math.isnan(value):
        return -math.inf if runs.higher_is_better(monitor) else math.inf
    return float(value)


def run_job(
    cfg: DictConfig,
    run_dir: Path,
    job_num: int,
    launcher: dict[str, Any],
    task_overrides: list[str],
) -> float:
    """Train one sweep job unless its folder already finished; record a failure, never raise it."""
    import torch

    from dlrun.run.runner import run

    monitor = cfg.trainer.early_stopping.monitor
    stop = workers.stop_check(run_dir.parent)  # a joblib worker: its driver stopped, or is gone
    if stop is not None and stop():
        print(f"dlrun: job {job_num} not started: the sweep was stopped ({stop()})")
        forget_unstarted(run_dir.parent, job_num, run_dir)  # counted `not started`, not interrupted
        workers.leave_if_orphaned()
        return objective({}, monitor)
    done = runs.read_summary(run_dir)
    if done is not None and done.get("status") in runs.FINISHED:
        print(f"dlrun: job {job_num} skipped: already {done['status']} in {run_dir}")
        return objective(done, monitor)
    resuming = continues(run_dir)
    if not resuming:
        (run_dir / runs.SUMMARY).unlink(missing_ok=True)  # a stale `failed` or `running`
    share = threads_per_job(launcher, cpu_count())  # the runner takes no more threads than this
    if cfg.device.name in ("auto", "cuda"):
        cfg.device.name = place_device(cfg.device.name, job_num, torch.cuda.device_count())
    # every line of the job says its number; parallel workers print plain lines, no bar
    parallel = "basic_launcher" not in str(launcher.get("_target_") or "basic_launcher")
    try:
        with runlog.job(job_num, parallel, share), signals.watching(stop):
            if resuming:
                from dlrun.run.resume import resume_run

                summary = resume_run(run_dir)
            else:
                pretrain_source(cfg, task_overrides, run)
                summary = run(cfg, run_dir)
    except KeyboardInterrupt as e:  # saved as interrupted; a worker starts no more jobs
        if stop is None:
            raise  # the driver's own process: Ctrl-C ends the sweep
        print(f"dlrun: job {job_num} {e}", file=sys.stderr)
        workers.leave_if_orphaned()
        return objective({}, monitor)
    except Exception as e:  # Ctrl-C is no Exception: it still ends the sweep
        error = one_line(record_failure(run_dir, cfg, e))
        print(f"dlrun: job {job_num} failed: {error}", file=sys.stderr)
        return objective({}, monitor)
    return objective(summary, monitor)


def continues(run_dir: Path) -> bool:
    """Whether a sweep job goes on from its own last.pt instead of starting over.

    Every job that did not finish but saved an epoch continues as `dlrun train
    resume=<folder>` would, so metrics.csv stays one run and no finished epoch
    is trained twice: interrupted (Ctrl-C, SIGTERM), killed (kill -9, out of
    memory: its summary still says `running`), requeued, timed out, cancelled,
    failed. A job with no last.pt starts over (docs/sweeps.md).
    """
    if not runs.last_checkpoint(run_dir).is_file():
        return False
    status = (runs.read_summary(run_dir) or {}).get("status")
    return status not in runs.FINISHED


def record_status(run_dir: Path, status: str, error: str) -> None:
    """Set a job's status and one-line `error` in its summary.json, keeping the rest.

    For what only the launcher knows (requeued, timeout, cancelled); a job that
    never started gets a summary with these two keys alone.
    """
    summary = runs.read_summary(run_dir) or {}
    run_dir.mkdir(parents=True, exist_ok=True)
    runs.write_json(run_dir / runs.SUMMARY, {**summary, "status": status, "error": one_line(error)})


def record_failure(run_dir: Path, cfg: DictConfig, error: BaseException) -> str:
    """Leave summary.json saying `failed` with a one-line error; return that line.

    Once training has started, run() writes this itself (with the epochs so
    far); errors before that (a bad setting, an optimizer that rejects lr)
    would otherwise leave no trace in the run folder.
    """
    summary = runs.read_summary(run_dir) or {}
    if summary.get("status") == runs.FAILED and summary.get("error"):
        return summary["error"]
    message = one_line(f"{type(error).__name__}: {error}")
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / runs.CONFIG).exists():
        runs.atomic_write_text(run_dir / runs.CONFIG, OmegaConf.to_yaml(cfg))
    base = {"seed": cfg.seed, "name": cfg.name, "monitor": cfg.trainer.early_stopping.monitor}
    failed = {**base, **summary, "status": runs.FAILED, "error": message}
    runs.write_json(run_dir / runs.SUMMARY, failed)
    return message


# --- the sweep as a whole -----------------------------------------------------


def check_launcher(config: DictConfig, folder: Path) -> None:
    """A launcher that can tell before any job that the sweep can never run says so now.

    Its class's `before_sweep(config)` raises UsageError (hydra/launcher=slurm:
    a request no node can grant); the sweep folder, if resolving its name just
    made it, is removed again: a refused sweep leaves nothing behind.
    """
    target = OmegaConf.select(config, "hydra.launcher._target_")
    if not target:
        return
    from hydra.utils import get_class

    try:
        launcher = get_class(target)
    except Exception:
        return  # Hydra reports a launcher it cannot load itself
    check = getattr(launcher, "before_sweep", None)
    if check is not None:
        try:
            check(config)
        except UsageError:
            from dlrun.paths import remove_created

            remove_created(folder)
            raise


class SweepRefused(BaseException):
    """Another driver holds the sweep folder: ends `dlrun train -m` before any job (exit 2)."""


_driver: dict[str, Any] = {}  # the sweep this process drives: its folder, then its outcome


def take_outcome(interrupted: bool = False) -> Outcome | None:
    """The sweep this process drove, once (cli.train_main); finishes one that ended early."""
    folder, outcome = _driver.pop("folder", None), _driver.pop("outcome", None)
    if outcome is None and folder is not None and (folder / runs.SWEEP_STATE / "jobs").is_dir():
        # Ctrl-C or a broken launcher: the rows so far, complete
        outcome = finish(folder, runs.INTERRUPTED if interrupted else runs.KILLED)
        finish_sweep(folder, failed=True, settings=_driver.get("logger"))
    _stop_handling()
    lock = _driver.pop("lock", None)
    if lock is not None:
        lock.release()
    return outcome


def _stop_handling() -> None:
    handled = _driver.pop("signals", None)  # a joblib driver's (dlrun.sweeps.workers.start)
    if handled is not None:
        handled.__exit__(None, None, None)


def _in_sweep(config: DictConfig) -> bool:
    return config.hydra.mode == RunMode.MULTIRUN


class SweepIndex(Callback):
    """sweep.csv as jobs end, in whichever process ran them; the table and outcome at the end."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        folder = Path(config.hydra.sweep.dir)
        _driver.clear()
        try:
            check_launcher(config, folder)
            _driver["lock"] = drive(folder)  # .dlrun/ made or checked: never a link
            links = [p for p in folder.iterdir() if p.is_symlink()]
            if links:  # a job folder (or sweep.csv) that leads elsewhere: never written through
                raise UsageError(
                    f"{links[0]} is a symbolic link; dlrun never writes through a link "
                    "inside a sweep folder: remove it, or give a new hydra.sweep.dir"
                )
        except (UsageError, WriteError) as e:
            # Hydra turns a callback's exception into a warning; a BaseException stops the sweep
            raise SweepRefused(str(e)) from None
        _driver["signals"] = workers.start(
            folder, OmegaConf.select(config, "hydra.launcher._target_")
        )
        follow_monitor(config)
        params = OmegaConf.select(config, "hydra.sweeper.params")
        params = OmegaConf.to_container(params) if params is not None else None
        keys = swept_keys(list(config.hydra.overrides.task), params)
        record_sweep(folder, keys, planned_jobs(config))
        _driver["folder"] = folder
        _driver["logger"] = OmegaConf.select(config, "logger")  # the trackers the user chose
        trials = OmegaConf.select(config, "hydra.sweeper.n_trials")
        _driver["count"] = total = count_jobs(list(config.hydra.overrides.task), params, trials)
        _driver["started"], _driver["done"] = time.perf_counter(), 0
        count.mark_start()
        jobs = "a sweep" if total is None else f"a sweep of {total} job{'s' * (total != 1)}"
        print(f"dlrun: {jobs} in {folder}", flush=True)
        if "optuna" in str(OmegaConf.select(config, "hydra.sweeper._target_")):
            import optuna  # its own handler prints `[I ...] A new study created` at INFO

            optuna.logging.set_verbosity(optuna.logging.WARNING)
        if "submitit" in str(OmegaConf.select(config, "hydra.launcher._target_")):
            _driver["watch"] = Watch(folder, total, keys).start()  # its jobs print to .submitit/

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if _in_sweep(config):
            overrides = override_values(list(config.hydra.overrides.task))
            run_dir = Path(config.hydra.runtime.output_dir)
            record_job(Path(config.hydra.sweep.dir), config.hydra.job.num, overrides, run_dir)
            print(count.start_line(config, overrides, _driver), flush=True)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if _in_sweep(config):
            write_index(Path(config.hydra.sweep.dir))
            if "done" in _driver:
                _driver["done"] += 1

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        folder = _driver.get("folder", Path(config.hydra.sweep.dir))
        if "watch" in _driver:
            _driver.pop("watch").stop()
        stopped = signals.requested()  # a joblib driver's workers stopped at epoch boundaries
        _driver["outcome"] = outcome = finish(folder, runs.INTERRUPTED if stopped else runs.KILLED)
        # the MLflow parent run, if any, in the store the user chose
        finish_sweep(folder, failed=bool(outcome.failed), settings=_driver.get("logger"))
        if stopped:
            error = signals.interrupted()
            _stop_handling()
            raise error
