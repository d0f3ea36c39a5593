"""A sweep's `.dlrun/mlflow.json` is untrusted: dlrun contacts only the store the user chose;
the runs table's address at the end (dlrun/trackers/mlflow_parent.py)."""

from __future__ import annotations

import json
import socket

import pytest

from dlrun.folders import runs
from dlrun.folders.sweep_index import record_sweep
from dlrun.trackers import log_mlflow, loggers
from dlrun.trackers.export import Settings

mlflow = pytest.importorskip("mlflow")


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks for this opt-in
    return f"file://{tmp_path / 'mlruns'}"


def came(server: socket.socket) -> bool:
    try:
        server.accept()[0].close()
    except TimeoutError:
        return False
    return True


def settings(store: str, chosen: bool = True) -> Settings:
    return Settings({"mlflow": chosen, "tracking_uri": store, "experiment": "dlrun"})


def a_sweep(tmp_path, record) -> tuple:
    sweep = tmp_path / "sweep"
    record_sweep(sweep, ["seed"])
    path = sweep / runs.SWEEP_STATE / log_mlflow.PARENT
    path.write_text(record if isinstance(record, str) else json.dumps(record))
    return sweep, path


HOSTILE = {  # a crafted or copied .dlrun/mlflow.json, and what must not happen
    "another-server": lambda t, port: {
        "run_id": "a" * 32,
        "tracking_uri": f"http://127.0.0.1:{port}",
    },
    "another-file-store": lambda t, port: {"run_id": "a" * 32, "tracking_uri": f"file://{t}/made"},
    "not-json": lambda t, port: "{run_id: ",
    "run-id-a-path": lambda t, port: {"run_id": "../../etc", "tracking_uri": f"file://{t}/made"},
    "uri-a-number": lambda t, port: {"run_id": "a" * 32, "tracking_uri": 5},
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_crafted_parent_record_never_makes_dlrun_contact_another_store(
    tmp_path, store, silent_server, capsys, case
):
    record = HOSTILE[case](tmp_path, silent_server.getsockname()[1])
    sweep, path = a_sweep(tmp_path, record)
    before = path.read_bytes()
    loggers.finish_sweep(sweep, failed=False, settings=settings(store))
    assert not came(silent_server), "dlrun connected to the server the folder named"
    assert not (tmp_path / "made").exists(), "dlrun made the store the folder named"
    assert path.read_bytes() == before
    err = capsys.readouterr().err.strip().splitlines()
    if case.startswith("another"):  # a record dlrun could have written, for another store
        assert err == [
            f"dlrun: {path} names another MLflow store than {store}; "
            "its parent run is left as it is"
        ]
    else:  # not a record dlrun writes: as if there were none
        assert err == []


def test_jobs_of_a_copied_sweep_get_a_parent_in_the_users_store(tmp_path, store, capsys):
    sweep, path = a_sweep(tmp_path, HOSTILE["another-file-store"](tmp_path, 0))
    client, experiment = log_mlflow.client_and_experiment(settings(store))
    parent = log_mlflow.parent_run(client, experiment, sweep)
    assert parent != "a" * 32 and client.get_run(parent).data.tags["dlrun.kind"] == "sweep"
    assert json.loads(path.read_text())["tracking_uri"] == store  # the record is the user's now
    assert "names no parent run of this store and experiment" in capsys.readouterr().err
    assert log_mlflow.parent_run(client, experiment, sweep) == parent  # and is used

    loggers.finish_sweep(sweep, failed=False, settings=settings(store, chosen=False))
    assert client.get_run(parent).info.status == "RUNNING"  # logger=csv now: nothing contacted
    loggers.finish_sweep(sweep, failed=True, settings=settings(store))
    assert client.get_run(parent).info.status == "FAILED"
    out = capsys.readouterr().out
    assert f"dlrun: MLflow: the sweep is run {parent}; view the runs with: mlflow ui" in out
    assert f"#/experiments/{experiment}/runs?workflowType=machine_learning" in out
    assert not (tmp_path / "made").exists()


def test_a_live_run_ends_with_the_address_of_its_runs_table(make_cfg, tmp_path, store, capsys):
    from dlrun.run.runner import run

    summary = run(make_cfg("logger=mlflow", f"logger.tracking_uri={store}"), tmp_path / "run")
    client, experiment = log_mlflow.client_and_experiment(settings(store))
    assert summary["mlflow"]["run_id"] == client.search_runs([experiment])[0].info.run_id
    out = capsys.readouterr().out
    assert (
        f"dlrun: MLflow run {summary['mlflow']['run_id']}; view the runs with: mlflow ui "
        f"--backend-store-uri {store}, then open "
        f"http://127.0.0.1:5000/#/experiments/{experiment}/runs?workflowType=machine_learning"
    ) in out


def test_a_tracking_server_is_its_own_ui():
    assert log_mlflow.view("http://10.0.0.5:5000/", "7") == (
        "the runs table: http://10.0.0.5:5000/#/experiments/7/runs?workflowType=machine_learning"
    )


def test_an_export_to_a_store_that_refuses_is_one_line_exit_1(tmp_path, capsys):
    from dlrun.cli.main import main

    from synthetic_runs import write_classification_run

    folder = write_classification_run(tmp_path / "run", epochs=2)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    uri = f"http://127.0.0.1:{closed.getsockname()[1]}"
    closed.close()  # nothing listens there now
    assert main(["export", "mlflow", str(folder), "--tracking-uri", uri]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
    assert err[0].startswith(f"dlrun: error: dlrun export mlflow: {uri}: MlflowException: ")
    assert "Connection refused" in err[0]


def test_a_parent_run_the_store_does_not_know_is_one_line_at_the_sweeps_end(
    tmp_path, store, capsys
):
    client, experiment = log_mlflow.client_and_experiment(settings(store))
    record = {"run_id": "0" * 32, "experiment_id": experiment, "tracking_uri": store}
    sweep, _ = a_sweep(tmp_path, record)  # the user's store, an id it never gave
    loggers.finish_sweep(sweep, failed=False, settings=settings(store))
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("dlrun: warning: mlflow stopped logging (MlflowException: ")
    parent = log_mlflow.parent_run(client, experiment, sweep)  # a job starting now
    assert parent != "0" * 32 and client.get_run(parent).data.tags["dlrun.kind"] == "sweep"
