"""Where samples come from: the MNIST-1D cache and the user's files (dlrun/datasets.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlrun import datasets
from dlrun.config import DataConfig
from dlrun.data import build_dataset
from dlrun.errors import DataError

CPU = torch.device("cpu")


def test_mnist1d_is_generated_once_then_loaded_from_the_cache(monkeypatch):
    cfg = DataConfig(name="mnist1d", n_samples=600, data_seed=7)
    first = build_dataset(cfg, 0, CPU)

    import mnist1d.data

    def no_generation(*args, **kwargs):
        raise AssertionError("generated again instead of loading the cache")

    monkeypatch.setattr(mnist1d.data, "make_dataset", no_generation)
    second = build_dataset(cfg, 0, CPU)
    assert torch.equal(first.train.x, second.train.x)
    assert list(datasets.cache_dir().glob("mnist1d-*.npz"))


def test_bad_files_give_clear_errors(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        build_dataset(DataConfig(name="table", path=str(tmp_path / "nope.csv"), target="y"), 0, CPU)
    np.savez(tmp_path / "bad.npz", features=np.zeros(3))
    with pytest.raises(DataError, match="'x' and 'y'"):
        build_dataset(DataConfig(name="npz", path=str(tmp_path / "bad.npz")), 0, CPU)
    np.savez(
        tmp_path / "ok.npz", x=np.random.default_rng(0).normal(size=(50, 3)), y=np.arange(50) % 2
    )
    d = build_dataset(DataConfig(name="npz", path=str(tmp_path / "ok.npz")), 0, CPU)
    assert d.task == "classification" and d.n_classes == 2
