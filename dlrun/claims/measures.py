"""What a claim measures on the runs of one setting: a per-run number aggregated over seeds.

Per-run numbers come from summary.json (test_acc, steps_to_target...), follow
from it (test_error, gap), or from a layer (layers.csv before training; the
final weights in last.pt). bias² and variance belong to a setting as a whole:
they are measured across its seeds (dlrun.toolbox.bias_variance.decompose).
dlrun.config.claims lists the names.
"""

from __future__ import annotations

import math
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
    """A setting's metric: mean and std (ddof 1) over n seeds; se, the mean's standard error."""

    mean: float
    std: float
    n: int
    whole: bool = False  # measured on the setting as a whole: no seed spread to report

    @property
    def se(self) -> float:
        return self.std / math.sqrt(self.n) if self.n > 1 and not self.whole else 0.0

    def __str__(self) -> str:
        if self.whole:
            return f"{self.mean:.3g} (over {self.n} seeds)"
        if self.n == 1:
            return f"{self.mean:.3g} (n=1)"
        return f"{self.mean:.3g} ± {self.std:.2g} (n={self.n})"


def measure(study: Study, runs: pd.DataFrame, metric: str) -> Stat:
    """The metric over the runs of one setting."""
    if metric in form.SETTING_MEASURES:
        return decomposed(study, runs, metric)
    values = per_run(study, runs, metric).dropna()
    values = values[np.isfinite(values.astype(float))]
    if not len(values):
        raise Unmeasured(f"no run of {runs['setting'].iloc[0]} has a value of {metric}")
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return Stat(float(values.mean()), std, len(values))


def per_run(study: Study, runs: pd.DataFrame, metric: str) -> pd.Series:
    """One number per run (index: run ids)."""
    layer = form.layer_measure(metric)
    if layer is not None:
        name, at = layer
        if name == "jitter":
            return jitter(study, runs, at)
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


def jitter(study: Study, runs: pd.DataFrame, column_name: str) -> pd.Series:
    """Per run: the std of a metrics.csv column over its last epochs (form.JITTER_EPOCHS)."""
    metrics = study.runs.metrics
    if column_name not in metrics:
        raise Unmeasured(f"metrics.csv has no column {column_name}")
    curves = metrics[metrics["run"].isin(runs.index)].groupby("run")[column_name]
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
    """bias² or variance of the setting's predictions on the regression grid."""
    from dlrun.toolbox.bias_variance import decompose

    saved = [p for p in (study.runs.predictions(run) for run in runs.index) if p is not None]
    if len(saved) < 2:
        raise Unmeasured(f"{metric} needs predictions.npz from 2 or more seeds")
    parts = decompose(
        [p["y_pred"] for p in saved], saved[0]["f_true"], float(saved[0]["noise_std"])
    )
    return Stat(parts[metric], 0.0, len(saved), whole=True)
