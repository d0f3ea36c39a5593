"""run(cfg, run_dir) fills the run folder as docs/run-folder.md says (dlrun/run/runner.py)."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

from dlrun.run.runner import run

CLASSIFICATION_COLUMNS = [
    "epoch",
    "step",
    "train_loss",
    "val_loss",
    "train_acc",
    "val_acc",
    "lr",
    "time_s",
    "update_cos",
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


def test_regression_reports_rmse_and_saves_predictions(make_cfg, tmp_path):
    summary = run(make_cfg("data=regression", "trainer.epochs=3"), tmp_path)
    assert summary["task"] == "regression"
    assert summary["test_rmse"] == pytest.approx(math.sqrt(summary["test_loss"]), rel=1e-6)
    assert "train_rmse" in read_csv(tmp_path / "metrics.csv")[0]
    with np.load(tmp_path / "predictions.npz") as p:
        assert p["x"].shape == p["y_pred"].shape == p["f_true"].shape == (201, 1)
        np.testing.assert_allclose(p["f_true"], np.sin(2 * np.pi * p["x"]) + p["x"])
        assert float(p["noise_std"]) == pytest.approx(0.3)


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
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["threads"], summary["threads_reason"]) == (2, "trainer.threads=2")


def test_the_default_threads_leave_busy_cores_alone_and_say_why(
    make_cfg, tmp_path, monkeypatch, capsys, machine_threads
):
    from dlrun import placement

    # two cores, one of them kept busy by another process (the load average says 1.1)
    monkeypatch.setattr(placement, "cpu_count", lambda: 2)
    monkeypatch.setattr(placement, "machine_cpus", lambda: 2)
    monkeypatch.setattr(placement, "slurm_cpus", lambda: None)
    monkeypatch.setattr(placement, "cgroup_cpus", lambda: None)
    monkeypatch.setattr(placement, "load_average", lambda: 1.1)
    monkeypatch.setattr(placement, "own_load", lambda: 0.05)
    torch.set_num_threads(2)
    summary = run(make_cfg("trainer.epochs=1"), tmp_path)
    assert torch.get_num_threads() == 1
    why = "2 CPUs allowed (CPU affinity), 1 of 2 free (load average 1.10, 0.05 of it this process)"
    assert (summary["threads"], summary["threads_reason"]) == (1, why)
    assert f"dlrun: 1 thread: {why}\n" in capsys.readouterr().out
    assert f"dlrun: 1 thread: {why}\n" in (tmp_path / "run.log").read_text()
