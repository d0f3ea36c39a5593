"""The run folder: the one contract between training and reporting.

config.yaml, metrics.csv, layers.csv, summary.json, checkpoints/{best,last}.pt
(docs/run-folder.md lists every field). Writers here are atomic where a reader
could otherwise see half a file, and append-and-flush for the curves.
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

STATUSES = ("running", "completed", "early_stopped", "diverged", "interrupted", "failed")
FINISHED = ("completed", "early_stopped", "diverged")


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    """The run's summary, or None when it is missing or unreadable."""
    try:
        return json.loads((Path(run_dir) / "summary.json").read_text())
    except (OSError, ValueError):
        return None


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
