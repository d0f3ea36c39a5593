"""Tables: runs.csv (every run, best first), the per-setting summary, the console table."""

from __future__ import annotations

import numpy as np
import pandas as pd
from rich import box
from rich.console import Console
from rich.table import Table

from dlrun.report.style import nice
from dlrun.results.study import Study, format_mean, mean_std

FIRST = ["run", "setting", "status", "best_epoch", "epochs_run"]
RESULTS = [
    "train_loss",
    "val_loss",
    "test_loss",
    "train_acc",
    "val_acc",
    "test_acc",
    "train_rmse",
    "val_rmse",
    "test_rmse",
]
LAST = ["n_params", "wall_s", "total_s", "task", "device", "path"]
CONSOLE_ROWS = 30  # more rows than a screen are in runs.csv and index.html


def runs_frame(study: Study) -> pd.DataFrame:
    """One row per run, best first (unfinished runs last): results, then the config."""
    table = study.table
    usable = table["status"].isin(["completed", "early_stopped"])
    ordered = table.assign(_usable=~usable).sort_values(
        ["_usable", study.metric],
        ascending=[True, not study.higher_is_better],
        na_position="last",
        kind="stable",
    )
    lead = [c for c in [*FIRST, study.metric, *RESULTS, *study.keys] if c in table]
    lead = list(dict.fromkeys(lead))
    config = [k for k in study.runs.config_keys if k not in lead and k in table]
    rest = [
        c
        for c in table.columns
        if c not in lead and c not in config and c not in LAST and c != "_usable"
    ]
    tail = [c for c in LAST if c in table]
    frame = ordered[lead + config + rest + tail].reset_index(drop=True)
    # booleans as YAML spells them (and as they are typed: trainer.shuffle=false)
    return frame.apply(lambda column: column.map(yaml_bool) if column.dtype != float else column)


def yaml_bool(value: object) -> object:
    """True -> 'true', False -> 'false'; anything else as it is."""
    return ("true" if value else "false") if isinstance(value, (bool, np.bool_)) else value


def settings_frame(study: Study) -> pd.DataFrame:
    """Per setting, best first: the metric as mean ± std, n, median best epoch, other results."""
    ranked = study.ranked()
    usable = study.usable
    rows = []
    for setting, stat in ranked.iterrows():
        runs = usable[usable["setting"] == setting]
        row = {
            "setting": setting,
            "n": int(stat["n"]),
            nice(study.metric): mean_std(stat["mean"], stat["std"]),
        }
        for column in RESULTS:  # each mean rounded as its own seed spread allows
            if column != study.metric and column in runs and runs[column].notna().any():
                row[nice(column)] = format_mean(runs[column].mean(), runs[column].std())
        row["best epoch (median)"] = (
            f"{runs['best_epoch'].median():g}" if runs["best_epoch"].notna().any() else ""
        )
        rows.append(row)
    others = study.table[~study.table.index.isin(usable.index)]
    # no empty column: without a validation split no run has a best epoch
    for setting, runs in others.groupby("setting", sort=False):
        statuses = ", ".join(f"{n} {s}" for s, n in runs["status"].value_counts().items())
        rows.append({"setting": setting, "n": len(runs), nice(study.metric): statuses})
    frame = pd.DataFrame(rows)
    empty = [c for c in frame.columns if frame[c].fillna("").astype(str).eq("").all()]
    return frame.drop(columns=empty)


def print_runs(study: Study, console: Console | None = None) -> None:
    """The runs as a rich table, best first; a sweep's runs are named by setting and seed."""
    console = console or Console()
    frame = runs_frame(study)
    metric = study.metric
    title = f"{len(frame)} runs by {nice(metric)}, best first (epochs: best/run)"
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    names = ["setting", "seed"] if study.keys else ["run"]
    columns = [*names, "status", "epochs", metric, "n_params", "wall_s"]
    for column in columns:
        if column in ("run", "setting"):
            # the long part: folded in a sweep, shortened for run folder names
            longest = int(frame[column].astype(str).str.len().max())
            table.add_column(
                column,
                overflow="fold" if column == "setting" else "ellipsis",
                min_width=min(longest, 28),
            )
        elif column == "status":
            table.add_column(column, no_wrap=True)
        else:
            table.add_column(column, justify="right", no_wrap=True)
    for _, row in frame.head(CONSOLE_ROWS).iterrows():
        values = {
            "epochs": f"{_text(row.get('best_epoch'))}/{_text(row.get('epochs_run'))}".strip("/"),
            "n_params": _text(row.get("n_params"), ","),
            "wall_s": f"{row['wall_s']:.3g}" if pd.notna(row.get("wall_s")) else "",
            "status": _status(row["status"]),
        }
        table.add_row(*[values.get(c, _text(row.get(c))) for c in columns])
    console.print(table)
    if len(frame) > CONSOLE_ROWS:
        console.print(f"... and {len(frame) - CONSOLE_ROWS} more runs in runs.csv")


def _status(status: str) -> str:
    colour = {
        "completed": "green",
        "early_stopped": "green",
        "diverged": "red",
        "failed": "red",
    }.get(status, "yellow")
    return f"[{colour}]{'early stop' if status == 'early_stopped' else status}[/]"


def _text(value: object, thousands: str = "") -> str:
    """A table cell: '' for missing, 4 significant digits for floats, whole numbers plain."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:{thousands}d}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
