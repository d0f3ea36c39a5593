"""Where each epoch's numbers go: metrics.csv always, TensorBoard and MLflow when chosen.

`logger=csv` (the default) is the run folder alone; `logger=tensorboard`,
`logger=mlflow` or `logger=[csv,tensorboard,mlflow]` add trackers. A tracker
(dlrun.trackers.log_tensorboard, dlrun.trackers.log_mlflow) is a small class: made with the run
folder and the flattened config (it starts its run and logs the config),
then `epoch(row)` for each metrics.csv row as the loop writes it, and
`finish(summary)` at the end; `fields()` is what summary.json records of it.
The run folder stays the source of truth and trackers are copies of it, so a
tracker that fails warns once and is dropped; the run goes on. Tracker
libraries are optional extras, imported only when chosen.

A tracker may talk to a server (MLflow's) that is unreachable or never
answers: each works in its own thread (dlrun.trackers.background), so no wait
for it is unbounded.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from dlrun.errors import ConfigError
from dlrun.folders import runs
from dlrun.trackers.background import Background, bounded, cause

# logger choice -> (the library it needs, the extra that installs it)
TRACKERS = {"tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow")}


def chosen(cfg: Any) -> list[str]:
    """The trackers `logger=` switched on, in a fixed order."""
    logger = cfg.get("logger") if hasattr(cfg, "get") else getattr(cfg, "logger", None)
    return [name for name in TRACKERS if logger is not None and logger.get(name)]


def check(cfg: Any) -> None:
    """A chosen tracker whose library is missing: one line naming the install command."""
    for name in chosen(cfg):
        package, extra = TRACKERS[name]
        if importlib.util.find_spec(package) is None:
            raise ConfigError(
                f"logger={name} needs the {package} package: "
                f'pip install -e ".[{extra}]" (or pip install {package})'
            )


def open_trackers(cfg: Any, run_dir: Path, config: dict[str, Any], start_epoch: int) -> list:
    """Every chosen tracker, started with the flattened config; `start_epoch` > 0 on resume."""
    trackers = []
    for name in chosen(cfg):
        module = tracker_module(name)
        store = module.store(cfg.logger, run_dir)

        def make(module=module):
            return module.Tracker(run_dir, config, cfg.logger, start_epoch)

        try:
            trackers.append(Background.start(name, store, make))
        except Exception as e:  # an unreachable server, a bad URI: the run folder still has it all
            warn(name, e)
    return trackers


def warn(name: str, error: BaseException) -> None:
    print(
        f"dlrun: warning: {name} stopped logging ({cause(error)}); "
        f"the run folder keeps every number (dlrun export {name} <folder>)",
        file=sys.stderr,
    )


def tracker_module(name: str) -> Any:
    """A tracker's module, imported now: its library loads only when chosen."""
    if name == "tensorboard":
        from dlrun.trackers import log_tensorboard

        return log_tensorboard
    from dlrun.trackers import log_mlflow

    return log_mlflow


class Sinks:
    """The loop's metrics writer: each row to metrics.csv first, then to every tracker."""

    def __init__(self, csv: runs.CsvLog, trackers: list):
        self.csv, self.trackers = csv, list(trackers)

    def write(self, row: dict[str, Any]) -> None:
        self.csv.write(row)
        for tracker in list(self.trackers):
            self._call(tracker, "epoch", row)

    def close(self) -> None:
        self.csv.close()

    def finish(self, summary: dict[str, Any]) -> None:
        """The summary to every tracker, which then closes; then where to see each."""
        for tracker in list(self.trackers):
            self._call(tracker, "finish", summary)
        for tracker in self.trackers:  # those that took it all
            line = tracker.page() if hasattr(tracker, "page") else None
            if line:
                print(line)
        self.trackers.clear()

    def _call(self, tracker: Any, method: str, arg: dict[str, Any]) -> None:
        try:
            getattr(tracker, method)(arg)
        except Exception as e:  # a copy failed; the run folder has it all
            self.trackers.remove(tracker)
            if isinstance(tracker, Background):
                tracker.abandon()
            warn(tracker.name, e)


def finish_sweep(
    sweep_dir: Path, failed: bool, settings: Any = None, end_ms: int | None = None
) -> None:
    """End the sweep's parent run in MLflow, if its jobs made one (dlrun.trackers.mlflow_parent.PARENT)
    and the user chose MLflow (`settings`: the config's `logger`; None: nothing is contacted);
    `end_ms`: when its last job ended, for a sweep copied later (None: now)."""
    if settings is None or not settings.get("mlflow"):
        return
    if (Path(sweep_dir) / runs.SWEEP_STATE / "mlflow.json").is_file():
        from dlrun.trackers.log_mlflow import store
        from dlrun.trackers.mlflow_parent import finish_parent

        try:  # the sweep's jobs are over and saved: a store gone now is one line
            bounded(
                store(settings), lambda: finish_parent(Path(sweep_dir), failed, settings, end_ms)
            )
        except Exception as e:
            warn("mlflow", e)
