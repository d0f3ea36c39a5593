"""Per-layer diagnostics from layers.csv: gradient norms over training, activations at init.

Vanishing or exploding gradients show as a colour ramp across layers in the
heatmap; a bad initialisation shows as activation std collapsing or growing
with depth at epoch 0 (before any step).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from dlrun.report.style import (
    PANEL,
    colors,
    epoch_axis,
    errorbar,
    log_axis,
    outside_legend,
    print_style,
)
from dlrun.results.study import MAX_SETTINGS, Study, label, sort_values

MAX_HEATMAPS = 3


def usable_layers(study: Study) -> pd.DataFrame:
    layers = study.runs.layers
    return layers[layers["run"].isin(study.usable.index)]


def supports_layers(study: Study) -> bool:
    return len(usable_layers(study)) > 0


def layer_order(rows: pd.DataFrame) -> list[str]:
    """Layer names in forward order, as layers.csv lists them."""
    return list(dict.fromkeys(rows["layer"]))


def grad_norm_grid(study: Study, setting: str) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(layers × epochs) mean gradient norm over the setting's seeds; layer names; epochs."""
    layers = usable_layers(study)
    runs = study.usable.index[study.usable["setting"] == setting]
    rows = layers[layers["run"].isin(runs)]
    order = layer_order(rows)
    grid = rows.pivot_table(
        index="layer", columns="epoch", values="grad_norm", aggfunc="mean"
    ).reindex(order)
    return grid.to_numpy(dtype=float), order, grid.columns.to_numpy()


def shared_norm(grids: list[np.ndarray]) -> LogNorm:
    """One log colour scale over every heatmap, so a colour means the same norm in each panel."""
    values = np.concatenate([g[np.isfinite(g) & (g > 0)] for g in grids]) if grids else []
    low, high = (values.min(), values.max()) if len(values) else (1e-8, 1.0)
    return LogNorm(low, max(high, low * 1.0001))


def draw_heatmap(
    ax: Axes, grid: np.ndarray, names: list[str], epochs: np.ndarray, title: str, norm: LogNorm
):
    # zero gradients (e.g. zeros init) are drawn at the floor of the scale, not left blank
    shown = np.where(np.isfinite(grid), np.clip(grid, norm.vmin, None), np.nan)
    extent = (epochs.min() - 0.5, epochs.max() + 0.5, len(names) - 0.5, -0.5)
    image = ax.imshow(
        shown,
        aspect="auto",
        interpolation="nearest",
        norm=norm,
        cmap="magma",
        extent=extent,
        gid="grad_norm_heatmap",
    )
    ax.set_yticks(range(len(names)), names)
    epoch_axis(ax, "epoch (0 = before training)")
    ax.set_title(title, fontsize="medium")
    ax.grid(False)
    return image


# Before the first step only these can change activations; the optimizer and schedule cannot.
AT_INIT = ("init.", "model.", "data.")


def init_groups(study: Study) -> pd.Series:
    """Each usable run's activation line: its init and the model/data keys that vary."""
    usable = study.usable
    keys = [k for k in study.keys if k.startswith(AT_INIT)]
    if "init.name" not in keys and "init.name" in usable:
        keys = ["init.name", *keys]
    ordered = usable.sort_values(keys, key=sort_values) if keys else usable
    labels = [label({k: row[k] for k in keys}) or "all runs" for _, row in ordered.iterrows()]
    return pd.Series(labels, index=ordered.index)


def draw_init_activations(ax: Axes, study: Study) -> tuple[list, list[str]]:
    """Activation std per layer depth at epoch 0, mean ± std over runs, one line per init group."""
    layers = usable_layers(study)
    start = layers[layers["epoch"] == 0]
    groups = init_groups(study)
    names = list(dict.fromkeys(groups))[:MAX_SETTINGS]
    sequential = (
        len(names) > 2
        and len([k for k in study.keys if k.startswith(AT_INIT)]) == 1
        and study.ordered
    )
    floor = log_floor(start["act_std"].to_numpy(dtype=float))
    handles, labels = [], []
    for color, name in zip(colors(len(names), sequential), names):
        runs = groups.index[groups == name]
        rows = start[start["run"].isin(runs)].copy()
        if not len(rows):
            continue
        rows["depth"] = rows.groupby("run").cumcount() + 1
        stats = rows.groupby("depth")["act_std"].agg(["mean", "std"]).fillna(0.0)
        at_floor = floor is not None and bool((stats["mean"] < floor).any())
        if floor is not None:  # a log axis: zeros (init=zeros) sit on its floor, the legend says so
            stats["std"] = stats["std"].where(stats["mean"] >= floor, 0.0)
            stats["mean"] = stats["mean"].clip(lower=floor)
        line = errorbar(
            ax,
            stats.index,
            stats["mean"],
            yerr=stats["std"],
            marker="o",
            color=color,
            capsize=3,
            gid=f"act_std:{name}",
        )
        handles.append(line)
        labels.append(
            f"{name} (n={len(runs)})" + (", 0 drawn at the axis floor" if at_floor else "")
        )
    if floor is not None:
        log_axis(ax, "y")
    ax.set(
        xlabel="layer depth (1 = first weight layer)",
        ylabel="activation std at init (epoch 0)",
        title="Activation std against depth at initialisation",
    )
    ax.xaxis.get_major_locator().set_params(integer=True)
    return handles, labels


def log_floor(values: np.ndarray, span: float = 30.0) -> float | None:
    """The floor of a log axis when the positive values span more than `span` times, else None.

    Activation std ranges over orders of magnitude across inits (1e-23 to 1 in
    tanh_init); on a linear axis all but the largest lie flat on zero. Zeros
    (init=zeros) have no place on a log axis: they are drawn at this floor,
    a decade under the smallest positive value.
    """
    positive = values[np.isfinite(values) & (values > 0)]
    if not len(positive):
        return None
    if positive.max() / positive.min() <= span and len(positive) == np.isfinite(values).sum():
        return None
    return float(positive.min()) / 10.0


def layers_figure(n_heatmaps: int, title: str) -> tuple[Figure, list[Axes], Axes]:
    """One heatmap: side by side with the activation panel; more: heatmaps on top, at most
    three a row, activations below. Two panels wide, as every other figure."""
    names = [f"h{i}" for i in range(n_heatmaps)]
    if n_heatmaps <= 1:
        layout = [[*names, "act"]]
    else:
        rows = math.ceil(n_heatmaps / 3)
        cols = math.ceil(n_heatmaps / rows)
        cells = names + ["."] * (rows * cols - n_heatmaps)
        layout = [cells[r * cols : (r + 1) * cols] for r in range(rows)] + [["act"] * cols]
    fig = Figure(figsize=(PANEL[0] * 2, PANEL[1] * len(layout) + 0.8), layout="constrained")
    axes = fig.subplot_mosaic(layout, empty_sentinel=".")
    fig.suptitle(title)
    return fig, [axes[name] for name in names], axes["act"]


def heatmap_settings(study: Study, named: list[str] = ()) -> tuple[list[str], int]:
    """The settings that get a heatmap, in natural order, and how many there are.

    Every setting a claim names comes first (init=zeros in init_symmetry: the
    setting the experiment is about, however it ranks), then the best ones up
    to MAX_HEATMAPS.
    """
    settings = study.settings()
    named = [s for s in settings if s in set(named)]
    if len(settings) <= MAX_HEATMAPS:
        return settings, len(settings)
    best = [s for s in study.ranked().index if s not in named]
    chosen = set(named) | set(best[: max(0, MAX_HEATMAPS - len(named))])
    return [s for s in settings if s in chosen], len(settings)


def heatmap_count(study: Study, named: list[str] = ()) -> int:
    return len(heatmap_settings(study, named)[0])


@print_style
def plot_layers(study: Study, named: list[str] = ()) -> Figure:
    """Gradient-norm heatmaps (layer × epoch) for the settings claims name and the best ones,
    and activation std at init."""
    heatmaps, total = heatmap_settings(study, named)
    title = "Layers: gradient norms during training, activations at initialisation"
    if total > len(heatmaps):
        which = "the settings the claims name and the best" if named else "the best"
        title += f"\n(heatmaps for {which} {len(heatmaps)} of {total} settings)"
    fig, heat_axes, act_ax = layers_figure(len(heatmaps), title)
    grids = {setting: grad_norm_grid(study, setting) for setting in heatmaps}
    norm = shared_norm([grid for grid, _, _ in grids.values()])
    for ax, (setting, (grid, names, epochs)) in zip(heat_axes, grids.items()):
        n = study.n_seeds(setting)
        # one key a line: a panel is a third of the figure wide
        name = setting.replace(", ", "\n") + (f"\n(mean of {n} seeds)" if n > 1 else "")
        image = draw_heatmap(ax, grid, names, epochs, f"Gradient norm per layer\n{name}", norm)
    if heat_axes:  # one colour bar for every heatmap: they share the scale
        fig.colorbar(image, ax=heat_axes, label="gradient norm (log scale)")
    handles, labels = draw_init_activations(act_ax, study)
    outside_legend(fig, handles, labels)
    return fig
