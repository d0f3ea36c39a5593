"""Shared test harness: compose once per test, shrink to CPU and a few epochs, write to tmp_path."""

from __future__ import annotations

import os

import pytest

from dlrun import placement

CHOOSE_THREADS = placement.choose_threads  # dlrun's own, before _one_thread_choice stands in

os.environ.setdefault("MPLBACKEND", "Agg")

# Quick settings: CPU, no progress bar, a few epochs on a small data set.
QUICK = [
    "device=cpu",
    "trainer.progress=false",
    "trainer.epochs=3",
    "data.n_samples=1000",
]


@pytest.fixture(autouse=True, scope="session")
def _cache(tmp_path_factory):
    """Generated data sets (MNIST-1D) are cached once per test session, offline."""
    os.environ["DLRUN_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(autouse=True, scope="session")
def _sigint_as_at_a_terminal():
    """SIGINT raises KeyboardInterrupt here and in subprocesses, as at a terminal, even when
    the suite itself was started in the background of a script (`bash .ci/run &`), where
    the shell leaves SIGINT ignored and dlrun, rightly, keeps an ignored signal ignored."""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True, scope="session")
def _one_thread_choice():
    """Runs take one thread unless they set trainer.threads, module fixtures' runs included.

    tests/test_placement.py specifies dlrun's own choice (the `machine_threads` fixture).
    """

    def one_thread(requested, share=None):
        if requested is not None:  # trainer.threads wins, as it does in dlrun
            return CHOOSE_THREADS(requested)
        return placement.Threads(1, "one thread in tests (tests/conftest.py)")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(placement, "choose_threads", one_thread)
        yield


@pytest.fixture(autouse=True)
def _one_thread():
    """Tests train tiny models: thread hand-offs cost more than the work, above all on a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _no_leaked_signal_state():
    """A test leaves the process's signal handling and sweep environment as it found them:
    a SIGINT left ignored, a handler left installed or a sweep driver's id left in the
    environment changes how every later run in the session (and its subprocesses) stops."""
    import signal

    from dlrun.run import signals
    from dlrun.sweeps import workers

    watched = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2)
    before = {s: signal.getsignal(s) for s in watched}
    driver = os.environ.get(workers.DRIVER)
    yield
    after = {s: signal.getsignal(s) for s in watched}
    leaked = {signal.Signals(s).name: after[s] for s in watched if after[s] != before[s]}
    for s in watched:
        signal.signal(s, before[s])
    depth = signals._state.pop("depth", 0)
    signals._state.pop("signal", None)
    signals._forward.clear()
    now = os.environ.pop(workers.DRIVER, None)
    if driver is not None:
        os.environ[workers.DRIVER] = driver
    assert not leaked, f"signal handlers left changed: {leaked}"
    assert not depth, f"dlrun.run.signals.handled left entered ({depth} deep)"
    assert now == driver, f"{workers.DRIVER} left set to {now}"


@pytest.fixture
def machine_threads(monkeypatch):
    """Runs in this test choose their threads as dlrun does, not _one_thread_choice's way."""
    monkeypatch.setattr(placement, "choose_threads", CHOOSE_THREADS)


@pytest.fixture
def make_cfg():
    """make_cfg(*overrides) -> the composed config, shrunk for tests."""
    from dlrun.config.compose import compose

    def make(*overrides: str, quick: bool = True):
        return compose([*(QUICK if quick else []), *overrides])

    return make
