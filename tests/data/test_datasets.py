"""Where samples come from: the MNIST-1D cache and the user's files (dlrun/data/datasets.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from dlrun.config.schema import DataConfig
from dlrun.data import datasets
from dlrun.data.tensors import build_dataset
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


def test_mnist1d_is_the_packages_own_data_and_a_cache_hit_does_not_import_it(tmp_path):
    from mnist1d.data import get_dataset_args, make_dataset
    from mnist1d.utils import ObjectView

    cfg = DataConfig(name="mnist1d", n_samples=500, test_fraction=0.2, data_seed=3)
    x, y, x_test, y_test, _ = datasets.build_mnist1d(cfg)
    args = get_dataset_args(as_dict=True)
    args.update(num_samples=500, train_split=0.8, seed=3)
    reference = make_dataset(ObjectView(args))
    np.testing.assert_array_equal(x, reference["x"])
    np.testing.assert_array_equal(y_test, reference["y_test"])
    code = (
        "import sys; from dlrun.config.schema import DataConfig; from dlrun.data.datasets import build_mnist1d; "
        "build_mnist1d(DataConfig(name='mnist1d', n_samples=500, data_seed=3)); "
        "assert 'mnist1d' not in sys.modules and 'matplotlib' not in sys.modules, 'imported'"
    )
    env = {**os.environ, "DLRUN_CACHE": str(datasets.cache_dir())}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)


def test_a_parquet_table_reads_like_its_csv(tmp_path):
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=80),
            "colour": rng.choice(["red", "blue"], 80),
            "label": np.arange(80) % 3,
        }
    )
    frame.to_parquet(tmp_path / "t.parquet")
    frame.to_csv(tmp_path / "t.csv", index=False)
    from_parquet = build_dataset(
        DataConfig(name="table", path=str(tmp_path / "t.parquet"), target="label"), 0, CPU
    )
    from_csv = build_dataset(
        DataConfig(name="table", path=str(tmp_path / "t.csv"), target="label"), 0, CPU
    )
    assert from_parquet.input_shape == (3,) and from_parquet.n_classes == 3  # a, and 2 dummies
    assert torch.equal(from_parquet.train.x, from_csv.train.x)
    assert torch.equal(from_parquet.test.y, from_csv.test.y)


def test_a_table_names_the_column_that_cannot_be_learned_from(tmp_path):
    rows = [f"{i},{i % 3},{i % 2}" for i in range(30)]
    cases = {
        "inf": ("a,b,y", [*rows, "1,inf,0"], "column 'b' holds inf in row 31"),
        "blank": ("a,b,y", [*rows, "1,,0"], "column 'b' holds nan in row 31"),
        "constant": (
            "a,c,y",
            [f"{i},7,{i % 2}" for i in range(30)],
            "column 'c' is the same in every row",
        ),
        "no_label": ("a,b,y", [*rows, "1,2,"], "data.target=y: row 31 has no label"),
        "one_class": ("a,b,y", [f"{i},{i % 3},4" for i in range(30)], "single class"),
        "empty": ("a,b,y", [], "the table has no rows"),
    }
    for name, (header, lines, message) in cases.items():
        path = tmp_path / f"{name}.csv"
        path.write_text("\n".join([header, *lines]) + "\n")
        with pytest.raises(DataError, match=message):
            build_dataset(DataConfig(name="table", path=str(path), target="y"), 0, CPU)
