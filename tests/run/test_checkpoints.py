"""Checkpoints: best.pt reproduces the test metric, last.pt resumes exactly (dlrun/run/checkpoints.py)."""

from __future__ import annotations

import csv

import pytest
import torch

from dlrun.data.tensors import build_dataset
from dlrun.run.runner import run
from dlrun.run.train import evaluate
from dlrun.toolbox.models import build_model


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_checkpoints_load_and_reproduce_the_test_metric(make_cfg, tmp_path):
    cfg = make_cfg("trainer.epochs=5")
    summary = run(cfg, tmp_path)
    best = torch.load(tmp_path / "checkpoints" / "best.pt", weights_only=True)
    last = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert last["epoch"] == summary["epochs_run"] and best["epoch"] == last["epoch"]
    assert "optimizer" in best and "rng" in last

    data = build_dataset(cfg.data, cfg.seed, torch.device("cpu"))
    model = build_model(cfg.model, data.input_shape, data.n_out)
    model.load_state_dict(best["model"])
    loss, acc = evaluate(model, data.test.x, data.test.y, data.task, 4096)
    assert acc.item() == pytest.approx(summary["test_acc"], abs=1e-7)
    assert loss.item() == pytest.approx(summary["test_loss"], rel=1e-6)


def test_resume_continues_exactly_where_it_stopped(make_cfg, tmp_path):
    common = ("trainer.early_stopping.patience=null", "model.width=32")
    straight = run(make_cfg("trainer.epochs=4", *common), tmp_path / "straight")
    run(make_cfg("trainer.epochs=2", *common), tmp_path / "split")
    resumed = run(
        make_cfg("trainer.epochs=4", f"resume={tmp_path / 'split'}", *common), tmp_path / "split"
    )
    a = read_csv(tmp_path / "straight" / "metrics.csv")
    b = read_csv(tmp_path / "split" / "metrics.csv")
    assert [r["epoch"] for r in b] == ["1", "2", "3", "4"]
    for key in ("train_loss", "val_loss", "val_acc"):
        assert [float(r[key]) for r in a] == pytest.approx([float(r[key]) for r in b], rel=1e-6)
    assert resumed["test_acc"] == pytest.approx(straight["test_acc"])
