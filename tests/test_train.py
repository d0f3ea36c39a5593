"""The runner: run(cfg, run_dir) fills the run folder as docs/run-folder.md says."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

from dlrun.data import build_dataset
from dlrun.models import build_model
from dlrun.train import EarlyStopping, evaluate, run

CLASSIFICATION_COLUMNS = [
    "epoch",
    "step",
    "train_loss",
    "val_loss",
    "train_acc",
    "val_acc",
    "lr",
    "time_s",
]


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_run_folder_contract(make_cfg, tmp_path):
    cfg = make_cfg("trainer.epochs=4", "trainer.early_stopping.patience=null")
    summary = run(cfg, tmp_path)

    rows = read_csv(tmp_path / "metrics.csv")
    assert list(rows[0]) == CLASSIFICATION_COLUMNS
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    steps_per_epoch = math.ceil(summary["steps"] / 4)
    assert [int(r["step"]) for r in rows] == [steps_per_epoch * e for e in (1, 2, 3, 4)]
    assert all(
        float(a) <= float(b)
        for a, b in zip([r["time_s"] for r in rows], [r["time_s"] for r in rows[1:]])
    )

    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved == json.loads(json.dumps(summary, default=str))
    assert saved["status"] == "completed" and saved["epochs_run"] == 4
    for key in (
        "best_epoch",
        "best_val_loss",
        "test_loss",
        "test_acc",
        "n_params",
        "wall_s",
        "device",
        "seed",
        "versions",
    ):
        assert saved[key] is not None, key
    assert saved["versions"]["torch"] == torch.__version__
    assert "model:" in (tmp_path / "config.yaml").read_text()

    layers = read_csv(tmp_path / "layers.csv")
    assert {int(r["epoch"]) for r in layers} == {0, 1, 2, 3, 4}
    assert [r["layer"] for r in layers if r["epoch"] == "0"] == [
        "features.fc1",
        "features.fc2",
        "head",
    ]


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


def test_early_stopping_keeps_the_best_epoch(make_cfg, tmp_path):
    # Adam at a high rate on few samples overfits fast: val loss turns up early.
    cfg = make_cfg(
        "trainer.epochs=60",
        "trainer.early_stopping.patience=3",
        "optimizer.lr=0.01",
        "data.n_train=200",
    )
    summary = run(cfg, tmp_path)
    rows = read_csv(tmp_path / "metrics.csv")
    val = [float(r["val_loss"]) for r in rows]
    best_epoch = int(np.argmin(val)) + 1
    assert summary["status"] == "early_stopped"
    assert summary["best_epoch"] == best_epoch
    assert summary["epochs_run"] == best_epoch + 3
    # test and val metrics in the summary come from the restored best weights
    assert summary["val_loss"] == pytest.approx(val[best_epoch - 1], rel=1e-5)
    assert summary["best_val_loss"] == pytest.approx(min(val), rel=1e-12)


def test_early_stopping_rule():
    stopper = EarlyStopping(patience=2, min_delta=0.1)
    decisions = [stopper.step(v, epoch) for epoch, v in enumerate([1.0, 0.8, 0.75, 0.85, 0.5], 1)]
    assert decisions == [False, False, False, True, False]
    assert stopper.best_epoch == 5  # 0.75 was not better than 0.8 by min_delta

    acc = EarlyStopping(patience=1, mode="max")
    assert [acc.step(v, e) for e, v in enumerate([0.5, 0.6, 0.55], 1)] == [False, False, True]
    assert acc.best_epoch == 2


def test_regression_reports_rmse_and_saves_predictions(make_cfg, tmp_path):
    summary = run(make_cfg("data=regression", "trainer.epochs=3"), tmp_path)
    assert summary["task"] == "regression"
    assert summary["test_rmse"] == pytest.approx(math.sqrt(summary["test_loss"]), rel=1e-6)
    assert "train_rmse" in read_csv(tmp_path / "metrics.csv")[0]
    with np.load(tmp_path / "predictions.npz") as p:
        assert p["x"].shape == p["y_pred"].shape == p["f_true"].shape == (201, 1)
        np.testing.assert_allclose(p["f_true"], np.sin(2 * np.pi * p["x"]) + p["x"])
        assert float(p["noise_std"]) == pytest.approx(0.3)


def test_divergence_is_detected(make_cfg, tmp_path):
    summary = run(
        make_cfg("data=regression", "optimizer=sgd", "optimizer.lr=50", "trainer.epochs=10"),
        tmp_path,
    )
    assert summary["status"] == "diverged"
    assert summary["epochs_run"] < 10


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


@pytest.mark.parametrize(
    "overrides",
    [
        ("data=digits", "model=cnn2d", "model.width=8"),
        ("model=cnn1d", "model.width=8"),
        ("model=deep_linear", "model.depth=3"),
        ("data=moons", "model.bottleneck=4"),
        ("data=spirals",),
        ("data=circles",),
    ],
)
def test_every_model_and_data_set_trains(make_cfg, tmp_path, overrides):
    summary = run(make_cfg(*overrides, "trainer.epochs=2"), tmp_path)
    assert summary["status"] == "completed"
    assert 0.0 <= summary["test_acc"] <= 1.0
    assert math.isfinite(summary["test_loss"])


def test_threads_setting_reaches_torch(make_cfg, tmp_path):
    run(make_cfg("trainer.epochs=1", "trainer.threads=2"), tmp_path)
    assert torch.get_num_threads() == 2  # conftest puts the default back afterwards
