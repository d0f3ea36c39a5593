"""Stop requests: Ctrl-C (SIGINT) and SIGTERM end a run cleanly at the next epoch boundary.

Schedulers (SLURM, Kubernetes, preemptible clouds) send SIGTERM before they
kill; a person presses Ctrl-C; SLURM sends SIGUSR2 a while before a job's time
limit (submitit's `--signal`, hydra/launcher=slurm requeues the job then). Both set a flag that the epoch loop reads after
each epoch (`requested()`), so the run ends with every finished epoch logged and
last.pt holding the state after the last one: resuming from it is exact. A
second signal raises `Interrupted` at once, wherever the program is (last.pt
then stays at the previous checkpoint, also an epoch boundary).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from dlrun.errors import Interrupted

# SIGUSR2: SLURM's warning before a time limit; Windows has none
HANDLED = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGUSR2") if hasattr(signal, n))
_state: dict[str, int] = {}  # "signal": the first one received; "depth": nested handled()
_forward: list = []  # functions called with the first signal (a sweep's driver: its workers)


def requested() -> str | None:
    """The name of the signal that asked to stop ('SIGTERM'), or None.

    Inside `watching(check)`, `check()` naming a signal is a stop too (a sweep's
    worker: its driver stopped, or is gone).
    """
    signum = _state.get("signal")
    if not signum and _watch:
        name = _watch[-1]()
        if name:
            signum = _state["signal"] = int(getattr(signal, name))
            os.write(2, f"\ndlrun: {name} to the sweep: stopping after this epoch\n".encode())
    return signal.Signals(signum).name if signum else None


_watch: list = []  # () -> a signal's name or None, asked at each epoch boundary


@contextmanager
def watching(check) -> Iterator[None]:
    """Inside this block, `check()` returning a signal's name asks to stop, as that signal."""
    if check is None:
        yield
        return
    _watch.append(check)
    try:
        yield
    finally:
        _watch.remove(check)


def interrupted(message: str = "") -> Interrupted:
    """The exception that ends the process for the signal received (exit 130 or 143)."""
    signum = _state.get("signal", signal.SIGINT)
    return Interrupted(signal.Signals(signum).name, 128 + signum, message)


def _handler(signum: int, frame) -> None:
    name = signal.Signals(signum).name
    if _state.get("signal"):
        # os.write: print() from a handler can hit a half-written buffer
        os.write(2, f"\ndlrun: {name} again: stopping now\n".encode())
        _state["signal"] = signum
        raise interrupted()
    _state["signal"] = signum
    os.write(2, f"\ndlrun: {name}: stopping after this epoch ({name} again: at once)\n".encode())
    for forward in list(_forward):
        forward(signum)


@contextmanager
def handled(forward=None) -> Iterator[None]:
    """SIGINT, SIGTERM and SIGUSR2 set the stop flag inside this block (main thread only; nests).

    `forward(signum)`: also called with the first signal (a sweep's driver passes it on).
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach only the main thread: the defaults stay
        return
    if forward is not None:
        _forward.append(forward)
    outermost = not _state.get("depth")
    # An ignored signal stays ignored (`nohup`, `cmd &` in a script): the caller chose that.
    wanted = [s for s in HANDLED if signal.getsignal(s) is not signal.SIG_IGN] if outermost else []
    previous = {s: signal.signal(s, _handler) for s in wanted}
    _state["depth"] = _state.get("depth", 0) + 1
    try:
        yield
    finally:
        _state["depth"] -= 1
        if forward is not None:
            _forward.remove(forward)
        if outermost:
            for s, old in previous.items():
                signal.signal(s, old)
            _state.pop("signal", None)
