"""A tracker in its own thread: a server that is unreachable or never answers never holds a run up.

A tracker may send every epoch to a server (MLflow's). One that refuses the
connection fails at once; one that accepts it and never answers would hold
each call for MLflow's timeout, retried (minutes). So each tracker works in a
thread of its own: the epoch loop hands it rows and goes on; the run waits at
most OPEN_WAIT_S for a server to answer as it starts and FINISH_WAIT_S for it
to take the end of the run (the run folder is complete by then), and goes on
without it after that, in one line naming the tracker and the cause
(dlrun.trackers.loggers.warn). A store on this machine gets LOCAL_WAIT_S.
A store that did not answer is not asked again for RETRY_AFTER_S, so each job
of a sweep does not wait for the same dead server.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from typing import Any

OPEN_WAIT_S = 10.0  # s a run waits for a tracker's server to answer as it starts
FINISH_WAIT_S = 60.0  # s the end of a run waits for a server to take its last numbers and files
# a store on this machine (a folder, MLflow's sqlite file) never waits on a network, but
# making one is slow on a busy machine (MLflow 3's sqlite migrations: 14 s at load 8 on 2 cores)
LOCAL_WAIT_S = 180.0
REMOTE = ("http", "https", "databricks")  # URI schemes of stores behind a network
RETRY_AFTER_S = 300.0  # s before a store that did not answer is asked again
_silent: dict[tuple[str, str], float] = {}  # (tracker, store) -> when it last did not answer


def cause(error: BaseException) -> str:
    """The cause of a tracker's failure in a few words: a long MLflow message keeps its
    system error ([Errno 111] Connection refused) and the address it names."""
    text = " ".join(str(error).split())
    errno = re.findall(r"\[Errno -?\d+\] [^'\")]+", text)
    if errno and len(text) > 200:
        where = re.search(r"(?:https?|file|sqlite)://[^\s'\")]+", text)
        text = f"{errno[-1].strip()}{f' ({where.group(0)})' if where else ''}"
    return f"{type(error).__name__}: {text[:300]}"


def waits(store: str) -> tuple[float, float]:
    """(start, finish) waits for a store: short for a server, long for one on this machine."""
    if store.split(":", 1)[0].lower() in REMOTE:
        return OPEN_WAIT_S, FINISH_WAIT_S
    return LOCAL_WAIT_S, LOCAL_WAIT_S


class Background:
    """A tracker working in its own thread: rows are handed over, never waited for.

    An error in the thread (a server gone, a full disk) is raised at the next
    call, which dlrun.trackers.loggers.Sinks turns into one warning; a call
    that does not come back in time is a TimeoutError naming the store.
    """

    @classmethod
    def start(cls, name: str, store: str, make: Any, wait: float | None = None) -> Background:
        """`make()` run in a new thread, waited for `wait` s (by default as waits says)."""
        ago = time.monotonic() - _silent.get((name, store), -RETRY_AFTER_S)
        if ago < RETRY_AFTER_S:
            raise TimeoutError(f"{store} did not answer {ago:.0f} s ago; not asked again yet")
        tracker = cls(name, store, make)
        try:
            tracker._wait(tracker._opened, waits(store)[0] if wait is None else wait)
        except BaseException as e:
            if isinstance(e, TimeoutError):
                _silent[(name, store)] = time.monotonic()
            tracker.abandon()
            raise
        return tracker

    def __init__(self, name: str, store: str, make: Any):
        self.name, self.store = name, store
        self.tracker: Any = None
        self.error: BaseException | None = None
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._opened, self._ended = threading.Event(), threading.Event()
        thread = threading.Thread(target=self._work, args=(make,), name=f"dlrun-{name}")
        thread.daemon = True  # a server that never answers never keeps the process alive
        thread.start()

    def _work(self, make: Any) -> None:
        try:
            self.tracker = make()
            self._opened.set()
            while (job := self._jobs.get()) is not None:
                method, arg = job
                getattr(self.tracker, method)(arg)
        except Exception as e:
            self.error = e
        finally:
            self._opened.set()
            self._ended.set()

    def _wait(self, event: threading.Event, seconds: float) -> None:
        if not event.wait(seconds):
            raise TimeoutError(f"{self.store} did not answer in {seconds:g} s")
        self._raise()

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error

    def fields(self) -> dict[str, Any]:
        """What summary.json records of the tracker (its run id)."""
        return self.tracker.fields()

    def page(self) -> str | None:
        """The tracker's closing line (where to see the run), if it has one."""
        page = getattr(self.tracker, "page", None)
        return page() if page is not None else None

    def epoch(self, row: dict[str, Any]) -> None:
        self._raise()
        self._jobs.put(("epoch", dict(row)))

    def finish(self, summary: dict[str, Any], seconds: float | None = None) -> None:
        """The summary handed over, waited for up to `seconds` (by default as long as the
        store may need: waits)."""
        self._raise()
        self._jobs.put(("finish", dict(summary)))
        self._jobs.put(None)
        self._wait(self._ended, waits(self.store)[1] if seconds is None else seconds)

    def abandon(self) -> None:
        """Hand it nothing more; its thread ends once it is free."""
        self._jobs.put(None)


def bounded(store: str, call: Any, seconds: float | None = None) -> None:
    """`call()` in a thread of its own, waited for up to `seconds` (as waits says): its
    error is raised here, and one that does not come back is a TimeoutError naming the store."""
    done, failed = threading.Event(), []

    def work() -> None:
        try:
            call()
        except Exception as e:
            failed.append(e)
        finally:
            done.set()

    threading.Thread(target=work, name="dlrun-tracker-call", daemon=True).start()
    wait = waits(store)[1] if seconds is None else seconds
    if not done.wait(wait):
        raise TimeoutError(f"{store} did not answer in {wait:g} s")
    if failed:
        raise failed[0]
