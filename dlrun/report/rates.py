"""Convergence rates: steps to a target loss against a swept parameter, on log-log axes.

Runs trained with `trainer.target_loss` record `steps_to_target`. Against a
parameter swept over decades (the condition number kappa of
experiments/optimizers_kappa.yaml), the slope of log(steps) on log(x) is the
rate's exponent: about 1 for gradient descent and 0.5 for heavy-ball momentum
on a quadratic (steps ~ kappa and ~ sqrt(kappa)).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dlrun.report.style import colors, log_axis, new_figure, nice, outside_legend, print_style
from dlrun.results.study import Study, label, numeric_keys

METRIC = "steps_to_target"


def rate_axis(study: Study, x: str | None = None) -> str | None:
    """The swept key to plot against: `x`, else the numeric key spanning the most decades."""
    usable = study.usable
    if METRIC not in usable or usable[METRIC].notna().sum() < 2:
        return None
    if x is not None:
        return x if x in usable else None
    spans = {}
    for key in numeric_keys(study):
        values = usable[key].astype(float)
        if (values > 0).all():
            spans[key] = np.log10(values.max() / values.min())
    best = max(spans, key=spans.get, default=None)
    return best if best is not None and spans[best] >= 1.0 else None


def groups(study: Study, x: str) -> pd.Series:
    """Each run's line: the categorical setting keys (e.g. optimizer=sgd), or one line."""
    usable = study.usable
    keys = [k for k in study.keys if k != x and k not in numeric_keys(study)]
    if not keys:
        return pd.Series("all runs", index=usable.index)
    return usable[keys].apply(lambda row: label(row.to_dict()), axis=1)


def rates(study: Study, x: str) -> pd.DataFrame:
    """Per group and x: mean steps over seeds; per group, the fitted log-log slope."""
    usable = study.usable[study.usable[METRIC].notna()]
    frame = pd.DataFrame(
        {
            "group": groups(study, x).loc[usable.index],
            "x": usable[x].astype(float),
            "steps": usable[METRIC],
        }
    )
    means = frame.groupby(["group", "x"], sort=True)["steps"].mean().reset_index()
    slopes = {}
    for group, rows in means.groupby("group", sort=False):
        rows = rows[rows["steps"] > 0]
        if len(rows) >= 2:
            slopes[group] = float(np.polyfit(np.log(rows["x"]), np.log(rows["steps"]), 1)[0])
    means["slope"] = means["group"].map(slopes)
    return means


@print_style
def plot_rates(study: Study, x: str | None = None) -> Figure:
    x = rate_axis(study, x)
    table = rates(study, x)
    fig, axes = new_figure(1, 1, f"Steps to the target loss against {x}")
    ax = axes[0, 0]
    handles, labels = [], []
    for (group, rows), color in zip(
        table.groupby("group", sort=False), colors(table["group"].nunique())
    ):
        (line,) = ax.plot(rows["x"], rows["steps"], "o-", color=color, gid=f"steps:{group}")
        handles.append(line)
        slope = rows["slope"].iloc[0]
        labels.append(f"{group} (slope {slope:.2f})" if np.isfinite(slope) else group)
    log_axis(ax, "x")
    log_axis(ax, "y")
    ax.set_xlabel(nice(x))
    ax.set_ylabel("optimizer steps to the target loss")
    ax.set_title("log-log: slope 1 means steps ∝ x, slope 0.5 means steps ∝ √x", fontsize="medium")
    outside_legend(fig, handles, labels)
    return fig


def rate_findings(study: Study, x: str | None = None) -> list[str]:
    x = rate_axis(study, x)
    if x is None:
        return []
    table = rates(study, x)
    slopes = table.drop_duplicates("group").set_index("group")["slope"].dropna()
    if slopes.empty:
        return []
    parts = [f"{group}: {slope:.2f}" for group, slope in slopes.items()]
    sentence = (
        f"Steps to the target loss grow like {x}^slope, log-log slope " + "; ".join(parts) + "."
    )
    if len(slopes) > 1:
        fast, slow = slopes.idxmin(), slopes.idxmax()
        top = table[table["x"] == table["x"].max()].set_index("group")["steps"]
        if fast in top and slow in top and top[fast] > 0:
            sentence += (
                f" At {x}={table['x'].max():g}, {fast} needs {top[slow] / top[fast]:.0f}x fewer steps"
                f" than {slow}."
            )
    return [sentence]
