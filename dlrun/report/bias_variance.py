"""Bias–variance and double descent: error against model size, and the measured decomposition.

Error is 1 − accuracy for classification and the MSE (the loss) for regression.
The interpolation threshold is the smallest model whose mean training error
reaches ~0. For regression runs, the predictions on the fixed grid
(predictions.npz) of the seeds of one size give, with f the true function,

    bias² = mean over x of (mean over seeds of ŷ(x) − f(x))²
    variance = mean over x of the variance over seeds of ŷ(x)     (ddof 0)
    noise = noise_std²

so bias² + variance = the mean over seeds of the grid MSE against f, and adding
the noise gives the expected error on a fresh noisy target.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from dlrun.report.style import (
    colors,
    errorbar,
    log_axis,
    log_scale_wanted,
    new_figure,
    nice,
    outside_legend,
    print_style,
    value_ticks,
)
from dlrun.results.study import Study, label, sort_values
from dlrun.toolbox.bias_variance import decompose

DEFAULT_THRESHOLD = 0.01  # training error at or below this counts as interpolating
SIZE_PREFIX = "model."


def size_key(x: str | None) -> str:
    return x or "n_params"


def group_keys(study: Study, x: str) -> list[str]:
    """Settings that are not the model size: each gets its own curve."""
    return [
        k
        for k in study.keys
        if k != x
        and not (
            x == "n_params"
            and k.startswith(SIZE_PREFIX)
            and pd.api.types.is_numeric_dtype(study.usable[k])
        )
    ]


def supports_bias_variance(study: Study, x: str | None) -> bool:
    """A size sweep: --x given and numeric, or several model sizes from swept model.* keys."""
    usable = study.usable
    key = size_key(x)
    if key not in usable or not pd.api.types.is_numeric_dtype(usable[key]):
        return False
    if x is not None:
        return usable[key].nunique() >= 2
    swept_size = any(
        k.startswith(SIZE_PREFIX) and pd.api.types.is_numeric_dtype(usable[k]) for k in study.keys
    )
    return swept_size and usable[key].nunique() >= 3


def errors(study: Study, x: str | None = None) -> pd.DataFrame:
    """One row per usable run: group, size, training and test error."""
    usable, key = study.usable, size_key(x)
    keys = group_keys(study, key)
    if study.task == "classification":
        train, test = 1.0 - usable["train_acc"], 1.0 - usable["test_acc"]
    else:
        train, test = usable["train_loss"], usable["test_loss"]
    groups = [label({k: row[k] for k in keys}) or "all runs" for _, row in usable.iterrows()]
    frame = pd.DataFrame(
        {"group": groups, "x": usable[key].astype(float), "train": train, "test": test},
        index=usable.index,
    )
    # groups in the order of their values (lr 0.001 before 0.01), not as text
    return frame.loc[usable.sort_values(keys, key=sort_values).index] if keys else frame


def size_stats(errs: pd.DataFrame) -> pd.DataFrame:
    """Per (group, size): mean and std (0 for one seed) of both errors, and n."""
    order = {group: i for i, group in enumerate(dict.fromkeys(errs["group"]))}
    stats = errs.groupby(["group", "x"], sort=False).agg(
        train_mean=("train", "mean"),
        train_std=("train", "std"),
        test_mean=("test", "mean"),
        test_std=("test", "std"),
        n=("test", "size"),
    )
    stats = stats.fillna(0.0).reset_index()
    return stats.sort_values(
        ["group", "x"], key=lambda c: c.map(order) if c.name == "group" else c, ignore_index=True
    )


def interpolation_threshold(
    stats: pd.DataFrame, threshold: float = DEFAULT_THRESHOLD
) -> float | None:
    """The smallest size whose mean training error is at most `threshold` (one group's stats)."""
    reached = stats[stats["train_mean"] <= threshold]
    return float(reached["x"].min()) if len(reached) else None


def decomposition(study: Study, x: str | None = None) -> pd.DataFrame:
    """Per (group, size): the decomposition over the seeds that saved predictions.npz."""
    errs = errors(study, x)
    rows = []
    for (group, size), runs in errs.groupby(["group", "x"], sort=True):
        saved = [p for p in (study.runs.predictions(run) for run in runs.index) if p is not None]
        if saved:
            parts = decompose(
                [p["y_pred"] for p in saved], saved[0]["f_true"], float(saved[0]["noise_std"])
            )
            rows.append({"group": group, "x": size, **parts, "test_mean": runs["test"].mean()})
    return pd.DataFrame(rows)


def mark_threshold(ax: Axes, x_value: float, threshold: float, color, text: bool = True) -> None:
    ax.axvline(x_value, color=color, linestyle=":", linewidth=1.5, gid="interpolation_threshold")
    if text:
        ax.annotate(
            f"interpolation threshold\n(training error ≤ {threshold:g})",
            xy=(x_value, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(4, -4),
            textcoords="offset points",
            va="top",
            ha="left",
            fontsize="small",
            color=color,
        )


def draw_errors(ax: Axes, stats: pd.DataFrame, threshold: float) -> tuple[list, list[str]]:
    """Training (dashed) and test (solid) error per group; the threshold dotted. Legend entries."""
    groups = list(dict.fromkeys(stats["group"]))
    single = len(groups) == 1
    palette = colors(max(len(groups), 2))
    handles, labels, marked = [], [], False
    for i, group in enumerate(groups):
        rows = stats[stats["group"] == group]
        n = "/".join(str(v) for v in sorted(set(rows["n"])))
        for part, style in (("train", "--"), ("test", "-")):
            color = palette[(0 if part == "train" else 1) if single else i]
            container = errorbar(
                ax,
                rows["x"],
                rows[f"{part}_mean"],
                yerr=rows[f"{part}_std"],
                color=color,
                linestyle=style,
                marker="o",
                markersize=4,
                capsize=3,
                gid=f"{part}_error:{group}",
            )
            if single:
                handles.append(container)
                labels.append(f"{'training' if part == 'train' else 'test'} error (n={n})")
        if not single:
            handles.append(Line2D([], [], color=palette[i], linewidth=2))
            labels.append(f"{group} (n={n})")
        where = interpolation_threshold(rows, threshold)
        if where is not None:
            # one label is enough; more groups' thresholds are told apart by colour
            mark_threshold(ax, where, threshold, "0.25" if single else palette[i], text=not marked)
            marked = True
    if not single:
        handles += [Line2D([], [], color="0.3", linestyle="--"), Line2D([], [], color="0.3")]
        labels += ["training error (dashed)", "test error (solid)"]
    ax.set_ylim(bottom=0)  # errors are never negative, whatever a wide ± std bar says
    return handles, labels


def draw_decomposition(ax: Axes, parts: pd.DataFrame, title: str) -> list:
    lines = [
        ax.plot(parts["x"], parts["bias2"], "o-", color="C0", label="bias²")[0],
        ax.plot(parts["x"], parts["variance"], "s-", color="C3", label="variance")[0],
        ax.plot(parts["x"], parts["noise"], "--", color="0.5", label="noise (σ²)")[0],
        ax.plot(
            parts["x"],
            parts["total"],
            "-",
            color="black",
            linewidth=2,
            label="bias² + variance + noise",
        )[0],
        ax.plot(
            parts["x"],
            parts["test_mean"],
            "D",
            color="C1",
            markersize=5,
            label="measured test MSE (test split)",
        )[0],
    ]
    ax.set(ylabel="squared error (target units²)", title=title)
    return lines


@print_style
def plot_bias_variance(
    study: Study, x: str | None = None, threshold: float = DEFAULT_THRESHOLD
) -> Figure:
    """Training and test error against model size; for regression also bias² + variance + noise."""
    key = size_key(x)
    stats = size_stats(errors(study, x))
    parts = decomposition(study, x) if study.task == "regression" else pd.DataFrame()
    groups = list(dict.fromkeys(parts["group"]))[:3] if len(parts) else []
    fig, axes = new_figure(
        1, 1 + len(groups), "Bias–variance: error against model size (mean ± std over seeds)"
    )
    error_label = (
        "error (1 − accuracy)" if study.task == "classification" else "error (MSE, target units²)"
    )
    handles, labels = draw_errors(axes[0][0], stats, threshold)
    axes[0][0].set_ylabel(error_label)
    axes[0][0].set_title("Training and test error")
    for ax, group in zip(axes[0][1:], groups):
        rows = parts[parts["group"] == group]
        n = "/".join(str(v) for v in sorted(set(rows["n"])))
        title = f"Decomposition over seeds (n={n})" + ("" if group == "all runs" else f"\n{group}")
        lines = draw_decomposition(ax, rows, title)
    if groups:
        handles += lines
        labels += [line.get_label() for line in lines]
    for ax in axes[0]:
        ax.set_xlabel(nice(key))
        if log_scale_wanted(stats["x"]):
            log_axis(ax, "x")
        if key != "n_params":  # parameter counts are long numbers: leave them to the locator
            value_ticks(ax, stats["x"])
    outside_legend(fig, handles, labels)
    return fig
