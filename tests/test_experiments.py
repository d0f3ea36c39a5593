"""The experiment library: every file composes; the quick sizes show the lecture's claims (slow)."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from dlrun.compose import parse_overrides
from dlrun.experiments import header, list_experiments, quick_overrides
from dlrun.paths import experiments_dir

NAMES = [name for name, _ in list_experiments()]
LECTURE_CLAIMS = {
    "init_symmetry",
    "deep_init",
    "tanh_init",
    "optimizers",
    "optimizers_kappa",
    "lr_decay",
    "regularization",
    "early_stopping",
    "augmentation",
    "bottleneck",
    "transfer",
    "bias_variance",
    "double_descent",
}


def test_the_library_holds_every_claim():
    assert set(NAMES) == LECTURE_CLAIMS


@pytest.mark.parametrize("name", sorted(LECTURE_CLAIMS))
def test_every_experiment_composes_with_its_header(make_cfg, name):
    path = experiments_dir() / f"{name}.yaml"
    fields = header(path)
    assert path.read_text().startswith(f"# dlrun train -m experiment={name}")
    for key in ("shows", "expected", "quick", "runtime"):
        assert fields.get(key), f"{name}.yaml has no '# {key}:' line"
    cfg = make_cfg(f"experiment={name}", quick=False)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["name"] == name
    # the quick size composes too (sweep values are checked by Hydra at launch)
    parsed = parse_overrides(quick_overrides(name))
    singles = [o.input_line for o in parsed if not o.is_sweep_override()]
    OmegaConf.to_container(make_cfg(f"experiment={name}", *singles, quick=False), resolve=True)


# --- the quick sizes, run as a user runs them ---------------------------------


def sweep(tmp_path: Path, name: str, *extra: str) -> list[dict]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    args = [
        "-m",
        "dlrun",
        "train",
        "-m",
        f"experiment={name}",
        "quick=true",
        "trainer.progress=false",
    ]
    out = subprocess.run(
        [sys.executable, *args, *extra], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr[-3000:]
    runs = []
    for summary in sorted((tmp_path / "outputs" / "sweeps").rglob("summary.json")):
        config = OmegaConf.load(summary.parent / "config.yaml")
        runs.append({"dir": summary.parent, "cfg": config, **json.loads(summary.read_text())})
    return runs


def layer_std_at_init(run_dir: Path) -> dict[str, float]:
    with open(run_dir / "layers.csv", newline="") as f:
        return {r["layer"]: float(r["act_std"]) for r in csv.DictReader(f) if r["epoch"] == "0"}


@pytest.mark.slow
def test_init_symmetry_zeros_stays_at_chance(tmp_path):
    import torch

    runs = {r["cfg"].init.name: r for r in sweep(tmp_path, "init_symmetry")}
    assert runs["zeros"]["test_acc"] < 0.15  # ten classes: chance is 0.1
    assert min(runs["xavier"]["test_acc"], runs["he"]["test_acc"]) > runs["zeros"]["test_acc"] + 0.1
    weights = torch.load(runs["constant"]["dir"] / "checkpoints" / "last.pt", weights_only=True)
    w = weights["model"]["features.fc2.weight"]
    assert torch.equal(w, w[:1].expand_as(w))  # every hidden unit identical after training


@pytest.mark.slow
def test_deep_init_he_keeps_the_signal_xavier_loses_it(tmp_path):
    runs = {r["cfg"].init.name: r for r in sweep(tmp_path, "deep_init")}
    he, xavier = (layer_std_at_init(runs[k]["dir"]) for k in ("he", "xavier"))
    assert he["features.fc30"] > 100 * xavier["features.fc30"]
    assert runs["he"]["train_loss"] < runs["xavier"]["train_loss"] - 0.01


@pytest.mark.slow
def test_momentum_speedup_on_the_quadratic_grows_with_kappa(tmp_path):
    steps = defaultdict(dict)
    for r in sweep(tmp_path, "optimizers_kappa"):
        steps[r["cfg"].optimizer.name][float(r["cfg"].data.condition)] = r["steps_to_target"]
    kappas = sorted(steps["sgd"])
    speedup = [steps["sgd"][k] / steps["momentum"][k] for k in kappas]
    assert speedup == sorted(speedup) and speedup[-1] > 5 * speedup[0]
    slope = lambda name: np.polyfit(np.log(kappas), np.log([steps[name][k] for k in kappas]), 1)[0]  # noqa: E731
    assert 0.9 < slope("sgd") < 1.1  # steps grow like kappa
    assert 0.35 < slope("momentum") < 0.65  # and like sqrt(kappa)


@pytest.mark.slow
def test_bias_variance_bias_falls_with_width(tmp_path):
    by_width = defaultdict(list)
    for r in sweep(tmp_path, "bias_variance"):
        with np.load(r["dir"] / "predictions.npz") as f:
            by_width[r["cfg"].model.width].append(
                (f["y_pred"].ravel(), f["f_true"].ravel(), float(f["noise_std"]))
            )
    bias2 = {}
    for width, runs in by_width.items():
        y = np.stack([p for p, _, _ in runs])
        bias2[width] = float(np.mean((y.mean(0) - runs[0][1]) ** 2))
        assert len(runs) == 4 and all(math.isclose(n, 0.3) for _, _, n in runs)
    widths = sorted(bias2)
    assert [bias2[w] for w in widths] == sorted(bias2.values(), reverse=True)
    assert bias2[widths[0]] > 5 * bias2[widths[-1]]
