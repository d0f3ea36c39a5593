"""The toolbox in real runs: symmetry, vanishing signals, schedules, augmentation, transfer, bad values."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys

import pytest
import torch

from dlrun.config import ConfigError
from dlrun.train import run

SMALL = ["data=spirals", "data.n_samples=600", "model.width=16", "model.dropout=0"]


def read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def best_weights(run_dir) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)["model"]


def test_zero_init_never_breaks_symmetry(make_cfg, tmp_path):
    run(make_cfg(*SMALL, "init=zeros", "trainer.epochs=4"), tmp_path)
    weights = best_weights(tmp_path)
    # With every weight zero, hidden activations are relu(0) = 0, so no gradient
    # reaches any weight: hidden layers (and the head's weights) stay exactly
    # zero, and only the head's bias learns (the class frequencies).
    for name in ("features.fc1", "features.fc2"):
        w, b = weights[f"{name}.weight"], weights[f"{name}.bias"]
        assert torch.equal(w, w[:1].expand_as(w)) and torch.equal(b, b[:1].expand_as(b))
        assert torch.count_nonzero(w) == 0
    assert torch.count_nonzero(weights["head.weight"]) == 0
    assert torch.count_nonzero(weights["head.bias"]) > 0


def test_constant_init_moves_the_weights_but_every_hidden_unit_stays_identical(make_cfg, tmp_path):
    run(make_cfg(*SMALL, "init=constant", "init.value=0.1", "trainer.epochs=4"), tmp_path)
    weights = best_weights(tmp_path)
    for name in ("features.fc1", "features.fc2"):
        w, b = weights[f"{name}.weight"], weights[f"{name}.bias"]
        assert not torch.allclose(w, torch.full_like(w, 0.1))  # training moved them...
        assert torch.equal(w, w[:1].expand_as(w))  # ...the same way for every unit
        assert torch.equal(b, b[:1].expand_as(b))


def _deep_run(make_cfg, tmp_path, init: str):
    cfg = make_cfg(
        "model.depth=30", "model.width=64", "model.dropout=0", f"init={init}",
        "optimizer=sgd", "optimizer.lr=0.05", "trainer.epochs=3",
    )  # fmt: skip
    run(cfg, tmp_path / init)
    layers = [r for r in read_csv(tmp_path / init / "layers.csv") if r["epoch"] == "0"]
    last_hidden = next(r for r in layers if r["layer"] == "features.fc30")
    losses = [float(r["train_loss"]) for r in read_csv(tmp_path / init / "metrics.csv")]
    return float(last_hidden["act_std"]), losses


def test_30_layer_relu_net_vanishes_under_xavier_but_not_he(make_cfg, tmp_path):
    he_std, he_losses = _deep_run(make_cfg, tmp_path, "he")
    xavier_std, xavier_losses = _deep_run(make_cfg, tmp_path, "xavier")
    # Glorot's variance 1/n for a square layer halves the signal's variance at
    # every ReLU: 29 layers later it is 2^-14.5 smaller than He's.
    assert he_std > 100 * xavier_std
    assert 0.1 < he_std < 10
    assert he_losses[-1] < he_losses[0] - 0.05
    assert abs(xavier_losses[-1] - xavier_losses[0]) < 0.01


def test_layers_csv_has_every_weight_layer_at_epoch_0_and_every_epoch(make_cfg, tmp_path):
    run(make_cfg(*SMALL, "model.bottleneck=4", "trainer.epochs=2"), tmp_path)
    rows = read_csv(tmp_path / "layers.csv")
    expected = ["features.fc1", "features.bottleneck", "features.fc2", "head"]
    for epoch in ("0", "1", "2"):
        epoch_rows = [r for r in rows if r["epoch"] == epoch]
        assert [r["layer"] for r in epoch_rows] == expected
        assert all(float(r["grad_norm"]) > 0 and float(r["act_std"]) > 0 for r in epoch_rows)


def test_schedule_rate_is_logged_every_epoch(make_cfg, tmp_path):
    cfg = make_cfg(*SMALL, "optimizer=sgd", "optimizer.lr=0.1", "schedule=inverse_sqrt",
                   "schedule.warmup_epochs=1", "trainer.epochs=4")  # fmt: skip
    run(cfg, tmp_path)
    lrs = [float(r["lr"]) for r in read_csv(tmp_path / "metrics.csv")]
    # One warm-up epoch at lr/2, then eta / sqrt(t) for t = 1, 2, 3.
    assert lrs == pytest.approx([0.05, 0.1, 0.1 / math.sqrt(2), 0.1 / math.sqrt(3)])


def test_augmented_run_trains_and_is_reproducible(make_cfg, tmp_path):
    cfg = make_cfg("data/augment=signal", "model.width=32", "trainer.epochs=2")
    first = run(cfg, tmp_path / "a")
    second = run(cfg, tmp_path / "b")
    assert first["train_loss"] == second["train_loss"]
    plain = run(make_cfg("model.width=32", "trainer.epochs=2"), tmp_path / "c")
    assert plain["train_loss"] != first["train_loss"]  # the transform was applied


@pytest.fixture
def source_run(make_cfg, tmp_path_factory):
    folder = tmp_path_factory.mktemp("source")
    run(
        make_cfg(
            "data=moons",
            "data.n_samples=600",
            "model.width=16",
            "model.dropout=0",
            "trainer.epochs=2",
        ),
        folder,
    )
    return folder


def test_transfer_loads_freezes_and_trains(make_cfg, tmp_path, source_run, capsys):
    # From moons (2 classes) to spirals (3 classes): the features fit, the head does not.
    cfg = make_cfg(
        *SMALL, f"transfer.source={source_run}", "transfer.freeze=[features]", "trainer.epochs=2"
    )
    summary = run(cfg, tmp_path)
    report = json.loads((tmp_path / "summary.json").read_text())["transfer"]
    assert report == summary["transfer"]
    features = [
        "features.fc1.weight",
        "features.fc1.bias",
        "features.fc2.weight",
        "features.fc2.bias",
    ]
    assert report["loaded"] == features
    assert {s["name"]: s["reason"] for s in report["skipped"]} == {
        "head.weight": "shape (2, 16) in source, (3, 16) here",
        "head.bias": "shape (2,) in source, (3,) here",
    }
    assert report["frozen"] == features
    assert "loaded 4 tensors, skipped 2" in capsys.readouterr().out
    source, trained = best_weights(source_run), best_weights(tmp_path)
    for name in features:  # frozen: still the source's weights after training
        assert torch.equal(trained[name], source[name])
    first = [r for r in read_csv(tmp_path / "layers.csv") if r["epoch"] == "1"]
    assert [r["grad_norm"] for r in first if r["layer"] != "head"] == ["nan", "nan"]


def test_transfer_reset_head_keeps_the_fresh_head(make_cfg, tmp_path, source_run):
    cfg = make_cfg("data=moons", "data.n_samples=600", "model.width=16", "model.dropout=0",
                   f"transfer.source={source_run}", "transfer.reset_head=true",
                   "transfer.freeze=[features.fc1]", "trainer.epochs=1")  # fmt: skip
    summary = run(cfg, tmp_path)
    report = summary["transfer"]
    assert [s["name"] for s in report["skipped"]] == ["head.weight", "head.bias"]
    assert report["frozen"] == ["features.fc1.weight", "features.fc1.bias"]
    source, trained = best_weights(source_run), best_weights(tmp_path)
    assert torch.equal(trained["features.fc1.weight"], source["features.fc1.weight"])
    assert not torch.equal(trained["features.fc2.weight"], source["features.fc2.weight"])


def test_transfer_with_other_widths_reports_mismatches(make_cfg, tmp_path, source_run):
    cfg = make_cfg(
        "data=moons",
        "data.n_samples=600",
        "model.width=24",
        f"transfer.source={source_run}",
        "trainer.epochs=1",
    )
    report = run(cfg, tmp_path)["transfer"]
    assert report["loaded"] == ["head.bias"]  # the only tensor whose shape still fits
    assert len(report["skipped"]) == 5 and all(
        s["reason"].startswith("shape") for s in report["skipped"]
    )


def test_transfer_errors_are_one_line_config_errors(make_cfg, tmp_path):
    with pytest.raises(ConfigError, match="no such run folder"):
        run(make_cfg(*SMALL, f"transfer.source={tmp_path / 'nowhere'}"), tmp_path / "run")
    with pytest.raises(ConfigError, match="no checkpoints/best.pt"):
        run(make_cfg(*SMALL, f"transfer.source={tmp_path}"), tmp_path / "run")
    assert not (tmp_path / "run").exists()  # nothing written before the error


@pytest.mark.parametrize(
    "override, names",
    [
        ("model.dropout=1.5", "model.dropout"),
        ("optimizer.lr=-1", "optimizer.lr"),
        ("init=glorious", "glorious"),
    ],
)
def test_bad_values_fail_with_one_line_and_exit_2(tmp_path, override, names):
    env = {**os.environ, "COLUMNS": "200"}
    cmd = [
        sys.executable,
        "-m",
        "dlrun",
        "train",
        "data=moons",
        "device=cpu",
        "trainer.progress=false",
        override,
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dlrun: error:") and names in lines[0], (
        proc.stderr
    )
    assert not list(tmp_path.rglob("summary.json"))  # no run folder left behind


def test_transfer_pretrain_trains_the_source_once_then_reuses_it(make_cfg, tmp_path):
    source = tmp_path / "pretrained" / "digits0-4"
    overrides = (
        "data.classes=[5,6,7,8,9]",
        f"transfer.source={source}",
        "transfer.reset_head=true",
        'transfer.pretrain=["data.classes=[0,1,2,3,4]"]',
    )
    first = run(make_cfg(*overrides), tmp_path / "a")
    made = (source / "checkpoints" / "best.pt").stat().st_mtime_ns
    source_cfg = (source / "config.yaml").read_text()
    assert "- 0" in source_cfg and "- 5" not in source_cfg  # trained on the other classes
    assert first["transfer"]["loaded"] and "head.weight" not in first["transfer"]["loaded"]
    second = run(make_cfg(*overrides), tmp_path / "b")
    assert (source / "checkpoints" / "best.pt").stat().st_mtime_ns == made  # not trained again
    assert second["transfer"]["loaded"] == first["transfer"]["loaded"]
    assert not (tmp_path / "pretrained" / "digits0-4.lock").exists()
