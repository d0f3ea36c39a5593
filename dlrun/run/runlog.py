"""run.log: every line a run printed, and every warning, kept in its run folder.

While `run()` works, sys.stdout and sys.stderr are tees: each line goes to
the terminal as before and to run.log (colours stripped), so a run started
under nohup or on a cluster node leaves its own record. Lines printed before
the run folder exists are held and written once it does; a run that raises
leaves its traceback there (the terminal gets one line). In a sweep job
every terminal line starts with `[job N] `, so parallel workers' lines can
be told apart.
"""

from __future__ import annotations

import io
import logging
import re
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")

# the sweep job this process runs: {"num": 3, "parallel": True, "threads": 2}
_job: dict[str, object] = {}
_logs: list[Log] = []  # the run.log of the run in progress (innermost last)


@contextmanager
def job(num: int, parallel: bool, threads: int | None = None) -> Iterator[None]:
    """Lines printed inside are a sweep job's: labelled, and no live bar when jobs run in parallel.

    `threads`: the job's share of the CPUs when jobs run side by side (None: no share).
    """
    saved = dict(_job)
    _job.update(num=num, parallel=parallel, threads=threads)
    try:
        yield
    finally:
        _job.clear()
        _job.update(saved)


def job_number() -> int | None:
    return _job.get("num")  # type: ignore[return-value]


def job_threads() -> int | None:
    return _job.get("threads")  # type: ignore[return-value]


def parallel_job() -> bool:
    return bool(_job.get("parallel"))


def prefix() -> str:
    num = job_number()
    return f"[job {num}] " if num is not None else ""


class QuietHydra(logging.Filter):
    """Hydra's own INFO lines (`Launching 2 jobs locally`, `#0 : seed=0 quick=True`, joblib's
    and Optuna's set-up, the libraries Optuna loads) never reach the terminal:
    dlrun.sweeps.job says which job of how many, in the user's words, and dlrun
    prints rather than logs. Warnings and errors still pass
    (conf/hydra/hydra_logging/dlrun.yaml)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


class Log:
    """run.log, held in memory until `open` names its file."""

    def __init__(self) -> None:
        self.held: list[str] = []
        self.file: IO[str] | None = None

    def open(self, path: Path) -> None:
        from dlrun.folders.safe import open_log

        self.file = open_log(path, encoding="utf-8")  # never through a link in the folder
        self.file.write("".join(self.held))
        self.file.flush()
        self.held.clear()

    def write(self, text: str) -> None:
        text = ANSI.sub("", text).replace("\r", "")
        if self.file is None:
            self.held.append(text)
        elif not self.file.closed:
            try:
                self.file.write(text)
                if "\n" in text:
                    self.file.flush()  # line by line: readable while the run goes on
            except OSError:  # a full disk: the run's own files report it, naming the file
                self.close()

    def close(self) -> None:
        # run.log copies the terminal; its last buffered line may not fit on a full
        # disk, and that must not replace the error the run is ending with
        if self.file is not None and not self.file.closed:
            try:
                self.file.close()
            except OSError:
                pass


class Tee(io.TextIOBase):
    """A text stream that writes to `stream` (labelled in a sweep job) and to a Log."""

    def __init__(self, stream: IO[str], log: Log, label: str = ""):
        self.stream, self.log, self.label = stream, log, label
        self.line_start = True

    def write(self, text: str) -> int:
        if self.label:
            lines = text.split("\n")
            shown = [
                (self.label if (i > 0 or self.line_start) and line else "") + line
                for i, line in enumerate(lines)
            ]
            self.stream.write("\n".join(shown))
        else:
            self.stream.write(text)
        if text:
            self.line_start = text.endswith("\n")
        self.log.write(text)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.stream, "encoding", "utf-8")


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings to stderr, which is the tee: the terminal and run.log."""
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


@contextmanager
def capture() -> Iterator[Log]:
    """Tee stdout and stderr into a Log until the block ends; `log.open(path)` names the file.

    Warnings keep the user's filters; entering catch_warnings makes one shown
    by an earlier run of this process (a sweep job) show again, for this log.
    """
    log = Log()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = Tee(saved[0], log, prefix()), Tee(saved[1], log, prefix())
    _logs.append(log)
    caught = warnings.catch_warnings()
    caught.__enter__()
    warnings.showwarning = _show_warning
    try:
        yield log
    except BaseException:
        log.write(traceback.format_exc())
        raise
    finally:
        caught.__exit__(None, None, None)
        sys.stdout.flush()
        sys.stdout, sys.stderr = saved
        _logs.remove(log)
        log.close()


def log_only(line: str) -> None:
    """A line for run.log alone (the epoch line while a live bar shows the same numbers)."""
    if _logs:
        _logs[-1].write(line + "\n")


def terminal() -> IO[str]:
    """The real stdout under any tees: where a live bar draws itself."""
    stream = sys.stdout
    while isinstance(stream, Tee):
        stream = stream.stream
    return stream


def tee_again() -> Callable[[], None]:
    """Tee the streams a live display put in place (rich's proxies) into run.log too.

    Returns the function that puts them back; call it before the display ends.
    """
    if not _logs:
        return lambda: None
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = Tee(saved[0], _logs[-1], prefix()), Tee(saved[1], _logs[-1], prefix())

    def restore() -> None:
        sys.stdout, sys.stderr = saved

    return restore
