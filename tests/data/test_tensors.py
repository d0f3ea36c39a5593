"""Data sets: splits, standardisation with training statistics, caching, batching."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from dlrun.config.schema import DataConfig
from dlrun.data import tensors
from dlrun.data.tensors import batches, build_dataset
from dlrun.errors import DataError

CPU = torch.device("cpu")


def test_splits_are_disjoint_and_sized_by_the_fractions():
    cfg = DataConfig(name="moons", n_samples=1000, test_fraction=0.2, val_fraction=0.25)
    d = build_dataset(cfg, seed=0, device=CPU)
    assert (len(d.train), len(d.val), len(d.test)) == (600, 200, 200)
    rows = [set(map(tuple, s.x.numpy().round(6).tolist())) for s in (d.train, d.val, d.test)]
    assert not (rows[0] & rows[1]) and not (rows[0] & rows[2]) and not (rows[1] & rows[2])


def test_validation_split_follows_the_seed_and_test_split_does_not():
    cfg = DataConfig(name="moons", n_samples=500)
    a, b = build_dataset(cfg, 0, CPU), build_dataset(cfg, 1, CPU)
    assert not torch.equal(a.val.x, b.val.x)
    # same test samples (up to the standardisation, which uses each run's training split)
    raw = lambda d: d.test.y  # noqa: E731
    assert torch.equal(raw(a), raw(b))


def test_standardised_with_training_statistics_only(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(5, 3, 400), "b": rng.normal(-2, 0.1, 400)})
    frame["y"] = (frame.a > 5).astype(int)
    frame.to_csv(tmp_path / "t.csv", index=False)
    d = build_dataset(DataConfig(name="table", path=str(tmp_path / "t.csv"), target="y"), 0, CPU)
    torch.testing.assert_close(d.train.x.mean(0), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(d.train.x.std(0, unbiased=False), torch.ones(2), atol=1e-4, rtol=0)
    assert d.val.x.mean(0).abs().max() > 1e-4  # not re-standardised on its own statistics


def test_n_train_takes_a_subset():
    d = build_dataset(DataConfig(name="digits", n_train=100), 0, CPU)
    assert len(d.train) == 100 and d.input_shape == (1, 8, 8)
    with pytest.raises(DataError, match="n_train"):
        build_dataset(DataConfig(name="digits", n_train=10**6), 0, CPU)


def test_batches_cover_every_sample_once_per_epoch():
    g = torch.Generator().manual_seed(0)
    parts = batches(1000, 128, CPU, g)
    assert [len(p) for p in parts] == [128] * 7 + [104]
    assert torch.equal(torch.cat(parts).sort().values, torch.arange(1000))


def test_label_noise_changes_the_requested_fraction_of_training_labels_only(make_cfg):
    clean_cfg = make_cfg("data=spirals", "data.n_samples=1500")
    noisy_cfg = make_cfg("data=spirals", "data.n_samples=1500", "data.label_noise=0.25")
    clean = build_dataset(clean_cfg.data, 0, torch.device("cpu"))
    noisy = build_dataset(noisy_cfg.data, 0, torch.device("cpu"))
    assert torch.equal(clean.train.x, noisy.train.x)
    changed = (clean.train.y != noisy.train.y).sum().item()
    assert changed == round(0.25 * len(clean.train))
    assert torch.equal(clean.val.y, noisy.val.y) and torch.equal(clean.test.y, noisy.test.y)


def test_label_noise_never_keeps_a_label():
    from dlrun.data.tensors import corrupt_labels

    y = np.arange(1000) % 10
    noisy = corrupt_labels(y, 0.3, 10, np.random.default_rng(0))
    assert (noisy != y).sum() == 300


def test_shuffled_positions_are_the_papers_permutation_in_every_split(make_cfg):
    np.random.seed(42)
    order = np.random.permutation(40)  # the MNIST-1D notebook's
    cfg = make_cfg("data.n_samples=500")
    plain = build_dataset(cfg.data, seed=0, device=CPU)
    cfg.data.shuffle_positions = True
    shuffled = build_dataset(cfg.data, seed=0, device=CPU)
    for split in ("train", "val", "test"):
        before, after = getattr(plain, split), getattr(shuffled, split)
        assert torch.equal(after.x, before.x[:, order]), split
        assert torch.equal(after.y, before.y)


def test_unshuffled_batches_come_in_the_same_order_every_epoch():
    gen = torch.Generator().manual_seed(0)
    first, second = (batches(10, 4, CPU, gen, shuffle=False) for _ in range(2))
    assert [b.tolist() for b in first] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [b.tolist() for b in second] == [b.tolist() for b in first]


def test_data_stays_on_the_device_unless_it_would_crowd_it_out(monkeypatch):
    assert tensors.fits_on_device(
        10**12, torch.device("cpu")
    )  # host memory is where the data already is
    cuda = torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (8 * 2**30, 16 * 2**30))
    assert tensors.fits_on_device(3 * 2**30, cuda) and not tensors.fits_on_device(5 * 2**30, cuda)
