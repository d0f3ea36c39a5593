"""The table printed at the end of a sweep: best first, numbers never wrapped, failures named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlrun.folders import runs

SHOWN = 20  # rows in the end-of-sweep table; sweep.csv has them all
Row = dict[str, Any]


def ranked(rows: list[Row]) -> tuple[str | None, list[Row]]:
    """(the ranking metric, rows best first); failed jobs and jobs without a value come last."""
    metric = next((key for row in rows for key in row if key.startswith("best_")), None)
    if metric is None:
        return None, rows
    sign = -1 if runs.higher_is_better(metric) else 1

    def key(row: Row) -> tuple[bool, float]:
        value = row.get(metric)
        missing = value in (None, "") or row["status"] in runs.BROKEN
        return missing, 0.0 if missing else sign * float(value)

    return metric, sorted(rows, key=key)


def _cell(value: Any) -> str:
    """4 significant digits for numbers, Optuna's 0.0012345678901234 included."""
    if value is None:
        return ""
    try:
        return f"{float(value):.4g}" if "." in str(value) else str(value)
    except ValueError:
        return str(value)


def short_names(columns: list[str]) -> dict[str, str]:
    """Headers by their last part where that is unique: optimizer.weight_decay -> weight_decay."""
    last = [column.rsplit(".", 1)[-1] for column in columns]
    return {c: (t if last.count(t) == 1 else c) for c, t in zip(columns, last)}


def fit_columns(shown: list[str], rows: list[Row], keep: set[str], width: int) -> list[str]:
    """Leave columns out until the table fits `width`: first those with one value in every
    row (an unswept seed), then the time, then the metrics that do not rank the jobs."""
    from rich.console import Console
    from rich.measure import Measurement

    console = Console(width=10_000)  # measures, never prints
    constant = [c for c in shown if len({_cell(r.get(c)) for r in rows}) <= 1]
    droppable = [c for c in (*constant, "wall_s", *reversed(shown)) if c in shown and c not in keep]
    shown = list(shown)
    for column in dict.fromkeys(droppable):
        table = _table(shown, rows, "")
        if Measurement.get(console, console.options, table).maximum <= width:
            break
        shown.remove(column)
    return shown


def _table(shown: list[str], rows: list[Row], title: str):
    """The rich table of these columns: no borders, numbers right-aligned, never wrapped."""
    from rich.table import Table

    names = short_names(shown)
    table = Table(title=title, title_justify="left", box=None, pad_edge=False, header_style="bold")
    for column in shown:
        justify = "left" if column == "status" else "right"
        table.add_column(names[column], no_wrap=True, justify=justify)
    for row in rows:
        table.add_row(*(_cell(row.get(column)) for column in shown))
    return table


def print_table(folder: Path, columns: list[str], rows: list[Row]) -> None:
    """The sweep at a glance: best first, then every job that failed or diverged, with its error.

    Numbers never wrap: at a narrow terminal, columns with one value in every
    row, then the time, then the less important metrics are left out (the
    table says which; sweep.csv has every column).
    """
    from rich.console import Console

    console = Console()
    metric, best_first = ranked(rows)
    hidden = {"n_params", "run_dir", "error"}
    if "test_acc" in columns or "test_rmse" in columns:
        hidden.add("test_loss")
    wanted = [column for column in columns if column not in hidden]
    score = next((c for c in ("test_acc", "test_rmse", "test_loss") if c in columns), None)
    # never left out: the job, its status, the ranking metric, the test score, what varies
    metrics = {"wall_s", *(k for k in columns if k.startswith(("best_", "test_")))}
    varies = {c for c in wanted if len({_cell(r.get(c)) for r in rows}) > 1}
    keep = {"job", "status", *(varies - metrics)} | ({metric, score} - {None})
    shown = fit_columns(wanted, best_first[:SHOWN], keep, console.width)
    title = f"{len(rows)} jobs" + (f", best {metric.removeprefix('best_')} first" if metric else "")
    console.print(_table(shown, best_first[:SHOWN], title))
    left_out = [c for c in wanted if c not in shown]
    if left_out:
        console.print(f"(left out at this width: {', '.join(left_out)})", markup=False)
    if len(rows) > SHOWN:
        console.print(
            f"... and {len(rows) - SHOWN} more in {folder / runs.SWEEP_INDEX}", markup=False
        )
    for row in rows:
        if row["status"] in (*runs.BROKEN, runs.DIVERGED):
            line = f"job {row['job']} {row['status']}: {row['error']} ({row['run_dir']})"
            console.print(line, markup=False, soft_wrap=True)
