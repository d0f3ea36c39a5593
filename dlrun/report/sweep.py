"""The sweep plot: the final metric against each swept numeric parameter, mean ± std over seeds.

Without a numeric parameter (optimizer × init, say) it is a dot plot of the
metric per setting, every seed shown, so a spread is visible next to the mean.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dlrun.report.curves import setting_colors
from dlrun.report.style import (
    colors,
    errorbar,
    log_axis,
    log_scale_wanted,
    new_figure,
    nice,
    note,
    print_style,
    value_ticks,
)
from dlrun.results.study import MAX_SETTINGS, Study, label, numeric_keys, sort_values


def line_keys(study: Study, x_key: str, group: str | None) -> list[str]:
    """The keys that tell a panel's lines apart: --group, or every other setting key."""
    return [group] if group and group != x_key else [k for k in study.keys if k != x_key]


def sweep_stats(study: Study, x_key: str, group: str | None = None) -> pd.DataFrame:
    """Per (line, x value): mean, std (0 for one seed) and n of the metric; lines in value order."""
    keys = line_keys(study, x_key, group)
    usable = study.usable.sort_values(keys, key=sort_values) if keys else study.usable
    lines = [label({k: row[k] for k in keys}) or "mean over seeds" for _, row in usable.iterrows()]
    frame = pd.DataFrame(
        {"line": lines, "x": usable[x_key].astype(float), "y": usable[study.metric]}
    )
    frame["line"] = pd.Categorical(frame["line"], categories=list(dict.fromkeys(lines)))
    stats = frame.groupby(["line", "x"], observed=True)["y"].agg(["mean", "std", "count"])
    stats = stats.reset_index().rename(columns={"count": "n"}).fillna({"std": 0.0})
    return stats.assign(line=stats["line"].astype(str))


def best_lines(stats: pd.DataFrame, higher_is_better: bool, limit: int = MAX_SETTINGS) -> list[str]:
    """The lines to draw: all, or the `limit` whose best point is best."""
    best = (
        stats.groupby("line", sort=False)["mean"].max()
        if higher_is_better
        else stats.groupby("line", sort=False)["mean"].min()
    )
    lines = list(dict.fromkeys(stats["line"]))
    if len(lines) <= limit:
        return lines
    keep = set(best.sort_values(ascending=not higher_is_better).index[:limit])
    return [line for line in lines if line in keep]


@print_style
def plot_sweep(study: Study, group: str | None = None) -> Figure:
    """Final metric against each numeric setting key, one line per other setting (or --group)."""
    keys = numeric_keys(study)
    if not keys:
        return plot_settings_dots(study)
    fig, axes = new_figure(1, len(keys), f"Sweep: {nice(study.metric)} (mean ± std over seeds)")
    fig.set_figwidth(fig.get_figwidth() + 2.2 * len(keys))  # room for each panel's legend
    for ax, key in zip(axes[0], keys):
        stats = sweep_stats(study, key, group)
        lines = best_lines(stats, study.higher_is_better)
        ordered = len(line_keys(study, key, group)) == 1 and is_numeric(
            study.usable, line_keys(study, key, group)[0]
        )
        palette = dict(zip(lines, colors(len(lines), ordered)))
        for line in lines:
            rows = stats[stats["line"] == line]
            n = "/".join(str(v) for v in sorted(set(rows["n"])))
            errorbar(
                ax,
                rows["x"],
                rows["mean"],
                yerr=rows["std"],
                color=palette[line],
                marker="o",
                markersize=5,
                capsize=3,
                linewidth=1.5,
                gid=f"sweep:{key}:{line}",
                label=f"{line} (n={n})",
            )
        if log_scale_wanted(stats["x"]):
            log_axis(ax, "x")
        value_ticks(ax, stats["x"])
        ax.set(
            xlabel=key,
            ylabel=nice(study.metric),
            title=f"{nice(study.metric).capitalize()} against {key}",
        )
        if len(lines) < stats["line"].nunique():
            note(ax, f"best {len(lines)} of {stats['line'].nunique()} lines drawn")
        # each panel has its own lines (the other keys' values), so its own legend beside it
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, fontsize="small")
    return fig


def is_numeric(table: pd.DataFrame, key: str) -> bool:
    return pd.api.types.is_numeric_dtype(table[key]) and not pd.api.types.is_bool_dtype(table[key])


def plot_settings_dots(study: Study) -> Figure:
    """The metric per setting, best on top: each seed a dot, the mean ± std a bar."""
    ranked = study.ranked().iloc[: 3 * MAX_SETTINGS]
    height = max(2.4, 0.35 * len(ranked) + 1.2)
    fig, axes = new_figure(1, 1, f"Settings compared: {nice(study.metric)}")
    fig.set_size_inches(7.5, height)
    ax = axes[0][0]
    usable = study.usable
    drawn, _ = study.drawn_settings()
    palette = setting_colors(study, drawn)  # the learning curves' colours; grey if not drawn there
    positions = np.arange(len(ranked))[::-1]  # best at the top
    for y, (setting, row) in zip(positions, ranked.iterrows()):
        seeds = usable.loc[usable["setting"] == setting, study.metric]
        ax.plot(seeds, np.full(len(seeds), y), "o", color="0.6", markersize=4, linestyle="none")
        errorbar(
            ax,
            [row["mean"]],
            [y],
            xerr=[row["std"]],
            color=palette.get(setting, "0.35"),
            marker="D",
            markersize=6,
            capsize=4,
            gid=f"setting:{setting}",
        )
    ax.set_yticks(positions, [f"{s} (n={int(r['n'])})" for s, r in ranked.iterrows()])
    ax.set(xlabel=nice(study.metric), title="grey dots: seeds; diamond and bar: mean ± std")
    ax.grid(axis="y", visible=False)
    return fig
