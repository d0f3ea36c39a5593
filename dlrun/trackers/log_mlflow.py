"""logger=mlflow: one MLflow run per dlrun run, nested under a parent run per sweep.

The run gets the flattened config as parameters, each metrics.csv row as
metrics at step = epoch, the summary's numbers at the end (a summary key that
is also a curve's name gets a `final_` prefix: `final_val_loss`), and the
checkpoints, config.yaml and summary.json as artifacts. The store is
`logger.tracking_uri`, else MLFLOW_TRACKING_URI, else MLflow's own default
(./mlruns with MLflow 2, sqlite:///mlflow.db with MLflow 3), so `mlflow ui`
in the same folder shows the runs. Sweep jobs may run in other processes
(joblib workers, SLURM tasks): the first job to start makes the parent run,
under a file lock in the sweep's `.dlrun/`, and the others find it there.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from filelock import FileLock
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from dlrun.folders import runs
from dlrun.trackers.mlflow_parent import (  # noqa: F401 (PARENT, runs_page: the module's names)
    PARENT,
    RUN_DIR_TAG,
    parent_run,
    runs_page,
    sweep_started,
    view,
)
from dlrun.trackers.numbers import epoch_ms, shown

SKIPPED = {"epoch", "step"}  # the step axis, and the optimizer-step count (summary: steps)
PARAM_LIMIT = 500  # characters: MLflow 2's limit on a parameter's value
BATCH = 100  # parameters per log_batch call (MLflow's limit)
KIND_TAG, KIND = "mlflow.experimentKind", "custom_model_development"  # the runs table first
STATUS = {  # dlrun status -> MLflow run status
    runs.COMPLETED: "FINISHED",
    runs.EARLY_STOPPED: "FINISHED",
    runs.DIVERGED: "FINISHED",  # a result of the settings, not a crash
    runs.FAILED: "FAILED",
    runs.INTERRUPTED: "KILLED",
}


def store(settings: Any, run_dir: Path | None = None) -> str:
    """The store the user chose (logger.tracking_uri, else MLFLOW_TRACKING_URI), as typed;
    never one read from a folder."""
    chosen = settings.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    return str(chosen) if chosen else "MLflow's default store"


def now_ms() -> int:
    return int(time.time() * 1000)


def client_and_experiment(settings: Any) -> tuple[MlflowClient, str]:
    """The store's client and the experiment's id, created if missing (by any process)."""
    client = MlflowClient(tracking_uri=settings.tracking_uri or None)
    name = settings.experiment or "dlrun"
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return client, experiment.experiment_id
    try:
        # MLflow 3's UI opens an experiment of no stated kind on its GenAI overview;
        # these are model-training runs, so it opens on the runs table
        return client, client.create_experiment(name, tags={KIND_TAG: KIND})
    except Exception:  # another job created it a moment ago
        return client, client.get_experiment_by_name(name).experiment_id


def find_run(client: MlflowClient, experiment_id: str, run_dir: Path) -> str | None:
    """The MLflow run already logged for this run folder (live or exported), if any."""
    quoted = str(run_dir).replace("\\", "\\\\").replace("'", "\\'")
    found = client.search_runs(
        [experiment_id], filter_string=f"tags.`{RUN_DIR_TAG}` = '{quoted}'", max_results=1
    )
    return found[0].info.run_id if found else None


def store_lock(run_dir: Path, settings: Any) -> FileLock:
    """Held while a run opens the store: the first opening creates it (MLflow 3's sqlite
    database runs its migrations then), and two processes doing that at once break it.

    A sweep's jobs share a lock in the sweep folder, which every node of a cluster
    sees; other runs one per store on this machine.
    """
    sweep = runs.sweep_of(run_dir)
    if sweep is not None:
        return FileLock(str(sweep / runs.SWEEP_STATE / "mlflow.lock"))
    uri = settings.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or os.getcwd()
    digest = hashlib.sha1(str(uri).encode()).hexdigest()[:12]
    return FileLock(str(Path(tempfile.gettempdir()) / f"dlrun-mlflow-{digest}.lock"))


def _text(value: Any) -> str:
    return "null" if value is None else str(value)  # as config.yaml writes it


class Tracker:
    name = "mlflow"

    def __init__(
        self,
        run_dir: Path,
        config: dict[str, Any],
        settings: Any,
        start_epoch: int,
        started: float | None = None,
    ):
        """`started`: when the run began (s since 1970) for a run copied later; None: now."""
        self.run_dir = Path(run_dir).resolve()
        self.started = started
        sweep = runs.sweep_of(self.run_dir)
        with store_lock(self.run_dir, settings):
            self.client, experiment_id = client_and_experiment(settings)
            began = None if started is None or not sweep else sweep_started(sweep, started)
            parent = parent_run(self.client, experiment_id, sweep, began) if sweep else None
        self.run_id = find_run(self.client, experiment_id, self.run_dir) if start_epoch else None
        if self.run_id is None:  # a new run (a resumed one continues its own)
            tags = {RUN_DIR_TAG: str(self.run_dir)}
            if parent is not None:
                tags["mlflow.parentRunId"] = parent
            start_ms = None if started is None else int(started * 1000)
            run = self.client.create_run(
                experiment_id, start_time=start_ms, run_name=self.run_dir.name, tags=tags
            )
            self.run_id = run.info.run_id
            params = [Param(k, _text(v)[:PARAM_LIMIT]) for k, v in config.items()]
            for i in range(0, len(params), BATCH):
                self.client.log_batch(self.run_id, params=params[i : i + BATCH])
        self.curves: set[str] = set()
        self.tracking_uri = str(self.client.tracking_uri)
        self.experiment_id = experiment_id

    def fields(self) -> dict[str, Any]:
        return {"mlflow": {"run_id": self.run_id, "tracking_uri": self.tracking_uri}}

    def page(self) -> str | None:
        """The line that ends a single run: where its runs table is (a sweep's end says it once)."""
        if runs.sweep_of(self.run_dir) is not None:
            return None
        return f"dlrun: MLflow run {self.run_id}; {view(self.tracking_uri, self.experiment_id)}"

    def epoch(self, row: dict[str, Any]) -> None:
        step, at = int(row["epoch"]), epoch_ms(self.started, row.get("time_s", 0.0), now_ms())
        metrics = [Metric(k, shown(v), at, step) for k, v in row.items() if k not in SKIPPED]
        self.curves |= {m.key for m in metrics}
        self.client.log_batch(self.run_id, metrics=metrics)

    def finish(self, summary: dict[str, Any]) -> None:
        step = int(summary.get("epochs_run") or 0)
        seconds = summary.get("total_s") or summary.get("wall_s") or 0.0
        at = epoch_ms(self.started, float(seconds), now_ms())  # a copied run ends when it ended
        metrics = [
            Metric(f"final_{key}" if key in self.curves else key, shown(value), at, step)
            for key, value in runs.summary_numbers(summary).items()
        ]
        tags = [RunTag("dlrun.status", str(summary.get("status")))]
        self.client.log_batch(self.run_id, metrics=metrics, tags=tags)
        for name in (runs.CONFIG, runs.SUMMARY, runs.METRICS):
            if (self.run_dir / name).is_file():
                self.client.log_artifact(self.run_id, str(self.run_dir / name))
        if (self.run_dir / runs.CHECKPOINTS).is_dir():
            self.client.log_artifacts(
                self.run_id, str(self.run_dir / runs.CHECKPOINTS), runs.CHECKPOINTS
            )
        status = STATUS.get(summary.get("status"), "FINISHED")
        self.client.set_terminated(self.run_id, status, end_time=at)
        self.ended_ms = at


def prepare_export(run_dir: Path, settings: Any) -> bool:
    """A run folder already in the store (logged live, or exported before) is left as it is."""
    client, experiment_id = client_and_experiment(settings)
    found = find_run(client, experiment_id, Path(run_dir).resolve())
    if found:
        print(f"dlrun: {run_dir} is already MLflow run {found}")
    return found is None


def exported(count: int, paths: list[Path], settings: Any) -> str:
    client, experiment_id = client_and_experiment(settings)
    uri = str(client.tracking_uri)
    return (
        f"dlrun: {count} runs copied to MLflow ({uri}, experiment {settings.experiment}); "
        f"{view(uri, experiment_id)}"
    )
