"""Shared figure helpers: the Agg backend, print-readable defaults, colours, bands, saving.

Figures are made with `matplotlib.figure.Figure` directly (no pyplot), so no
global figure state grows across a 100-run report and nothing needs closing.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec

import matplotlib

matplotlib.use("Agg")  # reports are files; never open a window (and work on headless machines)

import matplotlib.style  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import colormaps  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter  # noqa: E402

P = ParamSpec("P")

# The one style of every figure: font sizes, line widths, grid (a matplotlib style file).
STYLE = Path(__file__).with_name("dlrun.mplstyle")
PANEL = (5.0, 3.6)  # inches per panel
LABELS = {
    "train_loss": "training loss",
    "val_loss": "validation loss",
    "test_loss": "test loss",
    "train_acc": "training accuracy",
    "val_acc": "validation accuracy",
    "test_acc": "test accuracy",
    "train_rmse": "training RMSE",
    "val_rmse": "validation RMSE",
    "test_rmse": "test RMSE",
    "best_val_loss": "best validation loss",
    "n_params": "parameters (count)",
}


def nice(column: str) -> str:
    """A readable axis label for a metric or config key."""
    return LABELS.get(column, column)


def new_figure(rows: int, cols: int, title: str) -> tuple[Figure, np.ndarray]:
    """A constrained-layout figure with a grid of axes (always a 2-D array) and a title."""
    width = max(PANEL[0] * cols, 7.0)  # one panel alone still leaves room for its legend and title
    fig = Figure(figsize=(width, PANEL[1] * rows + 0.8), layout="constrained")  # + legend below
    axes = fig.subplots(rows, cols, squeeze=False)
    fig.suptitle(title)
    return fig, axes


def print_style(plot: Callable[P, Figure]) -> Callable[P, Figure]:
    """Draw the figure under the print defaults without changing the caller's rcParams."""

    @functools.wraps(plot)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Figure:
        with matplotlib.style.context(STYLE):
            return plot(*args, **kwargs)

    return wrapper


def colors(n: int, sequential: bool = False) -> list[tuple[float, ...]]:
    """Distinct colours; a sequential ramp when the settings are ordered values (widths, rates)."""
    if sequential and n > 2:
        ramp = colormaps["viridis"]
        return [ramp(x) for x in np.linspace(0.0, 0.9, n)]
    cycle = colormaps["tab10"]
    return [cycle(i % 10) for i in range(n)]


def band(
    ax: Axes,
    x,
    mean,
    std,
    color,
    label: str | None = None,
    linestyle: str = "-",
    gid: str | None = None,
):
    """A mean line with a ± std band (the band only where std > 0, i.e. several seeds)."""
    x, mean, std = (np.asarray(v, dtype=float) for v in (x, mean, std))
    (line,) = ax.plot(
        x, mean, color=color, linestyle=linestyle, linewidth=1.6, label=label, gid=gid
    )
    if np.nanmax(std, initial=0.0) > 0:
        ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.18, linewidth=0, gid=gid)
    return line


def errorbar(ax: Axes, x, y, gid: str | None = None, **kwargs):
    """ax.errorbar, with `gid` on the data line only (not on caps and bars), so tests can find it."""
    container = ax.errorbar(np.asarray(x, dtype=float), np.asarray(y, dtype=float), **kwargs)
    container.lines[0].set_gid(gid)
    return container


def log_scale_wanted(values: pd.Series | np.ndarray, decades: float = 1.5) -> bool:
    """A log axis when positive values span more than `decades` powers of ten."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return len(values) > 1 and values.min() > 0 and np.log10(values.max() / values.min()) >= decades


def outside_legend(fig: Figure, handles: list, labels: list[str], title: str | None = None) -> None:
    """One legend under the panels, as many columns as fit the figure's width: never over data or titles."""
    if not handles:
        return
    longest = max(len(text) for text in labels)
    per_row = max(
        1, int(fig.get_figwidth() * 13 // (longest + 6))
    )  # ~13 characters per inch at 9 pt
    rows = -(-len(labels) // per_row)
    columns = -(-len(labels) // rows)  # balanced: 5 entries in 3 + 2, not 4 + 1
    fig.legend(
        handles, labels, loc="outside lower center", ncols=columns, title=title, frameon=False
    )


def log_axis(ax: Axes, which: str = "y") -> None:
    """A log axis labelled 0.5, 1, 2, 100 rather than 5×10⁻¹ (plain numbers read better in print)."""
    axis = ax.yaxis if which == "y" else ax.xaxis
    (ax.set_yscale if which == "y" else ax.set_xscale)("log")
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    axis.set_major_formatter(plain)
    low, high = ax.get_ylim() if which == "y" else ax.get_xlim()
    if high / low < 30:  # less than ~1.5 decades: label the minor ticks too, or few labels remain
        axis.set_minor_formatter(plain)
    else:
        axis.set_minor_formatter(NullFormatter())


def value_ticks(ax: Axes, values, limit: int = 8) -> None:
    """Ticks at the values searched (a sweep's 16, 64, 256), when there are few of them."""
    values = sorted(set(float(v) for v in values))
    if len(values) <= limit:
        ax.set_xticks(values, [f"{v:g}" for v in values])
        ax.xaxis.set_minor_formatter(NullFormatter())


def epoch_axis(ax: Axes, label: str = "epoch") -> None:
    """Epochs are whole numbers: no 2.5 ticks."""
    ax.set_xlabel(label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def note(ax: Axes, text: str) -> None:
    """A small grey remark in the panel's lower left (e.g. how many settings are drawn)."""
    ax.text(
        0.01,
        0.01,
        text,
        transform=ax.transAxes,
        fontsize="small",
        color="0.35",
        va="bottom",
        ha="left",
    )


def to_bytes(fig: Figure, fmt: str = "png", dpi: int = 130) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=dpi)
    return buffer.getvalue()
