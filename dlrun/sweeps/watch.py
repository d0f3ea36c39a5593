"""The driver's view of jobs whose lines it never sees (hydra/launcher=submitit_local).

submitit's local processes write their output to the sweep's `.submitit/`
logs, so the terminal that started the sweep would stay silent until the end.
A thread in the driver follows the sweep folder instead: the job records each
job writes as it starts (`.dlrun/jobs/N.json`) and the summaries as they end,
and prints, in the basic launcher's words, which job of how many started, with
the time the sweep has left, and how each one ended.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from dlrun.folders import runs
from dlrun.folders.sweep_index import index_rows
from dlrun.sweeps.count import job_line

POLL_S = 0.5


class Watch:
    """Prints start and end lines of a sweep's jobs as its folder shows them, until stopped."""

    def __init__(self, sweep_dir: Path, total: int | None, swept: list[str]) -> None:
        self.sweep_dir, self.total, self.swept = Path(sweep_dir), total, swept
        self.started = time.perf_counter()
        self.seen: set[int] = set()
        self.ended: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="dlrun-sweep-watch", daemon=True)

    def start(self) -> Watch:
        self._thread.start()
        return self

    def stop(self) -> None:
        """The last lines (jobs that ended since the last look), then no more."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.poll()

    def _follow(self) -> None:
        while not self._stop.wait(POLL_S):
            self.poll()

    def poll(self) -> list[str]:
        """Print (and return) the lines for what changed since the last look."""
        try:
            _, rows = index_rows(self.sweep_dir)
        except Exception:  # a folder being written: the next look sees it whole
            return []
        lines = []
        for row in rows:
            num = row["job"]
            if num not in self.seen:
                self.seen.add(num)
                settings = " ".join(f"{k}={row[k]}" for k in self.swept if row.get(k, "") != "")
                elapsed = time.perf_counter() - self.started
                lines.append(job_line(num, self.total, elapsed, len(self.ended), settings))
            if num not in self.ended and row["status"] not in (runs.RUNNING, runs.REQUEUED):
                self.ended.add(num)
                error = f": {row['error']}" if row.get("error") else ""
                lines.append(f"dlrun: job #{num} {row['status']}{error}  {row['run_dir']}")
        for line in lines:
            print(line, flush=True)
        return lines
