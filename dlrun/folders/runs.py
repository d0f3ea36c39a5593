"""The run folder: the one contract between training and reporting, and its vocabulary.

config.yaml, metrics.csv, layers.csv, summary.json, run.log, checkpoints/{best,last}.pt
(docs/run-folder.md lists every field). Every name a writer or reader of a run
folder needs is defined here once: file names, statuses, metric columns, which
metric is better. Writers are atomic where a reader could otherwise see half a
file, and append-and-flush for the curves.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dlrun.errors import ConfigError, UnusableFile, WriteError
from dlrun.folders import safe
from dlrun.folders.provenance import dlrun_version, git_commit, provenance  # noqa: F401

# --- file names -----------------------------------------------------------------

CONFIG = "config.yaml"  # the resolved config
METRICS = "metrics.csv"  # one row per epoch
LAYERS = "layers.csv"  # per-layer diagnostics per epoch
SUMMARY = "summary.json"  # status, best and final metrics, provenance
CHECKPOINTS = "checkpoints"  # folder of LAST and BEST
LAST = "last.pt"  # resumes training exactly
BEST = "best.pt"  # the kept weights (early stopping's best epoch)
PREDICTIONS = "predictions.npz"  # regression runs: predictions on a fixed grid
RUN_LOG = "run.log"  # every line the run printed, and every warning
HYDRA = ".hydra"  # Hydra's own record of the composed config and overrides
LOCK = ".lock"  # held by the process training into the folder (dlrun.folders.runs.exclusive)
RUN_FILES = (SUMMARY, METRICS, CONFIG)  # a folder holding any of these is a run folder
SWEEP_INDEX = "sweep.csv"  # at a sweep's root: one row per job
SWEEP_STATE = ".dlrun"  # at a sweep's root: the jobs' records and the index lock


def last_checkpoint(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINTS / LAST


def best_checkpoint(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINTS / BEST


# --- statuses (summary.json `status`, sweep.csv `status`) ---------------------------

RUNNING = "running"
COMPLETED = "completed"  # every epoch ran (or trainer.target_loss was reached)
EARLY_STOPPED = "early_stopped"
DIVERGED = "diverged"  # training loss nan or above trainer.divergence_loss
INTERRUPTED = "interrupted"  # Ctrl-C or a signal; resumable
FAILED = "failed"  # training raised; `error` says why
KILLED = "killed"  # sweep.csv only: the job ended without writing a final summary
# A cluster job's end as its launcher records it (hydra/launcher=slurm, docs/sweeps.md):
REQUEUED = "requeued"  # stopped at an epoch boundary before its time limit; runs again from last.pt
TIMEOUT = "timeout"  # reached its time limit more often than the launcher requeues; resumable
CANCELLED = "cancelled"  # scancel (or the node was lost): the scheduler ended it
STATUSES = (RUNNING, COMPLETED, EARLY_STOPPED, DIVERGED, INTERRUPTED, FAILED, REQUEUED, TIMEOUT)
STATUSES += (CANCELLED,)
FINISHED = (COMPLETED, EARLY_STOPPED, DIVERGED)  # a sweep job that never needs to run again
USABLE = (COMPLETED, EARLY_STOPPED)  # runs whose curves and metrics the report aggregates
BROKEN = (FAILED, INTERRUPTED, KILLED, TIMEOUT, CANCELLED)  # a sweep with any of these exits 1
CONTINUES = (REQUEUED, TIMEOUT)  # a sweep job in these resumes from its last.pt when it runs again

# --- metrics ----------------------------------------------------------------------


def score_name(task: str) -> str:
    """The metric beside the loss: accuracy for classification, RMSE for regression."""
    return "acc" if task == "classification" else "rmse"


def metric_columns(task: str) -> list[str]:
    """metrics.csv's columns, in order."""
    s = score_name(task)
    return [
        *("epoch", "step", "train_loss", "val_loss", f"train_{s}", f"val_{s}"),
        *("lr", "time_s", "update_cos"),
    ]


def monitorable(task: str) -> list[str]:
    """The metrics.csv columns that trainer.early_stopping.monitor may name."""
    return metric_columns(task)[2:6]


def higher_is_better(metric: str) -> bool:
    """Accuracies improve upwards; losses and RMSEs downwards (any prefix: best_, test_...)."""
    return metric.endswith("_acc")


def best_key(monitor: str) -> str:
    """summary.json's key for the best value of the monitored metric, in every status."""
    return f"best_{monitor}"


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config -> {"model.width": 64, ...}, keys as users type them; lists as JSON text."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        elif isinstance(value, list):
            flat[name] = json.dumps(value)
        else:
            flat[name] = value
    return flat


# --- writers and readers ------------------------------------------------------------


@contextmanager
def exclusive(run_dir: Path) -> Iterator[None]:
    """Create the run folder and hold its lock: one process trains into a folder at a time.

    The lock is the kernel's (filelock's flock): a killed process drops it, so
    a folder is never left locked.
    """
    from filelock import FileLock, Timeout

    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        safe.check_writable(run_dir, (LOCK,))  # filelock opens it with O_TRUNC
        lock = FileLock(run_dir / LOCK, timeout=0)
        lock.acquire()
    except Timeout:
        raise ConfigError(
            f"{run_dir} is in use by another dlrun process (a run or a resume)"
        ) from None
    except OSError as e:
        raise WriteError(run_dir, e) from None
    try:
        yield
    finally:
        lock.release()


def atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    """Write `path` through a temporary file in the same folder, then rename it into place.

    A reader (or a crash, kill -9, a full disk) only ever sees the old complete
    file or the new one. On any error the temporary file is removed and the
    old file kept; an OSError becomes a WriteError naming the file and the cause.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        safe.create_new(tmp)  # a regular file of ours, never a link left in the folder
        write(tmp)
        os.replace(tmp, path)
    except BaseException as e:  # a second Ctrl-C mid-write too
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise WriteError(path, e) from None
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json(path: Path, data: dict[str, Any], in_place_when_full: bool = False) -> None:
    """`data` as JSON, atomically; `in_place_when_full`: see overwrite_in_place."""
    text = json.dumps(data, indent=2, default=str) + "\n"
    try:
        atomic_write_text(path, text)
    except WriteError as e:
        if not (in_place_when_full and e.cause.errno in (errno.ENOSPC, errno.EDQUOT)):
            raise
        overwrite_in_place(path, text.encode(), e)


def overwrite_in_place(path: Path, data: bytes, error: WriteError) -> None:
    """A full disk leaves no room for a temporary file: rewrite the file in its own blocks.

    The last resort of a run's final summary (`failed`, naming the file that did
    not fit), so a full disk does not leave the folder saying `running`. Only
    when the new text fits in the blocks the old file already holds, which then
    needs no new space; `error` is raised otherwise.
    """
    try:
        info = os.lstat(path)
        if not os.path.isfile(path) or os.path.islink(path) or len(data) > info.st_blocks * 512:
            raise error
        fd = os.open(path, os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0))
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.ftruncate(fd, len(data))
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        raise error from None


def read_summary(run_dir: Path, strict: bool = False) -> dict[str, Any] | None:
    """The run's summary, or None when it is missing, unusable (dlrun.folders.safe) or not an object.

    `strict`: a summary.json that is there but unusable raises UnusableFile instead.
    """
    path = Path(run_dir) / SUMMARY
    try:
        summary = safe.read_json(path, root=run_dir)
    except FileNotFoundError:
        return None
    except UnusableFile:
        if strict:
            raise
        return None
    if not isinstance(summary, dict):
        if strict:
            raise UnusableFile(path, "is not a JSON object")
        return None
    return summary


def summary_numbers(summary: dict[str, Any]) -> dict[str, float]:
    """A summary's numbers (results, best values, sizes, times) for a tracker's final metrics."""
    return {
        key: float(value)
        for key, value in summary.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "seed"
    }


def sweep_of(run_dir: Path) -> Path | None:
    """The sweep a job folder belongs to: its parent, when that holds the sweep's state."""
    parent = Path(run_dir).resolve().parent
    return parent if (parent / SWEEP_STATE).is_dir() else None


def is_finished(run_dir: Path) -> bool:
    summary = read_summary(run_dir)
    return summary is not None and summary.get("status") in FINISHED


class CsvLog:
    """Append rows to a CSV file, flushing each write so a crash loses nothing logged."""

    def __init__(self, path: Path, columns: list[str], append: bool = False):
        self.path, self.columns = Path(path), columns
        exists = append and self.path.is_file() and self.path.stat().st_size > 0
        if exists:  # a resumed run keeps its file's columns (one written before a column was added)
            first = safe.read_text(self.path, safe.TABLE_CAP).partition("\n")[0]
            columns = [c for c in next(csv.reader([first]), []) if c] or columns
        self.file = safe.open_log(self.path, append=exists)
        self.writer = csv.DictWriter(self.file, fieldnames=columns, extrasaction="ignore")
        if not exists:
            self._flushed(self.writer.writeheader)

    def write(self, rows: list[dict[str, Any]] | dict[str, Any]) -> None:
        self._flushed(lambda: self.writer.writerows([rows] if isinstance(rows, dict) else rows))

    def _flushed(self, write: Callable[[], Any]) -> None:
        try:
            write()
            self.file.flush()
        except OSError as e:
            raise WriteError(self.path, e) from None

    def close(self) -> None:
        try:
            self.file.close()
        except OSError:
            pass  # the flush already failed and said so


def truncate_csv(path: Path, last_epoch: int) -> None:
    """Drop rows logged after `last_epoch` (resuming from an older checkpoint)."""
    if not os.path.lexists(path):
        return
    text = safe.read_text(path, safe.TABLE_CAP)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        return
    whole = [r for r in rows[1:] if len(r) == len(rows[0]) and r[0].isdigit()]  # no cut-off line
    kept = [rows[0]] + [r for r in whole if int(r[0]) <= last_epoch]

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            csv.writer(f).writerows(kept)

    atomic_write(path, write)
