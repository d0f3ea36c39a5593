"""Sweeps: one job of a Hydra multirun, the sweep index, and where each job runs.

`dlrun train -m` runs `run_job` once per job (through cli._task), and Hydra
calls `SweepIndex` (conf/train.yaml, hydra.callbacks) around the sweep and each
job. Hydra calls the job hooks in the process that ran the job (a joblib
worker, a SLURM task), so each job's end rebuilds sweep.csv from the job
folders' summary.json under a lock: parallel jobs never interleave rows, a
crashed driver leaves the rows so far, and a re-run (resume) cannot duplicate
them. docs/sweeps.md is the user's side of this.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, read_write

from dlrun import runs
from dlrun.cli import register_resolvers

try:
    import fcntl
except ImportError:  # Windows: the atomic replace alone still keeps sweep.csv whole
    fcntl = None

# Launcher workers unpickle this module (the callback) before they resolve
# hydra.sweep.subdir, which uses dlrun's resolvers.
register_resolvers()

INDEX = "sweep.csv"
STATE = ".dlrun"  # in the sweep folder: one small JSON per job, the swept keys, the lock
BROKEN = ("failed", "interrupted", "killed")  # any of these makes the sweep exit with 1
SHOWN = 20  # rows in the end-of-sweep table; sweep.csv has them all


# --- one job ------------------------------------------------------------------


def cpu_count() -> int:
    """CPUs this process may use (SLURM and taskset restrict it below os.cpu_count())."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def default_n_jobs() -> int:
    """Parallel local jobs (hydra/launcher=parallel): one per GPU, else one per CPU."""
    import torch

    n_gpus = torch.cuda.device_count()
    return n_gpus if n_gpus > 0 else cpu_count()


def threads_per_job(launcher: dict[str, Any], n_cpus: int) -> int | None:
    """Torch threads for one job so that parallel jobs share the CPUs; None: torch's default."""
    if launcher.get("cpus_per_task"):
        return int(launcher["cpus_per_task"])
    n_jobs = launcher.get("n_jobs")
    if n_jobs is not None:
        n_jobs = (
            n_cpus + 1 + n_jobs if n_jobs < 0 else n_jobs
        )  # joblib: -1 all CPUs, -2 all but one
        return max(1, n_cpus // max(1, n_jobs))
    if "submitit" in str(launcher.get("_target_", "")):
        return 1  # submitit_local starts every job at once; SLURM grants one CPU unless asked
    return None  # the basic launcher runs one job at a time


def place_device(name: str, job_num: int, n_gpus: int) -> str:
    """Round robin over the GPUs a job sees: job k runs on cuda:(k mod n) when n > 1."""
    if n_gpus > 1 and name in ("auto", "cuda"):
        return f"cuda:{job_num % n_gpus}"
    return name


def maximize(monitor: str) -> bool:
    return monitor.endswith("_acc")


def objective(summary: dict[str, Any], monitor: str) -> float:
    """best_<monitor>, or the worst possible value for a job that has none.

    hydra-optuna-sweeper 1.2 ends the whole search when a trial returns None or
    nan, so a failed job returns +inf (-inf when maximising): a bad trial.
    """
    value = summary.get("best_" + monitor)
    if value is None or math.isnan(value):
        return -math.inf if maximize(monitor) else math.inf
    return float(value)


def one_line(text: str, limit: int = 300) -> str:
    return " ".join(str(text).split())[:limit]


def run_job(cfg: DictConfig, run_dir: Path, job_num: int, launcher: dict[str, Any]) -> float:
    """Train one sweep job unless its folder already finished; record any failure, never raise it."""
    import torch

    from dlrun.train import run

    monitor = cfg.trainer.early_stopping.monitor
    done = runs.read_summary(run_dir)
    if done is not None and done.get("status") in runs.FINISHED:
        print(f"dlrun: job {job_num} skipped: already {done['status']} in {run_dir}")
        return objective(done, monitor)
    (run_dir / "summary.json").unlink(missing_ok=True)  # a stale `failed` or `running` from before
    threads = threads_per_job(launcher, cpu_count())
    if threads is not None:
        torch.set_num_threads(threads)
    if cfg.device.name in ("auto", "cuda"):
        cfg.device.name = place_device(cfg.device.name, job_num, torch.cuda.device_count())
    try:
        summary = run(cfg, run_dir)
    except Exception as e:  # Ctrl-C is no Exception: it still ends the sweep
        print(f"dlrun: job {job_num} failed: {record_failure(run_dir, cfg, e)}", file=sys.stderr)
        return objective({}, monitor)
    return objective(summary, monitor)


def record_failure(run_dir: Path, cfg: DictConfig, error: BaseException) -> str:
    """Leave summary.json saying `failed` with a one-line error; return that line.

    Once training has started, run() writes this itself (with the epochs so
    far); errors before that (a bad setting, an optimizer that rejects lr)
    would otherwise leave no trace in the run folder.
    """
    summary = runs.read_summary(run_dir) or {}
    if summary.get("status") == "failed" and summary.get("error"):
        return summary["error"]
    message = one_line(f"{type(error).__name__}: {error}")
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / "config.yaml").exists():
        (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    base = {"seed": cfg.seed, "name": cfg.name, "monitor": cfg.trainer.early_stopping.monitor}
    runs.write_json(
        run_dir / "summary.json", {**base, **summary, "status": "failed", "error": message}
    )
    return message


# --- the index ----------------------------------------------------------------


def parse_overrides(overrides: list[str]) -> dict[str, str]:
    """{'optimizer': 'adam', 'seed': '1'} from ['optimizer=adam', '+seed=1'], values as typed."""
    pairs = (override.split("=", 1) for override in overrides if "=" in override)
    return {key.lstrip("+~"): value for key, value in pairs}


def swept_keys(overrides: list[str], params: dict[str, Any] | None = None) -> list[str]:
    """The keys a sweep varies: sweeps on the command line and in hydra.sweeper.params."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    # params first: a fixed value on the command line replaces a swept one (as Optuna's sweeper does)
    lines = [*(f"{key}={value}" for key, value in (params or {}).items()), *overrides]
    try:
        parsed = OverridesParser.create().parse_overrides(lines)
    except Exception:
        return []
    keys: dict[str, None] = {}
    for override in parsed:
        if override.is_hydra_override():
            continue
        if override.is_sweep_override():
            keys[override.key_or_group] = None
        else:
            keys.pop(override.key_or_group, None)
    return list(keys)


def record_job(sweep_dir: Path, job_num: int, overrides: list[str], run_dir: Path) -> None:
    """Note a job as it starts, so that one killed later still has its row."""
    folder = sweep_dir / STATE / "jobs"
    folder.mkdir(parents=True, exist_ok=True)
    record = {
        "job": job_num,
        "overrides": parse_overrides(overrides),
        "run_dir": os.path.relpath(run_dir, sweep_dir),
    }
    runs.write_json(folder / f"{job_num}.json", record)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _status(summary: dict[str, Any], final: bool) -> tuple[str, str]:
    status, error = summary.get("status", "running"), summary.get("error") or ""
    if status == "diverged" and not error:
        error = f"training loss diverged at epoch {summary.get('epochs_run')}"
    if status == "interrupted" and not error:
        error = f"interrupted (Ctrl-C or a signal) after epoch {summary.get('epochs_run')}"
    if final and status == "running":  # the sweep is over, so this job died without a word
        status, error = (
            "killed",
            "ended without a final summary.json (killed, out of memory or timed out?)",
        )
    return status, one_line(error)


def index_rows(sweep_dir: Path, final: bool = False) -> tuple[list[str], list[dict[str, Any]]]:
    """(columns, one row per job) from the job records and their run folders' summary.json."""
    jobs = [_read_json(p) for p in (sweep_dir / STATE / "jobs").glob("*.json")]
    jobs = sorted((j for j in jobs if j), key=lambda j: j["job"])
    declared = (_read_json(sweep_dir / STATE / "sweep.json") or {}).get("swept", [])
    varying = {
        k
        for j in jobs
        for k, v in j["overrides"].items()
        if any(o["overrides"].get(k) != v for o in jobs)
    }
    params = [*declared, *sorted(varying - set(declared))]
    head = ["job", *params, *(["seed"] if "seed" not in params else []), "status"]
    rows, metrics = [], set()
    for job in jobs:
        summary = runs.read_summary(sweep_dir / job["run_dir"]) or {}
        if (
            "best_monitor" in summary and "monitor" in summary
        ):  # a run that stopped early says it so
            summary["best_" + summary["monitor"]] = summary.pop("best_monitor")
        status, error = _status(summary, final)
        row = {"job": job["job"], **{k: job["overrides"].get(k, "") for k in params}}
        row.setdefault("seed", summary.get("seed", ""))
        scores = {
            k: v
            for k, v in summary.items()
            if k.startswith(("best_", "test_")) and k != "best_epoch"
        }
        metrics.update(scores)
        row.update(
            status=status, **scores, n_params=summary.get("n_params"), wall_s=summary.get("wall_s")
        )
        rows.append({**row, "run_dir": job["run_dir"], "error": error})
    columns = [*head, *sorted(metrics), "n_params", "wall_s", "run_dir", "error"]
    return columns, rows


@contextmanager
def _locked(path: Path):
    """An exclusive lock file, held while one process rebuilds the index."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield  # the lock goes with the file's closing


def write_index(sweep_dir: Path, final: bool = False) -> tuple[list[str], list[dict[str, Any]]]:
    """Rebuild sweep.csv; `final`: the sweep is over, so a job still `running` was killed."""
    with _locked(sweep_dir / STATE / "lock"):
        columns, rows = index_rows(sweep_dir, final)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        runs.atomic_write_text(sweep_dir / INDEX, buffer.getvalue())
    return columns, rows


# --- the end of a sweep -------------------------------------------------------


@dataclass
class Outcome:
    folder: Path
    rows: list[dict[str, Any]]

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [row for row in self.rows if row["status"] in BROKEN]

    @property
    def message(self) -> str:
        return (
            f"{len(self.failed)} of {len(self.rows)} jobs failed (see {self.folder / INDEX}); "
            f"to run only the unfinished jobs, repeat the command with hydra.sweep.dir={self.folder}"
        )


def ranked(rows: list[dict[str, Any]]) -> tuple[str | None, list[dict[str, Any]]]:
    """(the ranking metric, rows best first); failed jobs and jobs without a value come last."""
    metric = next((k for row in rows for k in row if k.startswith("best_")), None)
    if metric is None:
        return None, rows
    sign = -1 if maximize(metric) else 1

    def key(row: dict[str, Any]) -> tuple[bool, float]:
        value = row.get(metric)
        missing = value in (None, "") or row["status"] in BROKEN
        return missing, 0.0 if missing else sign * float(value)

    return metric, sorted(rows, key=key)


def _cell(value: Any) -> str:
    """4 significant digits for numbers, Optuna's 0.0012345678901234 included."""
    try:
        return (
            f"{float(value):.4g}" if "." in str(value) else str(value if value is not None else "")
        )
    except ValueError:
        return str(value)


def print_table(folder: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    """The sweep at a glance: best first, then every job that failed or diverged, with its error."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    metric, best_first = ranked(rows)
    hidden = {"n_params", "run_dir", "error"}
    if any(c in columns for c in ("test_acc", "test_rmse")):
        hidden.add("test_loss")  # keeps the table within a terminal's width
    shown = [c for c in columns if c not in hidden]
    caption = f"best {metric.removeprefix('best_')} first" if metric else None
    table = Table(title=f"{folder} ({len(rows)} jobs)", caption=caption)
    for column in shown:
        table.add_column(column, overflow="fold", no_wrap=column in ("job", "status"))
    for row in best_first[:SHOWN]:
        table.add_row(*(_cell(row.get(c)) for c in shown))
    console.print(table)
    if len(rows) > SHOWN:
        console.print(f"... and {len(rows) - SHOWN} more in {folder / INDEX}", markup=False)
    for row in rows:
        if row["status"] in (*BROKEN, "diverged"):
            console.print(
                f"job {row['job']} {row['status']}: {row['error']} ({row['run_dir']})", markup=False
            )


def finish(folder: Path) -> Outcome:
    """Complete the index (no job of this sweep still runs) and print the table."""
    columns, rows = write_index(folder, final=True)
    if rows:
        print_table(folder, columns, rows)
    print(f"dlrun: sweep index {folder / INDEX}")
    return Outcome(folder, rows)


_driver: dict[str, Any] = {}  # the sweep this process drives: its folder, then its outcome


def take_outcome() -> Outcome | None:
    """The sweep this process drove, once (cli.train_main); finishes one that ended early."""
    folder, outcome = _driver.pop("folder", None), _driver.pop("outcome", None)
    if outcome is None and folder is not None and (folder / STATE / "jobs").is_dir():
        outcome = finish(folder)  # Ctrl-C or a broken launcher: the rows so far, complete
    return outcome


# --- the Hydra callback -------------------------------------------------------


def _follow_monitor(config: DictConfig) -> None:
    """Point an Optuna sweeper the way the monitored metric improves (val_acc up, val_loss down).

    Hydra builds the sweeper from this config right after on_multirun_start,
    so this covers a plain `hydra/sweeper=optuna` too.
    """
    sweeper = config.hydra.sweeper
    if "direction" not in sweeper or OmegaConf.is_list(sweeper.direction):
        return  # not Optuna, or several objectives: the user's choice
    monitor = config.trainer.early_stopping.monitor
    wanted = "maximize" if maximize(monitor) else "minimize"
    if getattr(sweeper.direction, "name", str(sweeper.direction)) != wanted:
        with read_write(sweeper):
            sweeper.direction = wanted
        print(
            f"dlrun: hydra.sweeper.direction={wanted}, as trainer.early_stopping.monitor={monitor}"
        )


def _in_sweep(config: DictConfig) -> bool:
    return config.hydra.mode == RunMode.MULTIRUN


class SweepIndex(Callback):
    """sweep.csv as jobs end, in whichever process ran them; the table and exit code at the end."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        folder = Path(config.hydra.sweep.dir)
        (folder / STATE).mkdir(parents=True, exist_ok=True)
        _follow_monitor(config)
        params = OmegaConf.select(config, "hydra.sweeper.params")
        params = OmegaConf.to_container(params) if params is not None else None
        swept = swept_keys(list(config.hydra.overrides.task), params)
        runs.write_json(folder / STATE / "sweep.json", {"swept": swept})
        _driver.clear()
        _driver["folder"] = folder

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if _in_sweep(config):
            run_dir = Path(config.hydra.runtime.output_dir)
            record_job(
                Path(config.hydra.sweep.dir),
                config.hydra.job.num,
                list(config.hydra.overrides.task),
                run_dir,
            )

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if _in_sweep(config):
            write_index(Path(config.hydra.sweep.dir))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        folder = _driver.get("folder", Path(config.hydra.sweep.dir))
        _driver["outcome"] = finish(folder)
