"""The sweep index: sweep.csv at a sweep's root, one row per job, and the table at the end.

A sweep folder holds the job folders (run folders, docs/run-folder.md) and
`.dlrun/`: `jobs/<job number>.json` (the job's overrides and folder, written as
it starts) and `sweep.json` (the swept keys). sweep.csv is always rebuilt from
those and the job folders' summary.json, never appended to: any process may
rebuild it at any time (a joblib worker, a SLURM task, the driver, a re-run)
and the result is the same. No Hydra here; dlrun.sweeps.job calls these.
"""

from __future__ import annotations

import csv
import io
import os
import shlex
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from dlrun.errors import UnusableFile, UsageError
from dlrun.folders import runs, safe
from dlrun.folders.sweep_table import print_table, ranked  # noqa: F401 (ranked: dlrun runs)

Row = dict[str, Any]


def one_line(text: str, limit: int = 300) -> str:
    return " ".join(str(text).split())[:limit]


def record_sweep(sweep_dir: Path, swept: list[str], jobs: int | None = None) -> None:
    """Note which keys the sweep varies (its columns, even before two jobs differ), and
    how many jobs it has when the sweeper says in advance (`jobs`)."""
    state_dir(sweep_dir)
    record = {"swept": swept, **({"jobs": jobs} if jobs is not None else {})}
    runs.write_json(sweep_dir / runs.SWEEP_STATE / "sweep.json", record)


def expected_jobs(sweep_dir: Path) -> int | None:
    """The number of jobs record_sweep noted, if any."""
    jobs = (_read_json(sweep_dir / runs.SWEEP_STATE / "sweep.json", sweep_dir) or {}).get("jobs")
    return jobs if type(jobs) is int and jobs >= 0 else None


def swept(sweep_dir: Path) -> list[str]:
    """The keys a sweep varies, as record_sweep noted them (`optimizer`, `optimizer.lr`...)."""
    keys = (_read_json(sweep_dir / runs.SWEEP_STATE / "sweep.json", sweep_dir) or {}).get("swept")
    return [k for k in keys if isinstance(k, str)] if isinstance(keys, list) else []


def state_dir(sweep_dir: Path) -> Path:
    """The sweep's `.dlrun/`, made (with its parents) or checked: never a link."""
    Path(sweep_dir).mkdir(parents=True, exist_ok=True)
    return safe.make_dir(Path(sweep_dir) / runs.SWEEP_STATE)


def record_job(sweep_dir: Path, job_num: int, overrides: dict[str, str], run_dir: Path) -> None:
    """Note a job as it starts, with its overrides as typed, so one killed later still has its row."""
    folder = safe.make_dir(state_dir(sweep_dir) / "jobs")
    record = {
        "job": job_num,
        "overrides": overrides,
        "run_dir": os.path.relpath(run_dir, sweep_dir),
    }
    runs.write_json(folder / f"{job_num}.json", record)


def forget_unstarted(sweep_dir: Path, job_num: int, run_dir: Path) -> None:
    """A job the sweep stopped before it began (queued in a joblib worker): no row, so
    the end of the sweep counts it `not started` and a re-run trains it. A folder that
    holds a run from before keeps its row, which says how that run ended."""
    if runs.read_summary(run_dir) is None:
        (Path(sweep_dir) / runs.SWEEP_STATE / "jobs" / f"{job_num}.json").unlink(missing_ok=True)


def _read_json(path: Path, sweep_dir: Path) -> Any:
    """A sweep's record, or None when it is missing or unusable (dlrun.folders.safe)."""
    try:
        return safe.read_json(path, root=sweep_dir)
    except (OSError, UnusableFile):
        return None


def _job_record(path: Path, sweep_dir: Path) -> Row | None:
    """A job's record, if it is one: a number, overrides as text, a folder inside the sweep."""
    job = _read_json(path, sweep_dir)
    if not isinstance(job, dict) or type(job.get("job")) is not int:
        return None
    overrides, folder = job.get("overrides"), job.get("run_dir")
    if not isinstance(overrides, dict) or not isinstance(folder, str) or not folder:
        return None
    parts = Path(folder).parts
    if (
        Path(folder).is_absolute()
        or ".." in parts
        or not safe.inside(sweep_dir / folder, sweep_dir)
    ):
        return None  # a record pointing out of the sweep is not one dlrun wrote
    return {**job, "overrides": {str(k): str(v) for k, v in overrides.items()}}


def _status(summary: dict[str, Any], final: str | None) -> tuple[str, str]:
    status, error = summary.get("status", runs.RUNNING), summary.get("error") or ""
    epoch = summary.get("epochs_run")
    if status == runs.DIVERGED and not error:
        error = f"training loss diverged at epoch {epoch}"
    if status == runs.INTERRUPTED and not error:
        error = f"interrupted (Ctrl-C or a signal) after epoch {epoch}"
    if final == runs.KILLED and status == runs.RUNNING:  # the sweep is over: the job died silently
        status = runs.KILLED
        error = f"ended without a final {runs.SUMMARY} (killed, out of memory or timed out?)"
    elif final == runs.KILLED and status == runs.REQUEUED:
        status, error = runs.KILLED, "requeued, but never ran again before the sweep ended"
    elif final == runs.INTERRUPTED and status == runs.RUNNING:  # Ctrl-C before training started
        status, error = runs.INTERRUPTED, "interrupted (Ctrl-C) before training started"
    return status, one_line(error)


def _params(jobs: list[Row], declared: list[str]) -> list[str]:
    """The declared swept keys, then any other key whose value differs between jobs."""
    values: dict[str, set[str]] = defaultdict(set)
    for job in jobs:
        for key, value in job["overrides"].items():
            values[key].add(value)
    counts = {key: sum(key in job["overrides"] for job in jobs) for key in values}
    varying = {k for k, v in values.items() if len(v) > 1 or counts[k] < len(jobs)}
    return [*declared, *sorted(varying - set(declared))]


def _scores(summary: dict[str, Any]) -> dict[str, Any]:
    """best_<monitor> and the test metrics of a summary."""
    return {
        key: value
        for key, value in summary.items()
        if key.startswith(("best_", "test_")) and key != "best_epoch"
    }


def index_rows(sweep_dir: Path, final: str | None = None) -> tuple[list[str], list[Row]]:
    """(columns, one row per job) from the job records and their run folders' summary.json.

    `final`: the sweep is over, so a job still `running` is reported as this
    (`killed`, or `interrupted` when the sweep itself was).
    """
    records = (sweep_dir / runs.SWEEP_STATE / "jobs").glob("*.json")
    jobs = [_job_record(path, sweep_dir) for path in records]
    jobs = sorted((job for job in jobs if job), key=lambda job: job["job"])
    declared = swept(sweep_dir)
    params = _params(jobs, declared)
    rows, metrics = [], set()
    for job in jobs:
        summary = runs.read_summary(sweep_dir / job["run_dir"]) or {}
        status, error = _status(summary, final)
        row = {"job": job["job"], **{key: job["overrides"].get(key, "") for key in params}}
        row.setdefault("seed", summary.get("seed", ""))  # a column even when not swept
        scores = _scores(summary)
        metrics.update(scores)
        row.update(status=status, **scores)
        row.update(n_params=summary.get("n_params"), wall_s=summary.get("wall_s"))
        rows.append({**row, "run_dir": job["run_dir"], "error": error})
    head = ["job", *params, *(["seed"] if "seed" not in params else []), "status"]
    return [*head, *sorted(metrics), "n_params", "wall_s", "run_dir", "error"], rows


def _locked(path: Path) -> FileLock:
    """An exclusive lock file, held while one process rebuilds the index (any OS)."""
    safe.make_dir(path.parent)
    safe.check_writable(path.parent, (path.name,))
    return FileLock(str(path))


def write_index(sweep_dir: Path, final: str | None = None) -> tuple[list[str], list[Row]]:
    """Rebuild sweep.csv; `final` as for index_rows."""
    with _locked(sweep_dir / runs.SWEEP_STATE / "lock"):
        columns, rows = index_rows(sweep_dir, final)
        buffer = io.StringIO()
        writer = csv.DictWriter(
            buffer, fieldnames=columns, restval="", extrasaction="ignore", lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(rows)
        runs.atomic_write_text(sweep_dir / runs.SWEEP_INDEX, buffer.getvalue())
    return columns, rows


def drive(sweep_dir: Path) -> FileLock:
    """Take the sweep folder's driver lock: one `dlrun train -m` per folder at a time.

    The lock is the kernel's (filelock's flock), so a driver that was killed
    leaves no lock behind and the next one takes the folder over.
    """
    safe.check_writable(state_dir(sweep_dir), ("driver.lock",))
    lock = FileLock(sweep_dir / runs.SWEEP_STATE / "driver.lock", timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise UsageError(
            f"hydra.sweep.dir={sweep_dir}: another dlrun is running this sweep now; "
            "wait for it to end (or stop it), then repeat the command"
        ) from None
    return lock


# --- the end of a sweep -------------------------------------------------------


@dataclass
class Outcome:
    folder: Path
    rows: list[Row]
    expected: int | None = None  # the sweep's number of jobs, when known in advance

    @property
    def failed(self) -> list[Row]:
        return [row for row in self.rows if row["status"] in runs.BROKEN]

    def counts(self) -> dict[str, int]:
        """Jobs by status, in the order statuses first appear; `not started` last."""
        counts: dict[str, int] = {}
        for row in self.rows:
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        if self.expected is not None and self.expected > len(self.rows):
            counts["not started"] = self.expected - len(self.rows)
        return counts

    @property
    def message(self) -> str:
        total = max(self.expected or 0, len(self.rows))
        said = ", ".join(f"{n} {status}" for status, n in self.counts().items())
        where = shlex.quote(str(self.folder))
        return (
            f"{said} of {total} jobs (see {self.folder / runs.SWEEP_INDEX}); to run the "
            f"unfinished jobs, continuing each from its last.pt, repeat the command with "
            f"hydra.sweep.dir={where}"
        )


def finish(folder: Path, stopped: str = runs.KILLED) -> Outcome:
    """Complete the index once no job of the sweep runs any more, and print the table.

    `stopped`: the status of a job that never wrote its final summary.
    """

    columns, rows = write_index(folder, final=stopped)
    if rows:
        print_table(folder, columns, rows)
    print(f"dlrun: sweep index {folder / runs.SWEEP_INDEX}")
    print(f"dlrun: next: dlrun report {shlex.quote(str(folder))}")
    return Outcome(folder, rows, expected_jobs(folder))
