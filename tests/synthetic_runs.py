"""Synthetic run folders with known numbers, written as training would (docs/run-folder.md).

For tests and benchmarks of the report: no torch, milliseconds per run. The
curves are smooth exponentials from a start to an end value, optionally with
validation loss turning up after an epoch (overfitting) or a nan (divergence).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from dlrun.config.choices import SCHEMAS
from dlrun.config.schema import TrainerConfig, TransferConfig
from dlrun.folders import runs

LAYER_NAMES = ("features.fc1", "features.fc2", "head")


def base_config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The resolved default config as config.yaml holds it, with dotted-key overrides."""
    config: dict[str, Any] = {group: asdict(schema()) for group, schema in SCHEMAS.items()}
    config["trainer"] = asdict(TrainerConfig())
    config["transfer"] = asdict(TransferConfig())
    config.update(seed=0, name="mlp-mnist1d", resume=None, quick=False)
    for key, value in (overrides or {}).items():
        *parents, leaf = key.split(".")
        node = config
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return config


def decay(epochs: int, start: float, end: float, rate: float = 4.0) -> np.ndarray:
    """start -> end over epochs 1..epochs, fast first (like a training curve)."""
    t = np.arange(1, epochs + 1) / epochs
    return end + (start - end) * np.exp(-rate * t)


def classification_metrics(
    epochs: int,
    train_end: float = 0.2,
    val_end: float = 0.4,
    overfit_from: int | None = None,
    overfit_slope: float = 0.03,
    diverge_at: int | None = None,
    jitter: float = 0.0,
    seed: int = 0,
) -> pd.DataFrame:
    """metrics.csv rows: loss falls to its end value; val loss rises after `overfit_from`."""
    rng = np.random.default_rng(seed)
    train = decay(epochs, 2.3, train_end) + jitter * rng.standard_normal(epochs)
    val = decay(epochs, 2.3, val_end) + jitter * rng.standard_normal(epochs)
    if overfit_from is not None:
        after = np.arange(1, epochs + 1) - overfit_from
        val = np.where(after > 0, val[overfit_from - 1] + overfit_slope * after, val)
    epoch = np.arange(1, epochs + 1)
    frame = pd.DataFrame(
        {
            "epoch": epoch,
            "step": epoch * 10,
            "train_loss": train,
            "val_loss": val,
            "train_acc": np.clip(1.0 - train / 2.3, 0, 1),
            "val_acc": np.clip(1.0 - val / 2.3, 0, 1),
            "lr": 1e-3,
            "time_s": epoch * 0.1,
        }
    )
    if diverge_at is not None:
        frame = frame.iloc[:diverge_at].copy()
        frame.loc[frame.index[-1], ["train_loss", "val_loss"]] = np.nan
    return frame


def regression_metrics(epochs: int, train_end: float = 0.1, val_end: float = 0.15) -> pd.DataFrame:
    """metrics.csv rows of a regression run: MSE losses and their square roots (RMSE)."""
    train, val = decay(epochs, 1.0, train_end), decay(epochs, 1.0, val_end)
    epoch = np.arange(1, epochs + 1)
    return pd.DataFrame(
        {
            "epoch": epoch,
            "step": epoch * 10,
            "train_loss": train,
            "val_loss": val,
            "train_rmse": np.sqrt(train),
            "val_rmse": np.sqrt(val),
            "lr": 1e-3,
            "time_s": epoch * 0.1,
        }
    )


def layer_rows(
    epochs: int, names: tuple[str, ...] = LAYER_NAMES, act_std: list[float] | None = None
) -> pd.DataFrame:
    """layers.csv rows: one per layer at epoch 0 and after every epoch."""
    act_std = act_std or [0.5 / (i + 1) for i in range(len(names))]
    rows = [
        {
            "epoch": e,
            "layer": name,
            "grad_norm": 0.1 * (i + 1) * (1 + e) ** -0.5,
            "act_mean": 0.0,
            "act_std": act_std[i],
        }
        for e in range(epochs + 1)
        for i, name in enumerate(names)
    ]
    return pd.DataFrame(rows)


def summary_from(
    metrics: pd.DataFrame, status: str, task: str = "classification", **extra: Any
) -> dict[str, Any]:
    """summary.json as training writes it, with the best-epoch values of the curves."""
    finite = metrics.dropna(subset=["val_loss"])
    best = finite.loc[finite["val_loss"].idxmin()] if len(finite) else metrics.iloc[-1]
    score = runs.score_name(task)
    summary = {
        "status": status,
        "best_epoch": int(best["epoch"]),
        "epochs_run": int(metrics["epoch"].iloc[-1]),
        "steps": int(metrics["step"].iloc[-1]),
        "monitor": "val_loss",
        "best_val_loss": float(best["val_loss"]),
        "task": task,
        "device": "cpu",
        "n_params": 1000,
        "wall_s": float(metrics["time_s"].iloc[-1]),
        "total_s": float(metrics["time_s"].iloc[-1]) + 1.0,
        "versions": {"dlrun": "0.1.0"},
        "git_commit": None,
        "host": "synthetic",
    }
    if status in runs.USABLE:
        for split, column in (("train", "train"), ("val", "val"), ("test", "val")):
            summary[f"{split}_loss"] = float(best[f"{column}_loss"])
            summary[f"{split}_{score}"] = float(best[f"{column}_{score}"])
    summary.update(extra)
    return summary


class _NoAliases(yaml.SafeDumper):
    """A dict used twice is written out twice, as OmegaConf writes config.yaml: the
    readers refuse YAML anchors and aliases (dlrun.folders.safe)."""

    def ignore_aliases(self, data) -> bool:
        return True


def write_run(
    folder: Path,
    overrides: dict[str, Any] | None = None,
    metrics: pd.DataFrame | None = None,
    summary: dict[str, Any] | None = None,
    layers: pd.DataFrame | None = None,
    predictions: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write whichever run-folder files are given (config.yaml always)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    text = yaml.dump(base_config(overrides), Dumper=_NoAliases, sort_keys=False)
    (folder / runs.CONFIG).write_text(text)
    if metrics is not None:
        metrics.to_csv(folder / runs.METRICS, index=False, na_rep="nan")  # as csv.DictWriter does
    if layers is not None:
        layers.to_csv(folder / runs.LAYERS, index=False)
    if summary is not None:
        config = base_config(overrides)
        full = {"name": config["name"], "seed": config["seed"], "run_dir": str(folder), **summary}
        (folder / runs.SUMMARY).write_text(json.dumps(full, indent=2))
    if predictions is not None:
        np.savez(folder / runs.PREDICTIONS, **predictions)
    return folder


def write_classification_run(
    folder: Path,
    overrides: dict[str, Any] | None = None,
    epochs: int = 20,
    status: str = "completed",
    **curve: Any,
) -> Path:
    """A whole classification run: curves from `curve` (see classification_metrics), summary, layers."""
    metrics = classification_metrics(epochs, **curve)
    summary = summary_from(metrics, status)
    return write_run(
        folder, overrides, metrics, summary, layer_rows(int(metrics["epoch"].iloc[-1]))
    )
