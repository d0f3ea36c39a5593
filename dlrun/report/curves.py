"""Curves against epoch: learning curves, the generalisation gap, optimizers compared.

One colour per setting; seeds of a setting are drawn as their mean with a
± std band, and the legend says how many seeds (n) each line averages.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from dlrun.report.style import (
    band,
    colors,
    epoch_axis,
    log_axis,
    log_scale_wanted,
    new_figure,
    note,
    outside_legend,
    print_style,
)
from dlrun.results.study import Study, curves_by_setting, label

LOSS_UNITS = {"classification": "loss (cross-entropy)", "regression": "loss (MSE)"}
TITLES = {"loss": "Loss", "acc": "Accuracy", "rmse": "RMSE"}
SCORE_UNITS = {"acc": "accuracy (fraction correct)", "rmse": "RMSE (target units)"}


def setting_colors(study: Study, settings: list[str]) -> dict[str, tuple]:
    """Ordered values (one numeric key, e.g. widths) get a ramp, anything else distinct hues."""
    return dict(zip(settings, colors(len(settings), study.ordered)))


def legend_label(study: Study, setting: str) -> str:
    return f"{setting} (n={study.n_seeds(setting)})"


def seeds_note(study: Study, settings: list[str]) -> str:
    return " (mean ± std over seeds)" if any(study.n_seeds(s) > 1 for s in settings) else ""


def draw_setting_curves(
    ax: Axes, stats: pd.DataFrame, column: str, settings: list[str], palette: dict, linestyle: str
) -> None:
    """One mean ± std band per setting from `stats` (curves_by_setting of `column`)."""
    for setting in settings:
        rows = stats[stats["setting"] == setting]
        if len(rows):
            band(
                ax,
                rows["epoch"],
                rows["mean"],
                rows["std"],
                palette[setting],
                linestyle=linestyle,
                gid=f"{column}:{setting}",
            )


def mark_best_epoch(
    ax: Axes, study: Study, stats: pd.DataFrame, settings: list[str], palette: dict
) -> None:
    """A hollow dot on the validation curve at the epoch early stopping kept (median over seeds)."""
    usable = study.usable
    for setting in settings:
        epochs = usable.loc[usable["setting"] == setting, "best_epoch"].dropna()
        rows = stats[stats["setting"] == setting]
        if not len(epochs) or not len(rows):
            continue
        epoch = rows["epoch"].iloc[(rows["epoch"] - epochs.median()).abs().argmin()]
        value = rows.loc[rows["epoch"] == epoch, "mean"].iloc[0]
        color = palette[setting]
        ax.plot(
            [epoch],
            [value],
            marker="o",
            markersize=7,
            markerfacecolor="white",
            markeredgecolor=color,
            markeredgewidth=1.8,
            linestyle="none",
            zorder=5,
            gid=f"best_epoch:{setting}",
        )
        if len(settings) == 1:
            ax.axvline(epoch, color="0.5", linestyle=":", linewidth=1, gid="best_epoch_line")


def style_legend(
    study: Study, settings: list[str], palette: dict, styles: bool
) -> tuple[list, list[str]]:
    """Setting colours (with n), then what line styles and markers mean."""
    handles = [Line2D([], [], color=palette[s], linewidth=2) for s in settings]
    labels = [legend_label(study, s) for s in settings]
    if styles:
        handles += [Line2D([], [], color="0.3", linestyle="--"), Line2D([], [], color="0.3")]
        labels += ["training (dashed)", "validation (solid)"]
    handles.append(
        Line2D([], [], marker="o", markerfacecolor="white", markeredgecolor="0.3", linestyle="none")
    )
    labels.append("best epoch (early stopping)")
    return handles, labels


def curve_panels(study: Study, split: bool) -> list[tuple[str, list[str], str]]:
    """(metric, splits drawn together, title) per panel: loss then accuracy/RMSE."""
    metrics = study.runs.metrics
    names = ["loss"] + ([study.score] if f"train_{study.score}" in metrics else [])
    if not study.validated:  # no validation split: no empty validation panels
        return [(name, ["train"], f"{TITLES[name]}: training") for name in names]
    if not split:
        return [
            (name, ["train", "val"], f"{TITLES[name]}: training and validation") for name in names
        ]
    return [
        (name, [part], f"{TITLES[name]}: {'training' if part == 'train' else 'validation'}")
        for name in names
        for part in ("train", "val")
    ]


def curve_split(study: Study) -> bool:
    """Several settings: training and validation in panels side by side (else one panel each)."""
    return len(study.drawn_settings()[0]) > 1 and study.validated


@print_style
def plot_curves(study: Study) -> Figure:
    """Training and validation loss (and accuracy or RMSE) against epoch, per setting.

    One setting: training dashed and validation solid in one panel per metric.
    Several: training and validation in panels side by side, so the colours stay readable.
    """
    settings, total = study.drawn_settings()
    split = curve_split(study)
    panels = curve_panels(study, split)
    rows, cols = (len(panels) // 2, 2) if split else (1, len(panels))
    fig, axes = new_figure(rows, cols, "Learning curves" + seeds_note(study, settings))
    palette = setting_colors(study, settings)
    for ax, (name, parts, title) in zip(axes.flat, panels):
        for part in parts:
            column = f"{part}_{name}"
            stats = study.curves(column)
            draw_setting_curves(
                ax,
                stats,
                column,
                settings,
                palette,
                "--" if len(parts) > 1 and part == "train" else "-",
            )
            if part == "val":
                mark_best_epoch(ax, study, stats, settings, palette)
        epoch_axis(ax)
        ax.set(ylabel=LOSS_UNITS[study.task] if name == "loss" else SCORE_UNITS[name], title=title)
        if name == "loss" and log_scale_wanted(study.curves("train_loss")["mean"]):
            log_axis(ax, "y")
    if split:
        for row in axes:  # training and validation on one scale, so they compare by eye
            row[1].sharey(row[0])
    if total > len(settings):
        note(axes[0][0], f"best {len(settings)} of {total} settings drawn")
    handles, labels = style_legend(study, settings, palette, styles=not split)
    if not study.validated:  # only the setting colours: no validation line, no best epoch
        handles, labels = handles[: len(settings)], labels[: len(settings)]
    outside_legend(fig, handles, labels)
    return fig


@print_style
def plot_gap(study: Study) -> Figure:
    """Generalisation gap against epoch: validation minus training loss (and accuracy the other way)."""
    settings, total = study.drawn_settings()
    metrics = study.runs.metrics
    gaps = {"loss_gap": ("val_loss", "train_loss", "validation − training loss")}
    if study.task == "classification" and "val_acc" in metrics:
        gaps["acc_gap"] = ("train_acc", "val_acc", "training − validation accuracy")
    derived = metrics.assign(**{name: metrics[a] - metrics[b] for name, (a, b, _) in gaps.items()})
    fig, axes = new_figure(1, len(gaps), "Generalisation gap" + seeds_note(study, settings))
    palette = setting_colors(study, settings)
    for ax, (name, (_, _, ylabel)) in zip(axes[0], gaps.items()):
        ax.axhline(0.0, color="0.4", linewidth=0.8)
        draw_setting_curves(
            ax, curves_by_setting(derived, study.usable, name), name, settings, palette, "-"
        )
        epoch_axis(ax)
        ax.set(ylabel=ylabel, title=f"Gap: {ylabel}")
    if total > len(settings):
        note(axes[0][0], f"best {len(settings)} of {total} settings drawn")
    handles = [Line2D([], [], color=palette[s], linewidth=2) for s in settings]
    outside_legend(fig, handles, [legend_label(study, s) for s in settings])
    return fig


def best_setting_per_optimizer(study: Study) -> dict[str, tuple[str, int]]:
    """For each optimizer: its best setting (by the study's metric) and how many it had."""
    ranked = study.ranked()
    usable = study.usable
    chosen: dict[str, tuple[str, int]] = {}
    for name, runs in usable.groupby(usable["optimizer.name"].astype(str), sort=False):
        candidates = [s for s in ranked.index if s in set(runs["setting"])]
        if candidates:
            chosen[name] = (candidates[0], len(candidates))
    return chosen


@print_style
def plot_optimizers(study: Study) -> Figure:
    """Training loss against seconds of training, one line per optimizer (its best setting).

    The learning curves already show training loss per epoch; this figure
    puts each epoch at the time it ended (metrics.csv `time_s`), so an
    optimizer whose steps cost more is placed further right. The time is the
    median over seeds: one job slowed by other work on the machine does not
    stretch its optimizer's line.
    """
    chosen = best_setting_per_optimizer(study)
    turns = study.curves("update_cos")  # empty for runs made before the column
    turns = turns[turns["setting"].isin([s for s, _ in chosen.values()]) & turns["mean"].notna()]
    fig, axes = new_figure(
        1,
        1 + (not turns.empty),
        "Optimizers: training loss"
        + seeds_note(study, [s for s, _ in chosen.values()])
        + " against time"
        + (", and the turn of successive updates" if not turns.empty else ""),
    )
    ax = axes[0][0]
    losses, metrics = study.curves("train_loss"), study.runs.metrics
    drawn, _ = study.drawn_settings()
    extra = [s for s, _ in chosen.values() if s not in drawn]
    palette = setting_colors(study, drawn + extra)  # the learning curves' colours
    handles, labels = [], []
    usable = study.usable
    for name, (setting, count) in chosen.items():
        seeds = usable.index[usable["setting"] == setting]
        time = metrics[metrics["run"].isin(seeds)].groupby("epoch")["time_s"].median()
        rows = losses[losses["setting"] == setting].join(time, on="epoch")
        handles.append(
            band(
                ax,
                rows["time_s"],
                rows["mean"],
                rows["std"],
                palette[setting],
                gid=f"optimizer:{name}",
            )
        )
        others = {
            k: usable.loc[usable["setting"] == setting, k].iloc[0]
            for k in study.keys
            if k != "optimizer.name"
        }
        note_ = f", best of {count}: {label(others)}" if count > 1 and others else ""
        labels.append(f"{name} (n={study.n_seeds(setting)}{note_})")
    if losses["mean"].gt(0).all():
        log_axis(ax, "y")
    ax.set(
        xlabel="seconds of training (median over seeds)",
        ylabel=LOSS_UNITS[study.task].replace("loss", "training loss"),
        title="Training loss per optimizer (log scale)",
    )
    if not turns.empty:
        plot_turns(axes[0][1], turns, {s: palette[s] for s, _ in chosen.values()})
    outside_legend(fig, handles, labels, title="optimizer")
    return fig


def plot_turns(ax, turns, colors: dict[str, str]) -> None:
    """metrics.csv's update_cos per epoch, one line per setting: -1 is a zigzag."""
    for setting, rows in turns.groupby("setting", sort=False):
        std = rows["std"].fillna(0)
        band(ax, rows["epoch"], rows["mean"], std, colors[setting], gid=f"update_cos:{setting}")
    ax.axhline(0.0, color="0.6", linewidth=0.8)
    ax.set_ylim(-1.05, 1.05)
    ax.set(
        xlabel="epoch",
        ylabel="cosine of successive updates (update_cos)",
        title="Oscillation: -1, each epoch undoes the last",
    )
