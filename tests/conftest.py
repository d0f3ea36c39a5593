"""Shared test harness: compose once per test, shrink to CPU and a few epochs, write to tmp_path."""

from __future__ import annotations

import os

import pytest

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


@pytest.fixture(autouse=True)
def _one_thread():
    """Tests train tiny models: thread hand-offs cost more than the work, above all on a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def make_cfg():
    """make_cfg(*overrides) -> the composed config, shrunk for tests."""
    from dlrun.config.compose import compose

    def make(*overrides: str, quick: bool = True):
        return compose([*(QUICK if quick else []), *overrides])

    return make
