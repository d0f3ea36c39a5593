"""What a set of runs compares: the settings that vary, the metric, aggregates over seeds.

A *setting* is one combination of the config values that vary across runs,
seed excluded; the runs of one setting are its seeds, drawn as mean ± std.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dlrun.folders import runs as run_folder
from dlrun.results.load import Runs

# Keys that differ between runs without making them a different experiment.
NOT_SETTINGS = {
    "seed",
    "name",
    "resume",
    "trainer.progress",
    "trainer.eval_batch_size",
    "device.name",
}
MAX_SETTINGS = 8  # lines per panel: more than this is unreadable, the best ones are drawn


class ReportError(Exception):
    """Bad input for the report (one line, exit code 2)."""


@dataclass
class Study:
    runs: Runs
    keys: list[str]  # the setting keys, in config order
    metric: str  # the final metric that ranks settings, e.g. test_acc
    task: str  # classification | regression

    @property
    def table(self) -> pd.DataFrame:
        return self.runs.table

    @property
    def usable(self) -> pd.DataFrame:
        """Runs that finished normally: the ones aggregated and drawn."""
        return self.table[self.table["status"].isin(run_folder.USABLE)]

    @property
    def higher_is_better(self) -> bool:
        return run_folder.higher_is_better(self.metric)

    @property
    def validated(self) -> bool:
        """Whether the runs logged a validation curve (none with data.val_fraction=0)."""
        metrics = self.runs.metrics
        if "val_loss" not in metrics:
            return False
        return bool(metrics.loc[metrics["run"].isin(self.usable.index), "val_loss"].notna().any())

    @property
    def score(self) -> str:
        """The per-epoch curve column next to the loss: acc or rmse."""
        return run_folder.score_name(self.task)

    @property
    def ordered(self) -> bool:
        """One numeric setting key (a width or rate sweep): colours may follow its order."""
        return len(self.keys) == 1 and pd.api.types.is_numeric_dtype(self.usable[self.keys[0]])

    def settings(self) -> list[str]:
        """Setting labels of usable runs, in the natural order of their values."""
        usable = self.usable
        if not len(usable):
            return []
        order = usable.sort_values(by=self.keys, key=sort_values) if self.keys else usable
        return list(dict.fromkeys(order["setting"]))

    def ranked(self) -> pd.DataFrame:
        """Per setting: mean, std and n of the metric, best first."""
        stats = final_by_setting(self.usable, self.metric)
        return stats.sort_values("mean", ascending=not self.higher_is_better, na_position="last")

    def drawn_settings(self, limit: int = MAX_SETTINGS) -> tuple[list[str], int]:
        """At most `limit` settings (the best ones), in natural order; and how many there are."""
        settings = self.settings()
        if len(settings) <= limit:
            return settings, len(settings)
        best = set(self.ranked().index[:limit])
        return [s for s in settings if s in best], len(settings)

    def curves(self, column: str) -> pd.DataFrame:
        """Mean, std and n of a metrics.csv column per (setting, epoch), over seeds."""
        return curves_by_setting(self.runs.metrics, self.usable, column)

    def n_seeds(self, setting: str) -> int:
        return int((self.usable["setting"] == setting).sum())


def numeric_keys(study: Study) -> list[str]:
    """Setting keys whose values are all numbers (not booleans), with at least two values."""
    usable = study.usable
    keys = []
    for key in study.keys:
        column = usable[key]
        if pd.api.types.is_bool_dtype(column) or column.isna().any():
            continue
        if pd.api.types.is_numeric_dtype(column) and column.nunique() > 1:
            keys.append(key)
    return keys


def sort_values(column: pd.Series) -> pd.Series:
    """Numbers sort as numbers, everything else as text (None last)."""
    numbers = pd.to_numeric(column, errors="coerce")
    if numbers.notna().all():
        return numbers
    return column.astype(str)


def varying_keys(table: pd.DataFrame, config_keys: list[str]) -> list[str]:
    """Config keys with more than one value across `table`, setting-like ones only."""
    keys = []
    for key in config_keys:
        if key in NOT_SETTINGS or key.endswith(".path") or key not in table:
            continue
        if key.startswith("logger."):  # where copies of the numbers went, not an experiment
            continue
        # dropna=False: a key swept over null and a value (patience=null,20) varies too
        if table[key].astype(str).nunique(dropna=False) > 1:
            keys.append(key)
    return keys


def drop_implied(table: pd.DataFrame, keys: list[str]) -> list[str]:
    """Drop keys that a group's choice already fixes (optimizer=sgd sets optimizer.lr=0.05)."""
    kept = []
    for key in keys:
        group = key.split(".")[0] + ".name"
        if key != group and group in keys:
            per_choice = table.groupby(table[group].astype(str))[key].agg(
                lambda v: v.astype(str).nunique()
            )
            if (per_choice <= 1).all():
                continue
        kept.append(key)
    return kept


def label(values: dict[str, object]) -> str:
    """optimizer=adam, model.width=64: the way a user types the setting."""
    parts = []
    for key, value in values.items():
        name = key[: -len(".name")] if key.endswith(".name") else key
        parts.append(f"{name}={format_value(value)}")
    return ", ".join(parts)


def decimals_of(std: float) -> int | None:
    """Decimals the spread supports (None: no spread to round by).

    A std over a few seeds is itself uncertain (by about 1/sqrt(2(n-1)): 50% for
    three seeds), so it earns one significant digit, or two when it starts with
    100-354, where one digit would round it by up to 30% (the Particle Data
    Group's rule): 0.023, 0.0006, 0.14, 0.5.
    """
    if not np.isfinite(std) or std <= 0:
        return None
    exponent = int(np.floor(np.log10(std)))
    leading = round(std / 10.0 ** (exponent - 2))  # the three leading digits, 100-1000
    digits = 2 if leading < 355 or leading >= 950 else 1
    if leading >= 950:  # 0.0097 rounds up to 0.010: two digits of the next decade
        exponent += 1
    return max(0, digits - 1 - exponent)


def mean_std(mean: float, std: float) -> str:
    """`0.414 ± 0.016`: the spread to the digits it supports (decimals_of), the mean to the same decimal.

    The one rounding of a setting's metric, in the findings and the summary
    table alike; a setting with one seed shows its value alone (4 digits).
    """
    decimals = decimals_of(std)
    if decimals is None:
        return f"{mean:.4g}"
    return f"{mean:.{decimals}f} ± {std:.{decimals}f}"


def format_mean(mean: float, std: float) -> str:
    """The mean as mean_std rounds it, without the spread."""
    return mean_std(mean, std).split(" ± ")[0]


def format_value(value: object) -> str:
    """A config value as the user types it: null, true/false (YAML's spelling), 0.001."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "null"  # as the user typed it
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def default_metric(table: pd.DataFrame, task: str) -> str:
    """test_acc (classification) or test_loss (regression, MSE), else what the runs have."""
    preferred = (
        ["test_acc", "val_acc", "test_loss", "val_loss"]
        if task == "classification"
        else ["test_loss", "val_loss"]
    )
    for metric in preferred:
        if metric in table and table[metric].notna().any():
            return metric
    return "best_val_loss" if "best_val_loss" in table else "val_loss"


def make_study(runs: Runs, metric: str | None = None) -> Study:
    """Name each run's setting and pick the ranking metric."""
    table = runs.table
    if not len(table):
        raise ReportError("no readable run folders")
    tasks = table["task"].dropna().unique() if "task" in table else []
    if len(tasks) > 1:
        # errors, curves and the ranking metric mean different things for the two
        raise ReportError(
            "these runs mix classification and regression: report each task's folder separately"
        )
    task = str(tasks[0]) if len(tasks) else "classification"
    usable = table[table["status"].isin(run_folder.USABLE)]
    keys = drop_implied(usable, varying_keys(usable, runs.config_keys)) if len(usable) else []
    fallback = (
        str(table["name"].iloc[0])
        if "name" in table and table["name"].nunique() == 1
        else "all runs"
    )
    table["setting"] = [label({k: row[k] for k in keys}) or fallback for _, row in table.iterrows()]
    metric = metric or default_metric(table, task)
    if metric not in table or not pd.api.types.is_numeric_dtype(table[metric]):
        numeric = [
            c
            for c in table.columns
            if c.endswith(("_loss", "_acc", "_rmse")) and pd.api.types.is_numeric_dtype(table[c])
        ]
        raise ReportError(
            f"--metric {metric}: not a number in the runs' summaries; choose from {', '.join(numeric)}"
        )
    return Study(runs=runs, keys=keys, metric=metric, task=task)


def final_by_setting(usable: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per setting: mean, std (ddof 1; 0 for one seed) and n of a summary column."""
    grouped = usable.groupby("setting", sort=False)[metric]
    stats = grouped.agg(["mean", "std", "count"]).rename(columns={"count": "n"})
    stats["std"] = stats["std"].fillna(0.0)
    return stats


def curves_by_setting(metrics: pd.DataFrame, usable: pd.DataFrame, column: str) -> pd.DataFrame:
    """Long curves -> mean/std/n per (setting, epoch); epochs where only one seed ran get std 0."""
    if column not in metrics:
        return pd.DataFrame(columns=["setting", "epoch", "mean", "std", "n"])
    frame = metrics[metrics["run"].isin(usable.index)][["run", "epoch", column]]
    frame = frame.assign(setting=usable.loc[frame["run"], "setting"].to_numpy())
    frame = frame.replace([np.inf, -np.inf], np.nan)
    stats = frame.groupby(["setting", "epoch"])[column].agg(["mean", "std", "count"]).reset_index()
    stats = stats.rename(columns={"count": "n"})
    stats["std"] = stats["std"].fillna(0.0)
    return stats
