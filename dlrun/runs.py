"""The run folder: the one contract between training and reporting, and its vocabulary.

config.yaml, metrics.csv, layers.csv, summary.json, checkpoints/{best,last}.pt
(docs/run-folder.md lists every field). Every name a writer or reader of a run
folder needs is defined here once: file names, statuses, metric columns, which
metric is better. Writers are atomic where a reader could otherwise see half a
file, and append-and-flush for the curves.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

# --- file names -----------------------------------------------------------------

CONFIG = "config.yaml"  # the resolved config
METRICS = "metrics.csv"  # one row per epoch
LAYERS = "layers.csv"  # per-layer diagnostics per epoch
SUMMARY = "summary.json"  # status, best and final metrics, provenance
CHECKPOINTS = "checkpoints"  # folder of LAST and BEST
LAST = "last.pt"  # resumes training exactly
BEST = "best.pt"  # the kept weights (early stopping's best epoch)
PREDICTIONS = "predictions.npz"  # regression runs: predictions on a fixed grid
HYDRA = ".hydra"  # Hydra's own record of the composed config and overrides
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
STATUSES = (RUNNING, COMPLETED, EARLY_STOPPED, DIVERGED, INTERRUPTED, FAILED)
FINISHED = (COMPLETED, EARLY_STOPPED, DIVERGED)  # a sweep job that never needs to run again
USABLE = (COMPLETED, EARLY_STOPPED)  # runs whose curves and metrics the report aggregates
BROKEN = (FAILED, INTERRUPTED, KILLED)  # a sweep with any of these exits with 1

# --- metrics ----------------------------------------------------------------------


def score_name(task: str) -> str:
    """The metric beside the loss: accuracy for classification, RMSE for regression."""
    return "acc" if task == "classification" else "rmse"


def metric_columns(task: str) -> list[str]:
    """metrics.csv's columns, in order."""
    s = score_name(task)
    return ["epoch", "step", "train_loss", "val_loss", f"train_{s}", f"val_{s}", "lr", "time_s"]


def monitorable(task: str) -> list[str]:
    """The metrics.csv columns that trainer.early_stopping.monitor may name."""
    return metric_columns(task)[2:6]


def higher_is_better(metric: str) -> bool:
    """Accuracies improve upwards; losses and RMSEs downwards (any prefix: best_, test_...)."""
    return metric.endswith("_acc")


def best_key(monitor: str) -> str:
    """summary.json's key for the best value of the monitored metric, in every status."""
    return f"best_{monitor}"


# --- writers and readers ------------------------------------------------------------


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    """The run's summary, or None when it is missing, unreadable or not a JSON object."""
    try:
        summary = json.loads((Path(run_dir) / SUMMARY).read_text())
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def is_finished(run_dir: Path) -> bool:
    summary = read_summary(run_dir)
    return summary is not None and summary.get("status") in FINISHED


class CsvLog:
    """Append rows to a CSV file, flushing each write so a crash loses nothing logged."""

    def __init__(self, path: Path, columns: list[str], append: bool = False):
        self.columns = columns
        exists = append and path.exists() and path.stat().st_size > 0
        self.file = open(path, "a" if exists else "w", newline="")
        self.writer = csv.DictWriter(self.file, fieldnames=columns, extrasaction="ignore")
        if not exists:
            self.writer.writeheader()
            self.file.flush()

    def write(self, rows: list[dict[str, Any]] | dict[str, Any]) -> None:
        self.writer.writerows([rows] if isinstance(rows, dict) else rows)
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def git_commit() -> str | None:
    """The commit of the dlrun source tree, if it is a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=here,
        capture_output=True,
        text=True,
        timeout=5,
    ).stdout.strip()
    return out.stdout.strip() + ("-dirty" if dirty else "")


def provenance() -> dict[str, Any]:
    import numpy
    import torch

    import dlrun

    return {
        "versions": {
            "dlrun": dlrun.__version__,
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "numpy": numpy.__version__,
        },
        "git_commit": git_commit(),
        "host": platform.node(),
    }


def truncate_csv(path: Path, last_epoch: int) -> None:
    """Drop rows logged after `last_epoch` (resuming from an older checkpoint)."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    kept = [rows[0]] + [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= last_epoch]
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        csv.writer(f).writerows(kept)
    os.replace(tmp, path)
