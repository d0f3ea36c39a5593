"""A sweep's parent run in MLflow, and its record `.dlrun/mlflow.json` (untrusted, as
everything in a folder): used only in the store the user chose, never contacted elsewhere.

Also where dlrun bounds MLflow's network waits and says where the runs table is
(MLflow 3's UI opens an experiment on its GenAI pages). dlrun.trackers.log_mlflow
(the tracker) imports this; nothing here imports it.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

from dlrun.folders import runs

logging.getLogger("mlflow").setLevel(logging.WARNING)  # its INFO lines would fill every job's log
logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)  # a line per retry
# A server that does not answer: MLflow waits 120 s a request and retries 7 times
# (minutes); the run never waits for it (dlrun.trackers.background), and these
# bound how long the tracker's own thread stays on it. MLflow's own "View experiment
# at" line opens MLflow 3's GenAI overview; dlrun's last line gives the runs table
# instead (log_mlflow.Tracker.page). A value the user set is kept.
for _key, _value in (
    ("MLFLOW_HTTP_REQUEST_TIMEOUT", "20"),
    ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1"),
    ("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true"),
):
    os.environ.setdefault(_key, _value)

PARENT = "mlflow.json"  # in <sweep>/.dlrun/: the parent run, for every job of the sweep
RUN_DIR_TAG = "dlrun.run_dir"  # the run folder, absolute: finds a run again (resume, export)


def parent_run(
    client: MlflowClient, experiment_id: str, sweep_dir: Path, started: float | None = None
) -> str:
    """The sweep's parent run: made by the first job, read from `.dlrun/mlflow.json` by the rest
    (called under the sweep's store_lock). `started`: a copied sweep's start (s since 1970).

    The record is untrusted, as everything in a folder: its run id is used only
    when it names the store and experiment the user chose; otherwise (a sweep
    copied from elsewhere, another store) the jobs get a new parent run there.
    """
    state = sweep_dir / runs.SWEEP_STATE
    saved = _read(state / PARENT)
    uri = str(client.tracking_uri)
    if saved.get("experiment_id") == experiment_id and saved.get("tracking_uri") == uri:
        if _in_experiment(client, saved["run_id"], experiment_id):
            return saved["run_id"]
    if saved:
        print(
            f"dlrun: {state / PARENT} names no parent run of this store and experiment; "
            f"this sweep's runs go under a new one in {uri}",
            file=sys.stderr,
        )
    tags = {RUN_DIR_TAG: str(sweep_dir), "dlrun.kind": "sweep"}
    start_ms = None if started is None else int(started * 1000)
    run = client.create_run(experiment_id, start_time=start_ms, run_name=sweep_dir.name, tags=tags)
    record = {
        "run_id": run.info.run_id,
        "experiment_id": experiment_id,
        "tracking_uri": str(client.tracking_uri),
    }
    runs.write_json(state / PARENT, record)
    return run.info.run_id


def user_store(settings: Any) -> str:
    """The store the user's config or environment names, as MLflow resolves it (opens nothing)."""
    import mlflow

    return str(settings.tracking_uri or mlflow.get_tracking_uri())


def _in_experiment(client: MlflowClient, run_id: str, experiment_id: str) -> bool:
    """Whether the store holds this run in this experiment (a parent deleted since, or an id
    the store never gave, gets a new parent run)."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id).info.experiment_id == experiment_id
    except MlflowException:
        return False


def finish_parent(sweep_dir: Path, failed: bool, settings: Any, end_ms: int | None = None) -> None:
    """Mark the sweep's parent run finished (or failed) once no job runs any more.

    Only in the store the user chose (`settings`): a `.dlrun/mlflow.json` naming
    another one (a crafted or copied folder) is never contacted, in one line.
    """
    path = sweep_dir / runs.SWEEP_STATE / PARENT
    saved = _read(path)
    if not saved:
        return
    uri = user_store(settings)
    if saved["tracking_uri"] != uri:
        print(
            f"dlrun: {path} names another MLflow store than {uri}; its parent run is left as it is",
            file=sys.stderr,
        )
        return
    client = MlflowClient(tracking_uri=uri)
    client.set_terminated(saved["run_id"], "FAILED" if failed else "FINISHED", end_ms)
    experiment_id = client.get_run(saved["run_id"]).info.experiment_id
    print(f"dlrun: MLflow: the sweep is run {saved['run_id']}; {view(uri, experiment_id)}")


def sweep_started(sweep_dir: Path, fallback: float) -> float:
    """When a sweep began: its `.dlrun/sweep.json`, written as it starts; else `fallback`."""
    try:
        return (sweep_dir / runs.SWEEP_STATE / "sweep.json").stat().st_mtime
    except OSError:
        return fallback


def _read(path: Path) -> dict[str, Any]:
    """The sweep's parent-run record (untrusted, as everything in a folder), or {}."""
    from dlrun.errors import ConfigError
    from dlrun.folders import safe

    try:
        saved = safe.read_json(path, root=path.parent.parent)
    except (OSError, ConfigError):
        return {}
    if not isinstance(saved, dict) or not all(
        isinstance(saved.get(k), str) for k in ("run_id", "tracking_uri")
    ):
        return {}
    if not re.fullmatch(r"[0-9A-Za-z_-]{1,64}", saved["run_id"]):
        return {}  # not an id MLflow gave: never sent to a store
    return saved


def runs_page(experiment_id: str, server: str = "http://127.0.0.1:5000") -> str:
    """The experiment's runs table in MLflow's UI (MLflow 3 opens an experiment on its
    GenAI pages unless the address asks for model training)."""
    return f"{server}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def view(uri: str, experiment_id: str) -> str:
    """How to see the runs table: a tracking server serves the UI itself; a store on disk
    needs `mlflow ui` (at 127.0.0.1:5000) started on it."""
    if uri.startswith(("http://", "https://")):
        return f"the runs table: {runs_page(experiment_id, uri.rstrip('/'))}"
    return (
        f"view the runs with: mlflow ui --backend-store-uri {shlex.quote(uri)}, "
        f"then open {runs_page(experiment_id)}"
    )
