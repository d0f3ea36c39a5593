"""A tracker's server that is unreachable or never answers never holds a run up
(dlrun/trackers/background.py)."""

from __future__ import annotations

import re
import socket
import threading

import pytest

from dlrun.folders import runs
from dlrun.run.runner import run
from dlrun.trackers import background, loggers

pytest.importorskip("mlflow")


@pytest.fixture
def fresh(monkeypatch):
    """No store remembered as silent from another test; waits short enough for a test."""
    monkeypatch.setattr(background, "_silent", {})
    monkeypatch.setattr(background, "OPEN_WAIT_S", 1.0)
    monkeypatch.setattr(background, "FINISH_WAIT_S", 0.5)


def connections(server: socket.socket) -> int:
    """How many clients reached the socket since last asked."""
    count = 0
    while True:
        try:
            client, _ = server.accept()
        except TimeoutError:
            return count
        client.close()
        count += 1


def test_an_mlflow_server_that_never_answers_costs_one_line_and_no_epoch(
    make_cfg, tmp_path, capsys, fresh, silent_server
):
    uri = f"http://127.0.0.1:{silent_server.getsockname()[1]}"
    cfg = make_cfg("logger=mlflow", f"logger.tracking_uri={uri}", "trainer.epochs=3")
    summary = run(cfg, tmp_path / "one")
    assert summary["status"] == "completed" and "mlflow" not in summary
    assert runs.read_summary(tmp_path / "one")["status"] == "completed"
    assert (tmp_path / "one" / runs.METRICS).read_text().count("\n") == 4  # header + 3 epochs
    assert runs.last_checkpoint(tmp_path / "one").is_file()
    warnings = [line for line in capsys.readouterr().err.splitlines() if "mlflow" in line]
    assert warnings == [
        f"dlrun: warning: mlflow stopped logging (TimeoutError: {uri} did not answer in 1 s); "
        "the run folder keeps every number (dlrun export mlflow <folder>)"
    ]
    assert connections(silent_server) >= 1  # MLflow did reach the socket, and waited on it

    # the next run (a sweep's next job) is not held up by the same server again
    again = run(make_cfg("logger=mlflow", f"logger.tracking_uri={uri}"), tmp_path / "two")
    assert again["status"] == "completed"
    assert re.search(
        rf"mlflow stopped logging \(TimeoutError: {uri} did not answer \d+ s ago; not asked again",
        capsys.readouterr().err,
    )
    assert connections(silent_server) == 0


def test_an_mlflow_server_on_a_closed_port_is_one_line_naming_the_cause(
    make_cfg, tmp_path, capsys, fresh
):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now: connection refused
    cfg = make_cfg("logger=mlflow", f"logger.tracking_uri=http://127.0.0.1:{port}")
    assert run(cfg, tmp_path)["status"] == "completed"
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len([line for line in err if "mlflow" in line]) == 1
    (line,) = [line for line in err if "mlflow" in line]
    assert "mlflow stopped logging" in line and "Connection refused" in line, line
    assert len(line) < 400  # MLflow's message is several lines of retries and URLs


def test_a_tracker_that_hangs_mid_run_never_holds_the_loop(tmp_path, capsys, fresh):
    release = threading.Event()

    class Hangs:
        name = "mlflow"

        def __init__(self):
            self.rows = []

        def fields(self):
            return {}

        def epoch(self, row):
            self.rows.append(row)
            release.wait()  # a request that never comes back

        def finish(self, summary):
            raise AssertionError("never reached: the epoch before it still hangs")

    tracker = background.Background.start("mlflow", "http://slow:5000", Hangs)
    sinks = loggers.Sinks(runs.CsvLog(tmp_path / "metrics.csv", ["epoch", "loss"]), [tracker])
    for epoch in (1, 2, 3):  # each returns at once although the tracker is stuck in epoch 1
        sinks.write({"epoch": epoch, "loss": 1.0 / epoch})
    sinks.finish({"status": "completed"})
    sinks.close()
    assert tracker.tracker.rows == [{"epoch": 1, "loss": 1.0}]
    assert (tmp_path / "metrics.csv").read_text().splitlines()[1:] == [
        "1,1.0",
        "2,0.5",
        "3,0.3333333333333333",
    ]
    assert "mlflow stopped logging (TimeoutError: http://slow:5000 did not answer in 0.5 s)" in (
        capsys.readouterr().err
    )
    release.set()


def test_an_error_in_the_trackers_thread_is_raised_at_the_next_call():
    class Full:
        name = "tensorboard"

        def epoch(self, row):
            raise OSError(28, "No space left on device")

    tracker = background.Background.start("tensorboard", "/runs/a", Full)
    tracker.epoch({"epoch": 1})
    tracker._ended.wait(5)  # the thread met the error and ended
    with pytest.raises(OSError, match="No space left"):
        tracker.epoch({"epoch": 2})


def test_a_long_mlflow_message_keeps_its_system_error_and_address():
    text = (
        "API request to http://127.0.0.1:5/api/2.0/mlflow/experiments/get-by-name failed with "
        "exception HTTPConnectionPool(host='127.0.0.1', port=5): Max retries exceeded with url: "
        "/api/2.0/mlflow/experiments/get-by-name?experiment_name=dlrun (Caused by "
        "NewConnectionError(\"HTTPConnection(host='127.0.0.1', port=5): Failed to establish a "
        'new connection: [Errno 111] Connection refused"))'
    )
    assert background.cause(RuntimeError(text)) == (
        "RuntimeError: [Errno 111] Connection refused "
        "(http://127.0.0.1:5/api/2.0/mlflow/experiments/get-by-name)"
    )
    assert background.cause(OSError("disk full")) == "OSError: disk full"  # short: as it is


def test_a_server_is_waited_for_briefly_a_store_on_this_machine_long():
    # a fresh MLflow 3 sqlite store took 14 s to create at load 8 on 2 cores: not a dead server
    server = (background.OPEN_WAIT_S, background.FINISH_WAIT_S)
    assert background.waits("http://10.0.0.5:5000") == server
    assert background.waits("HTTPS://mlflow.lab.org") == server
    for store in ("sqlite:///mlflow.db", "file:///tmp/mlruns", "MLflow's default store", "/runs/a"):
        assert background.waits(store) == (background.LOCAL_WAIT_S, background.LOCAL_WAIT_S)
