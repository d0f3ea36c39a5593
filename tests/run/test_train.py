"""The epoch loop: early stopping, divergence, evaluation (dlrun/run/train.py)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from dlrun.errors import ConfigError
from dlrun.run.runner import run
from dlrun.run.train import EarlyStopping


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


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


def test_divergence_is_detected(make_cfg, tmp_path):
    summary = run(
        make_cfg("data=regression", "optimizer=sgd", "optimizer.lr=50", "trainer.epochs=10"),
        tmp_path,
    )
    assert summary["status"] == "diverged"
    assert summary["epochs_run"] < 10


def test_a_step_budget_ends_inside_an_epoch(make_cfg, tmp_path):
    # 1000 samples: 720 train at batch 100 -> 8 steps per epoch; 20 steps end in epoch 3
    cfg = make_cfg("trainer.steps=20", "trainer.batch_size=100", "trainer.epochs=1")
    summary = run(cfg, tmp_path)
    rows = read_csv(tmp_path / "metrics.csv")
    assert [int(r["step"]) for r in rows] == [8, 16, 20]
    assert summary["status"] == "completed" and summary["steps"] == 20
    assert summary["epochs_run"] == 3  # trainer.steps replaces trainer.epochs


def test_early_stopping_off_tests_the_final_weights(make_cfg, tmp_path):
    cfg = make_cfg(
        "trainer.epochs=4",
        "trainer.early_stopping.patience=null",
        "trainer.early_stopping.restore_best=false",
        "trainer.early_stopping.monitor=val_acc",
    )
    summary = run(cfg, tmp_path)
    last = read_csv(tmp_path / "metrics.csv")[-1]
    assert summary["status"] == "completed" and summary["epochs_run"] == 4
    assert summary["val_acc"] == pytest.approx(float(last["val_acc"]), abs=1e-6)
    assert summary["best_val_acc"] == max(
        float(r["val_acc"]) for r in read_csv(tmp_path / "metrics.csv")
    )


def test_without_a_validation_split_every_training_row_trains(make_cfg, tmp_path):
    cfg = make_cfg(
        "data.val_fraction=0", "trainer.early_stopping.patience=null", "trainer.epochs=2"
    )
    summary = run(cfg, tmp_path)
    assert summary["status"] == "completed" and "val_loss" not in summary
    rows = read_csv(tmp_path / "metrics.csv")
    assert [int(r["step"]) for r in rows] == [7, 14]  # 800 rows at batch 128: nothing held out
    assert all(np.isnan(float(r["val_loss"])) for r in rows)
    with pytest.raises(ConfigError, match="no validation split: set patience=null"):
        run(make_cfg("data.val_fraction=0"), tmp_path / "stopping")


def heavy_ball_cosines(lam: np.ndarray, lr: float, mu: float, epochs: int) -> list[float]:
    """Successive updates' cosines of heavy ball on 1/2 sum lam (w - w*)^2 from w = 0, with
    w*^2 = 2 / (dim lam) (dlrun/data/quadratic.py), worked coordinate by coordinate."""
    error, velocity = -np.sqrt(2.0 / (len(lam) * lam)), np.zeros_like(lam)
    updates = []
    for _ in range(epochs):
        velocity = mu * velocity + lam * error
        updates.append(-lr * velocity)
        error = error + updates[-1]
    return [
        float(u @ v / np.linalg.norm(u) / np.linalg.norm(v)) for v, u in zip(updates, updates[1:])
    ]


@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_update_cos_is_the_cosine_between_successive_full_batch_steps(
    make_cfg, tmp_path, optimizer
):
    # Least squares whose Hessian is diag(lam) (the bias stays at 0: the inputs are centred),
    # one full-batch step per epoch: gradient descent zigzags across the steep directions
    # (cosines near -1), heavy ball at the same step does not.
    from dlrun.data.quadratic import eigenvalues

    kappa, lr, epochs = 100, 0.99, 12
    cfg = make_cfg(
        "data=quadratic",
        f"data.condition={kappa}",
        "model=deep_linear",
        "model.depth=0",
        "init=zeros",
        f"optimizer={optimizer}",
        f"optimizer.lr={lr}",
        f"trainer.epochs={epochs}",
        "trainer.batch_size=100000",
        "trainer.early_stopping.patience=null",
    )
    run(cfg, tmp_path)
    rows = read_csv(tmp_path / "metrics.csv")
    assert rows[0]["update_cos"] == "nan"  # the first step has none before it
    measured = [float(r["update_cos"]) for r in rows[1:]]
    mu = cfg.optimizer.momentum
    expected = heavy_ball_cosines(eigenvalues(kappa, cfg.data.dim), lr, mu, epochs)
    assert measured == pytest.approx(expected, abs=2e-4)
    assert (max(measured) < -0.1) if mu == 0 else (min(measured) > 0.5)
