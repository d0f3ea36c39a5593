"""Per-layer diagnostics from layers.csv: gradient norms over training, activations at init.

Vanishing or exploding gradients show as a colour ramp across layers in the
heatmap; a bad initialisation shows as activation std collapsing or growing
with depth at epoch 0 (before any step).
"""

from __future__ import annotations

import textwrap

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
    ax.set_title(title)
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
    handles, labels = [], []
    for color, name in zip(colors(len(names), sequential), names):
        runs = groups.index[groups == name]
        rows = start[start["run"].isin(runs)].copy()
        if not len(rows):
            continue
        rows["depth"] = rows.groupby("run").cumcount() + 1
        stats = rows.groupby("depth")["act_std"].agg(["mean", "std"]).fillna(0.0)
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
        labels.append(f"{name} (n={len(runs)})")
    values = start["act_std"].to_numpy(dtype=float)
    if len(values) and np.nanmin(values) > 0 and np.nanmax(values) / np.nanmin(values) > 30:
        log_axis(ax, "y")
    ax.set(
        xlabel="layer depth (1 = first weight layer)",
        ylabel="activation std at init (epoch 0)",
        title="Activation std against depth at initialisation",
    )
    ax.xaxis.get_major_locator().set_params(integer=True)
    return handles, labels


def layers_figure(n_heatmaps: int, title: str) -> tuple[Figure, list[Axes], Axes]:
    """One heatmap: side by side with the activation panel; more: heatmaps on top, activations below."""
    names = [f"h{i}" for i in range(n_heatmaps)]
    layout = [[*names, "act"]] if n_heatmaps <= 1 else [names, ["act"] * n_heatmaps]
    width = PANEL[0] * len(layout[0])
    fig = Figure(figsize=(width, PANEL[1] * len(layout) + 0.8), layout="constrained")  # + legend
    axes = fig.subplot_mosaic(layout)
    fig.suptitle(title, fontsize=12)
    return fig, [axes[name] for name in names], axes["act"]


def heatmap_count(study: Study) -> int:
    """How many settings get a heatmap (the best ones, at most MAX_HEATMAPS)."""
    return len(study.drawn_settings(limit=MAX_HEATMAPS)[0])


@print_style
def plot_layers(study: Study) -> Figure:
    """Gradient-norm heatmaps (layer × epoch) for the best settings, and activation std at init."""
    heatmaps, total = study.drawn_settings(limit=MAX_HEATMAPS)
    title = "Layers: gradient norms during training, activations at initialisation"
    if total > len(heatmaps):
        title += f"\n(heatmaps for the best {len(heatmaps)} of {total} settings)"
    fig, heat_axes, act_ax = layers_figure(len(heatmaps), title)
    grids = {setting: grad_norm_grid(study, setting) for setting in heatmaps}
    norm = shared_norm([grid for grid, _, _ in grids.values()])
    for ax, (setting, (grid, names, epochs)) in zip(heat_axes, grids.items()):
        n = study.n_seeds(setting)
        name = textwrap.fill(setting, 45) + (f" (mean of {n} seeds)" if n > 1 else "")
        image = draw_heatmap(ax, grid, names, epochs, f"Gradient norm per layer\n{name}", norm)
    if heat_axes:  # one colour bar for every heatmap: they share the scale
        fig.colorbar(image, ax=heat_axes, label="gradient norm (log scale)")
    handles, labels = draw_init_activations(act_ax, study)
    outside_legend(fig, handles, labels)
    return fig
