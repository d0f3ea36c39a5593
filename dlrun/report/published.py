"""Measured beside published: claims that quote a number, drawn as the source prints its table.

A claim `near: 0.94` with a `source` on one setting is a published cell. When
the runs carry two or more, the report lays them out as a table (columns: the
first key of the claims' settings, rows: the second) with the measured mean ±
std beside the published number in each cell, and a bar figure of the same.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from dlrun.claims.decide import MARKS, Result
from dlrun.claims.render import marks_to_html
from dlrun.config.claims import describe_setting, form
from dlrun.report.style import colors, new_figure, nice, outside_legend, print_style


def published(results: list[Result]) -> list[Result]:
    """The decided claims that quote one setting's published number."""
    return [
        r
        for r in results
        if form(r.claim) == "value"
        and r.claim.get("near") is not None
        and r.claim.get("source")
        and r.claim["of"]
        and len(r.stats) == 1
    ]


def _percent(metric: str) -> bool:
    return metric.endswith("_acc") or metric.endswith("_error")


def _number(value: float, metric: str) -> str:
    return f"{100 * value:.1f}" if _percent(metric) else f"{value:.3g}"


def grid(results: list[Result]) -> pd.DataFrame:
    """The published cells as a table: rows × columns of 'measured ± std (published)'."""
    cells = published(results)
    if len(cells) < 2:
        return pd.DataFrame()
    rows, columns, text = [], [], {}
    for r in cells:
        row, column = _row(r), _column(r)
        rows, columns = [*rows, row], [*columns, column]
        stat, metric = next(iter(r.stats.values())), r.claim["metric"]
        unit = "%" if _percent(metric) else ""
        spread = f" ± {_number(stat.std, metric)}" if stat.n > 1 else ""
        text[(row, column)] = (
            f"{MARKS[r.verdict]} {_number(stat.mean, metric)}{spread}{unit} "
            f"(published {(100 if unit else 1) * r.claim['near']:.3g}{unit})"
        )
    rows, columns = list(dict.fromkeys(rows)), list(dict.fromkeys(columns))
    frame = pd.DataFrame(
        [[text.get((row, col), "") for col in columns] for row in rows], index=rows, columns=columns
    )
    return frame.rename_axis(nice(cells[0].claim["metric"])).reset_index()


def grid_html(frame: pd.DataFrame, results: list[Result]) -> str:
    if frame.empty:
        return ""
    source = published(results)[0].claim["source"]
    table = marks_to_html(frame.to_html(index=False, border=0, escape=True))
    return (
        f'<p class="meta">Measured (mean ± std over seeds) beside the published number '
        f'({html.escape(source)}):</p>\n<div class="scroll">{table}</div>\n'
    )


def print_grid(frame: pd.DataFrame, console) -> None:
    from rich import box
    from rich.table import Table

    if frame.empty:
        return
    table = Table(box=box.SIMPLE_HEAD, title="measured beside published", title_justify="left")
    for column in frame.columns:
        table.add_column(str(column))
    for _, row in frame.iterrows():
        table.add_row(*[str(v) for v in row])
    console.print(table)


@print_style
def plot_published(results: list[Result]) -> Figure:
    """Grouped bars of the measured means (± std) with the published number marked on each."""
    cells = published(results)
    metric = cells[0].claim["metric"]
    scale = 100.0 if _percent(metric) else 1.0
    groups = list(dict.fromkeys(_column(r) for r in cells))
    series = list(dict.fromkeys(_row(r) for r in cells))
    fig, axes = new_figure(1, 1, "Measured (bars, mean ± std over seeds) beside published (black)")
    ax = axes[0][0]
    width = 0.8 / len(series)
    palette = colors(max(len(series), 2))
    for j, name in enumerate(series):
        for r in (r for r in cells if _row(r) == name):
            i = groups.index(_column(r))
            x = i - 0.4 + width * (j + 0.5)
            stat = next(iter(r.stats.values()))
            ax.bar(x, scale * stat.mean, width * 0.9, yerr=scale * stat.std, color=palette[j],
                   capsize=3, gid=f"measured:{name}:{groups[i]}")  # fmt: skip
            ax.plot([x - width * 0.45, x + width * 0.45], [scale * r.claim["near"]] * 2,
                    color="black", linewidth=2.5, gid=f"published:{name}:{groups[i]}")  # fmt: skip
    ax.set_xticks(np.arange(len(groups)), groups)
    ax.set_ylabel(nice(metric) + (" (%)" if scale == 100.0 else ""))
    handles = [Line2D([], [], color=palette[j], linewidth=8) for j in range(len(series))]
    handles.append(Line2D([], [], color="black", linewidth=2.5))
    outside_legend(fig, handles, [*series, "published"])
    return fig


def _column(r: Result) -> str:
    """The first key of the cell's setting (the source's columns: models)."""
    return describe_setting(dict(list(r.claim["of"].items())[:1]))


def _row(r: Result) -> str:
    """The rest of the setting (the source's rows: data sets), or the metric."""
    rest = dict(list(r.claim["of"].items())[1:])
    return describe_setting(rest) if rest else r.claim["metric"]


def published_figure(results: list[Result], cells: pd.DataFrame) -> list:
    """The bar figure, planned first when there is a table of published cells."""
    from dlrun.report.figures import Planned

    if cells.empty:
        return []
    caption = (
        "Measured (bars: mean ± std over seeds) beside the published number (black line) "
        f"for each cell of {published(results)[0].claim['source']}."
    )
    return [Planned("published", caption, lambda: plot_published(results))]
