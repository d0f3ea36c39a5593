"""What a claim measures on the runs of one setting: a per-run number aggregated over seeds.

Per-run numbers come from summary.json (test_acc, steps_to_target...), follow
from it (test_error, gap), or from a layer (layers.csv before training; the
final weights in last.pt). bias² and variance belong to a setting as a whole:
they are measured across its seeds (dlrun.toolbox.bias_variance.decompose).
dlrun.config.claims lists the names.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dlrun.config import claims as form
from dlrun.errors import ConfigError
from dlrun.folders import runs as run_folder
from dlrun.results.study import Study


class Unmeasured(Exception):
    """The runs cannot measure the claim (the message says why)."""


@dataclass
class Stat:
    """A setting's metric over its seeds: one number per seed (sorted by seed).

    A measure of the setting as a whole (bias², variance) keeps each seed's row
    of predictions instead, and `statistic` computes it from rows of shape
    (..., seeds, grid), so a bootstrap can draw seeds again.
    """

    values: np.ndarray  # (seeds,) or, with a statistic, (seeds, grid)
    seeds: tuple = ()  # the seed of each row, when the runs record one
    dropped: int = 0  # runs of the setting that failed, diverged or gave no value
    statistic: Callable[[np.ndarray], np.ndarray] | None = None

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def whole(self) -> bool:
        return self.statistic is not None

    def of(self, rows: np.ndarray) -> np.ndarray:
        """The measure of rows of shape (..., seeds[, grid]): the seeds' mean, or the statistic."""
        return self.statistic(rows) if self.whole else rows.mean(axis=-1)

    @property
    def mean(self) -> float:
        return float(self.of(self.values[None])[0])

    @property
    def std(self) -> float:
        """The seeds' std (ddof 1); 0 for one seed or a measure of the whole setting."""
        return float(self.values.std(ddof=1)) if self.n > 1 and not self.whole else 0.0

    @property
    def se(self) -> float:
        return self.std / math.sqrt(self.n) if self.n > 1 and not self.whole else 0.0

    def __str__(self) -> str:
        dropped = f", {self.dropped} failed or diverged" if self.dropped else ""
        if self.whole:
            return f"{self.mean:.3g} (over {self.n} seeds{dropped})"
        if self.n == 1:
            return f"{self.mean:.3g} (n=1{dropped})"
        return f"{self.mean:.3g} ± {self.std:.2g} (n={self.n}{dropped})"


def measure(study: Study, runs: pd.DataFrame, metric: str) -> Stat:
    """The metric over the runs of one setting; `runs` may hold its unusable runs too."""
    usable = runs[runs["status"].isin(run_folder.USABLE)]
    broken = len(runs) - len(usable)
    if metric in form.SETTING_MEASURES:
        stat = decomposed(study, usable, metric)
        return Stat(stat.values, stat.seeds, broken + len(usable) - stat.n, stat.statistic)
    values = pd.to_numeric(per_run(study, usable, metric), errors="coerce")
    values = values[np.isfinite(values.astype(float))]
    if not len(values):
        raise Unmeasured(f"no finished run of {runs['setting'].iloc[0]} has a value of {metric}")
    order = seed_order(usable.loc[values.index])
    values = values.loc[order.index]
    return Stat(values.to_numpy(float), tuple(order), broken + len(usable) - len(values))


def seed_order(runs: pd.DataFrame) -> pd.Series:
    """The runs' seeds (index: run ids), sorted; the run ids themselves when no seed is recorded."""
    if "seed" in runs and runs["seed"].notna().all():
        return runs["seed"].sort_values(kind="stable")
    return pd.Series(list(runs.index), index=runs.index)


def per_run(study: Study, runs: pd.DataFrame, metric: str) -> pd.Series:
    """One number per run (index: run ids)."""
    layer = form.layer_measure(metric)
    if layer is not None:
        name, at = layer
        if name in form.CURVE_MEASURES:
            return curve(study, runs, at, name)
        if name == "unit_spread":
            return pd.Series({run: unit_spread(path, at) for run, path in runs["path"].items()})
        layers = study.runs.layers
        rows = layers[(layers["epoch"] == 0) & (layers["layer"] == at)].set_index("run")
        if not len(rows):
            raise Unmeasured(f"layers.csv has no layer {at} before training")
        return rows[name].reindex(runs.index)
    if metric.endswith("_error"):
        return 1.0 - column(runs, metric.replace("_error", "_acc"))
    if metric == "gap":
        return column(runs, "val_loss") - column(runs, "train_loss")
    return column(runs, metric)


def curve(study: Study, runs: pd.DataFrame, column_name: str, name: str) -> pd.Series:
    """Per run, from a metrics.csv column: its std over the last epochs (jitter,
    form.JITTER_EPOCHS) or its mean over every epoch (empty cells left out)."""
    metrics = study.runs.metrics
    if column_name not in metrics:
        raise Unmeasured(f"metrics.csv has no column {column_name}")
    curves = metrics[metrics["run"].isin(runs.index)].groupby("run")[column_name]
    if name == "mean":
        return curves.mean().reindex(runs.index)
    return curves.apply(lambda c: c.tail(form.JITTER_EPOCHS).std(ddof=1)).reindex(runs.index)


def column(runs: pd.DataFrame, name: str) -> pd.Series:
    if name not in runs:
        raise Unmeasured(f"the runs' summaries have no {name}")
    return pd.to_numeric(runs[name], errors="coerce")


def unit_spread(path: str, layer: str) -> float:
    """The largest difference between two units' incoming weights in the final weights.

    0 means every unit of the layer computes the same function: symmetry never broken.
    """

    try:
        from dlrun.run.checkpoints import load_checkpoint

        state = load_checkpoint(run_folder.last_checkpoint(path), root=Path(path))
    except (OSError, ConfigError):
        return math.nan
    weight = state["model"].get(f"{layer}.weight")
    if weight is None:
        raise Unmeasured(f"the model has no layer {layer}")
    rows = weight.reshape(len(weight), -1).double()
    return float((rows - rows[:1]).abs().max())


def decomposed(study: Study, runs: pd.DataFrame, metric: str) -> Stat:
    """bias² or variance of the setting's predictions on the regression grid.

    The claim's estimates are unbiased over seeds: variance with ddof 1, and
    bias² less the variance of the seeds' mean (the mean of n seeds still
    varies by variance / n). dlrun.toolbox.bias_variance.decompose reports
    the plain ones, whose sum is the mean error.
    """
    saved = {}
    for run in seed_order(runs).index:
        p = study.runs.predictions(run)
        if p is not None and np.isfinite(np.asarray(p["y_pred"], dtype=float)).all():
            saved[run] = p
    if len(saved) < 2:
        raise Unmeasured(f"{metric} needs predictions.npz from 2 or more seeds")
    first = next(iter(saved.values()))
    truth = np.asarray(first["f_true"], dtype=float).reshape(-1)
    rows = np.stack([np.asarray(p["y_pred"], dtype=float).reshape(-1) for p in saved.values()])
    seeds = tuple(seed_order(runs.loc[list(saved)]))
    return Stat(rows, seeds, 0, (bias2 if metric == "bias2" else variance)(truth))


def variance(truth: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The statistic: mean over the grid of the seeds' variance (ddof 1)."""
    del truth  # variance needs no truth; the signature is bias2's

    def statistic(rows: np.ndarray) -> np.ndarray:
        if rows.shape[-2] < 2:  # one seed: no variance to see
            return np.full(rows.shape[:-2], np.nan)
        return rows.var(axis=-2, ddof=1).mean(axis=-1)

    return statistic


def bias2(truth: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The statistic: mean over the grid of (seeds' mean − truth)² − variance / n."""

    def statistic(rows: np.ndarray) -> np.ndarray:
        n = rows.shape[-2]
        spread = rows.var(axis=-2, ddof=1) / n if n > 1 else 0.0
        return ((rows.mean(axis=-2) - truth) ** 2 - spread).mean(axis=-1)

    return statistic
