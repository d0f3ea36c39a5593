"""Read run folders (docs/run-folder.md) into pandas: one table row per run, long curves.

Only the run-folder files are read, so anything that writes them is reportable.
A folder that cannot be trusted (no summary.json, a truncated metrics.csv line,
still running) is skipped with a reason instead of stopping the report.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlrun.errors import UnusableFile
from dlrun.folders import runs as run_folder
from dlrun.folders import safe
from dlrun.folders.runs import flatten

# Folders inside a run or a sweep that never hold run folders: not worth walking.
SKIP_DIRS = {run_folder.HYDRA, run_folder.CHECKPOINTS, "report", "__pycache__", ".git"}
# Summary keys that repeat a config key or only say where the run was written.
SUMMARY_DROP = {"name", "seed", "run_dir"}
# Config keys that are not settings: an experiment's claims (dlrun.claims.decide reads them).
CONFIG_DROP = {"claims"}


class Incomplete(Exception):
    """A run folder that cannot be reported (the message says why)."""


@dataclass
class Runs:
    """Every readable run: `table` one row per run, `metrics`/`layers` long, keyed by `run`."""

    table: pd.DataFrame
    metrics: pd.DataFrame
    layers: pd.DataFrame
    config_keys: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (run id, reason)

    def predictions(self, run: str) -> dict[str, np.ndarray] | None:
        """The run's predictions.npz (regression grid), read on demand."""
        path = Path(self.table.loc[run, "path"]) / run_folder.PREDICTIONS
        if not path.is_file():
            return None
        safe.check_archive(path, root=path.parent)  # a zip bomb is refused, not unpacked
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}


def find_run_dirs(path: Path, exclude: Path | None = None) -> list[Path]:
    """Run folders at or below `path`: folders holding any run-folder file, sorted."""
    found = []
    for root, dirs, files in os.walk(path):
        here = Path(root)
        if any(name in files for name in run_folder.RUN_FILES):
            found.append(here)
            dirs.clear()  # runs do not nest; their subfolders are checkpoints and .hydra
            continue
        dirs[:] = [
            d
            for d in dirs
            if d not in SKIP_DIRS
            and not d.startswith(".")
            and (exclude is None or here / d != exclude)
        ]
    return sorted(found, key=_natural_key)


def _natural_key(path: Path) -> list[Any]:
    """Sort 2_x before 10_x, as sweep job numbers read."""
    parts = []
    for part in path.parts:
        head = part.split("_", 1)[0]
        parts.append((0, int(head), part) if head.isdigit() else (1, 0, part))
    return parts


def read_csv_strict(
    path: Path, text_columns: tuple[str, ...] = (), required: tuple[str, ...] = ()
) -> pd.DataFrame:
    """A CSV whose every row is whole: a short row, or a last line that ends in a comma and
    no newline, was cut off mid-write (a row ending in a comma and a newline has an empty
    last cell: a table saved by pandas writes nan so)."""
    try:
        text = safe.read_text(path, safe.TABLE_CAP, root=path.parent)
    except UnusableFile as e:
        raise Incomplete(f"{path.name} {e.why}") from None
    except OSError as e:
        raise Incomplete(f"{path.name} is unreadable ({e.strerror or type(e).__name__})") from None
    lines = text.splitlines()
    if not lines:
        raise Incomplete(f"{path.name} is empty")
    width, whole = lines[0].count(","), text.endswith("\n")
    for number, line in enumerate(lines[1:], start=2):
        cut = line.endswith(",") and number == len(lines) and not whole
        if line and (line.count(",") != width or cut):
            raise Incomplete(f"{path.name} line {number} is truncated")
    try:
        frame = pd.read_csv(io.StringIO(text))
    except (ValueError, pd.errors.ParserError):
        raise Incomplete(f"{path.name} is not a CSV table") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise Incomplete(f"{path.name} has no column {missing[0]!r}")
    for column in frame.columns:
        if column not in text_columns and not pd.api.types.is_numeric_dtype(frame[column]):
            raise Incomplete(f"{path.name} column {column!r} holds non-numbers")
    return frame


def _read(reader, path: Path, folder: Path) -> Any:
    """A run file through its safe reader; any way it cannot be used is Incomplete, named."""
    try:
        return reader(path, root=folder)
    except FileNotFoundError:
        raise Incomplete(f"no {path.name}") from None
    except UnusableFile as e:
        raise Incomplete(f"{path.name} {e.why}") from None
    except OSError:
        raise Incomplete(f"{path.name} is unreadable") from None


def read_run(
    folder: Path,
) -> tuple[dict[str, Any], dict[str, Any], pd.DataFrame | None, pd.DataFrame | None]:
    """(flat config, summary, metrics, layers) of one run folder, or raise Incomplete."""
    summary_file, config_file = folder / run_folder.SUMMARY, folder / run_folder.CONFIG
    summary = _read(safe.read_json, summary_file, folder)
    check_summary(summary)
    status = summary["status"]
    if status == run_folder.RUNNING:
        raise Incomplete("status is still `running` (training, or killed before it finished)")
    config = _read(safe.read_yaml, config_file, folder) or {}
    if not isinstance(config, dict):
        raise Incomplete(f"{run_folder.CONFIG} is not a mapping of config keys")
    metrics = layers = None
    if (folder / run_folder.METRICS).is_file():
        metrics = read_csv_strict(folder / run_folder.METRICS, required=CURVE_COLUMNS)
    elif status in run_folder.USABLE:
        raise Incomplete(f"no {run_folder.METRICS}")
    if (folder / run_folder.LAYERS).is_file():
        try:
            layers = read_csv_strict(
                folder / run_folder.LAYERS, text_columns=("layer",), required=("epoch", "layer")
            )
        except Incomplete:
            layers = None  # diagnostics only: the run itself is still good
    config = {k: v for k, v in config.items() if k not in CONFIG_DROP}
    return flatten(config), summary, metrics, layers


CURVE_COLUMNS = ("epoch", "train_loss", "val_loss")  # what every figure of curves reads
# Summary keys that hold numbers (or null); any other type means the file is not dlrun's.
NUMBER_PREFIXES = ("best_", "test_", "train_", "val_")
NUMBERS = {"n_params", "wall_s", "total_s", "epochs_run", "steps", "steps_to_target"}


def check_summary(summary: Any) -> None:
    """Raise Incomplete unless `summary` is a dict with a status and numbers where numbers go."""
    if not isinstance(summary, dict):
        raise Incomplete(f"{run_folder.SUMMARY} is not a JSON object")
    if not isinstance(summary.get("status"), str):
        raise Incomplete(f"{run_folder.SUMMARY} has no status")
    for key, value in summary.items():
        if key in NUMBERS or key.startswith(NUMBER_PREFIXES):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float))
            ):
                raise Incomplete(f"{run_folder.SUMMARY} {key} is not a number ({value!r:.40})")
    if summary["status"] in run_folder.USABLE:  # what every finished run's summary holds
        for key in ("epochs_run", "best_epoch"):
            if key not in summary:
                raise Incomplete(f"{run_folder.SUMMARY} has no {key}")


def summary_row(summary: dict[str, Any], metrics: pd.DataFrame | None) -> dict[str, Any]:
    """The summary's scalars, flattened, plus what the curves say when the summary is partial."""
    row = {k: v for k, v in flatten(summary).items() if k not in SUMMARY_DROP}
    if not row.get("task") and metrics is not None:
        classification = f"train_{run_folder.score_name('classification')}" in metrics.columns
        row["task"] = "classification" if classification else "regression"
    if metrics is not None and len(metrics):
        row["last_epoch"] = int(metrics["epoch"].iloc[-1])
        row["last_train_loss"] = float(metrics["train_loss"].iloc[-1])
    return row


def run_ids(folders: list[Path]) -> list[str]:
    """Short unique names: paths relative to the folders' common parent."""
    if len(folders) <= 1:
        return [f.name for f in folders]
    common = Path(os.path.commonpath([str(f) for f in folders]))
    return [str(f.relative_to(common)) for f in folders]


def load_runs(paths: str | Path | list[str | Path], exclude: Path | None = None) -> Runs:
    """Every run folder under `paths` (one path or several), read; unreadable ones land in `skipped`.

    `.table`: one row per run (flattened config as users type the keys, then
    summary.json), indexed by run id; `.metrics`: metrics.csv rows of every run
    with a `run` column; `.layers` likewise for layers.csv (docs/python.md).
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f"no such folder: {', '.join(missing)}")
    folders = sorted(
        {f.resolve() for p in paths for f in find_run_dirs(p, exclude)}, key=_natural_key
    )
    rows, curves, layer_frames, skipped = [], [], [], []
    config_keys: dict[str, None] = {}
    for run, folder in zip(run_ids(folders), folders):
        try:
            config, summary, metrics, layers = read_run(folder)
        except Incomplete as e:
            skipped.append((run, str(e)))
            continue
        config_keys.update(dict.fromkeys(config))
        rows.append({"run": run, "path": str(folder), **config, **summary_row(summary, metrics)})
        if metrics is not None:
            curves.append(metrics.assign(run=run))
        if layers is not None:
            layer_frames.append(layers.assign(run=run))
    table = pd.DataFrame(rows)
    if len(table):
        table = table.set_index("run", drop=False)
    return Runs(
        table=table,
        metrics=pd.concat(curves, ignore_index=True)
        if curves
        else pd.DataFrame(columns=["run", "epoch"]),
        layers=pd.concat(layer_frames, ignore_index=True)
        if layer_frames
        else pd.DataFrame(columns=["run", "epoch", "layer"]),
        config_keys=list(config_keys),
        skipped=skipped,
    )
