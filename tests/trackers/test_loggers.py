"""Trackers: TensorBoard event files and MLflow runs hold what the run folder holds (dlrun/trackers/loggers.py)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest
import yaml

from dlrun.errors import ConfigError
from dlrun.folders import runs
from dlrun.folders.sweep_index import record_sweep
from dlrun.run.runner import run
from dlrun.trackers import loggers

from synthetic_runs import write_classification_run

tensorboard = pytest.importorskip("tensorboard")
mlflow = pytest.importorskip("mlflow")


@pytest.fixture
def store(tmp_path, monkeypatch):
    """An MLflow file store in tmp_path: no server, no database migrations."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks for this opt-in
    return f"file://{tmp_path / 'mlruns'}"


def read_rows(path):
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def scalars(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    return events


def test_tensorboard_events_hold_every_epoch_and_the_summary(make_cfg, tmp_path):
    summary = run(make_cfg("logger=tensorboard", "trainer.epochs=3"), tmp_path / "run")
    rows = read_rows(tmp_path / "run" / runs.METRICS)
    events = scalars(tmp_path / "run")
    for column, tag in [("train_loss", "loss/train"), ("val_acc", "acc/val"), ("lr", "lr")]:
        logged = events.Scalars(tag)
        assert [e.step for e in logged] == [1, 2, 3]
        assert [e.value for e in logged] == pytest.approx([r[column] for r in rows], rel=1e-6)
    (final,) = events.Scalars("summary/test_acc")
    assert final.value == pytest.approx(summary["test_acc"]) and final.step == 3
    # the HParams tab: a single run's whole flattened config, as typed keys
    params = hparams_of(events)
    assert params["optimizer.name"].string_value == "adam"
    assert params["trainer.epochs"].number_value == 3
    assert len(params) == len(
        runs.flatten(yaml.safe_load((tmp_path / "run" / runs.CONFIG).read_text()))
    )


def hparams_of(events):
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    return plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams


def test_mlflow_run_holds_params_curves_summary_and_checkpoints(make_cfg, tmp_path, store):
    cfg = make_cfg("logger=mlflow", f"logger.tracking_uri={store}", "trainer.epochs=3")
    summary = run(cfg, tmp_path / "run")
    mlflow.set_tracking_uri(store)
    (found,) = mlflow.search_runs(experiment_names=["dlrun"]).to_dict("records")
    assert found["run_id"] == summary["mlflow"]["run_id"] and found["status"] == "FINISHED"
    assert found["params.optimizer.name"] == "adam" and found["params.trainer.epochs"] == "3"
    assert found["metrics.test_acc"] == pytest.approx(summary["test_acc"])
    assert found["metrics.final_val_loss"] == pytest.approx(summary["val_loss"])
    client = mlflow.tracking.MlflowClient(store)
    history = client.get_metric_history(found["run_id"], "train_loss")
    rows = read_rows(tmp_path / "run" / runs.METRICS)
    assert [(m.step, m.value) for m in history] == [
        (int(r["epoch"]), pytest.approx(r["train_loss"])) for r in rows
    ]
    artifacts = [a.path for a in client.list_artifacts(found["run_id"], runs.CHECKPOINTS)]
    assert sorted(artifacts) == [
        f"{runs.CHECKPOINTS}/{runs.BEST}",
        f"{runs.CHECKPOINTS}/{runs.LAST}",
    ]
    saved = json.loads((tmp_path / "run" / runs.SUMMARY).read_text())
    assert saved["mlflow"] == {"run_id": found["run_id"], "tracking_uri": store}


def test_a_missing_tracker_library_is_one_line_before_anything_is_written(
    make_cfg, tmp_path, monkeypatch
):
    real = loggers.importlib.util.find_spec
    monkeypatch.setattr(
        loggers.importlib.util, "find_spec", lambda name: None if name == "mlflow" else real(name)
    )
    with pytest.raises(
        ConfigError, match=r'logger=mlflow needs the mlflow package: pip install -e "\.\[mlflow\]"'
    ):
        run(make_cfg("logger=[csv,mlflow]"), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_failing_tracker_is_dropped_with_a_warning_and_the_run_goes_on(
    make_cfg, tmp_path, capsys
):
    class Broken:
        name = "broken"

        def __init__(self):
            self.calls = 0

        def epoch(self, row):
            self.calls += 1
            raise OSError("disk full")

        def finish(self, summary):
            raise AssertionError("a dropped tracker is never called again")

    csv_log = runs.CsvLog(tmp_path / "metrics.csv", ["epoch", "train_loss"])
    broken = Broken()
    sinks = loggers.Sinks(csv_log, [broken])
    for epoch in (1, 2, 3):
        sinks.write({"epoch": epoch, "train_loss": 1.0 / epoch})
    sinks.finish({"status": "completed"})
    sinks.close()
    assert broken.calls == 1
    assert [r["epoch"] for r in read_rows(tmp_path / "metrics.csv")] == [1, 2, 3]
    err = capsys.readouterr().err
    assert "broken stopped logging (OSError: disk full)" in err and err.count("\n") == 1


def test_export_copies_a_sweep_once_nested_under_its_parent(tmp_path, store, capsys):
    from dlrun.cli.main import main

    sweep = tmp_path / "sweep"
    record_sweep(sweep, ["optimizer"])
    for i, name in enumerate(("sgd", "adam")):
        write_classification_run(
            sweep / f"{i}_optimizer={name}", {"optimizer.name": name}, epochs=4
        )
    assert main(["export", "mlflow", str(sweep), "--tracking-uri", store]) == 0
    assert main(["export", "mlflow", str(sweep), "--tracking-uri", store]) == 0  # again: no copies
    out = capsys.readouterr().out
    assert "2 runs copied to MLflow" in out and out.count("is already MLflow run") == 2
    mlflow.set_tracking_uri(store)
    found = mlflow.search_runs(experiment_names=["dlrun"])
    parent = found[found["tags.dlrun.kind"] == "sweep"]
    jobs = found[found["tags.mlflow.parentRunId"].notna()]
    assert len(parent) == 1 and parent["status"].item() == "FINISHED"
    assert set(jobs["tags.mlflow.parentRunId"]) == {parent["run_id"].item()}
    assert sorted(jobs["params.optimizer.name"]) == ["adam", "sgd"]
    metrics = read_rows(sweep / "1_optimizer=adam" / runs.METRICS)
    adam = jobs[jobs["params.optimizer.name"] == "adam"]
    assert adam["metrics.train_loss"].item() == pytest.approx(metrics[-1]["train_loss"])

    assert main(["export", "tensorboard", str(sweep)]) == 0
    assert main(["export", "tensorboard", str(sweep)]) == 0  # again: the files are replaced
    folder = sweep / "0_optimizer=sgd"
    assert len(list(folder.glob("events.out.tfevents.*"))) == 1
    # a sweep job's HParams row: what the jobs differ in, and the seed
    assert dict(hparams_of(scalars(folder))).keys() == {"optimizer.name", "seed"}
    logged = scalars(folder).Scalars("loss/val")
    assert [e.value for e in logged] == pytest.approx(
        [r["val_loss"] for r in read_rows(folder / runs.METRICS)], rel=1e-6
    )


def test_export_of_an_unknown_tracker_or_folder_is_one_usage_line(tmp_path, capsys):
    from dlrun.cli.main import main

    assert main(["export", "wandb", str(tmp_path)]) == 2
    assert "invalid choice: 'wandb'" in capsys.readouterr().err
    assert main(["export", "tensorboard", str(tmp_path / "nope")]) == 2
    assert "nope: no such folder" in capsys.readouterr().err


@pytest.mark.slow  # two dlrun processes' start-up; the export test covers nesting in-process
def test_mlflow_sweep_nests_two_jobs_under_one_parent(tmp_path, store):
    """The issue's check: `dlrun train -m logger=mlflow optimizer=sgd,adam`."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "MLFLOW_TRACKING_URI": store}
    quick = ["device=cpu", "trainer.epochs=2", "data.n_samples=600", "model.width=16"]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "dlrun",
            "train",
            "-m",
            "logger=mlflow",
            "optimizer=sgd,adam",
            *quick,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    mlflow.set_tracking_uri(store)
    found = mlflow.search_runs(experiment_names=["dlrun"])
    parent = found[found["tags.mlflow.parentRunId"].isna()]
    jobs = found[found["tags.mlflow.parentRunId"].notna()]
    assert len(parent) == 1 and len(jobs) == 2 and parent["status"].item() == "FINISHED"
    assert set(jobs["tags.mlflow.parentRunId"]) == {parent["run_id"].item()}
    assert sorted(jobs["params.optimizer.name"]) == ["adam", "sgd"]
    assert jobs["metrics.test_acc"].between(0, 1).all() and (jobs["status"] == "FINISHED").all()
    assert f"dlrun: MLflow: the sweep is run {parent['run_id'].item()}" in out.stdout


def test_a_tracker_that_cannot_start_is_a_warning_not_a_lost_run(
    make_cfg, tmp_path, capsys, monkeypatch
):
    class Unreachable:
        store = staticmethod(lambda settings, run_dir: "http://mlflow:5000")

        class Tracker:
            def __init__(self, *args):
                raise ConnectionError("no server at http://mlflow:5000")

    monkeypatch.setattr(loggers, "tracker_module", lambda name: Unreachable)
    summary = run(make_cfg("logger=mlflow", "trainer.epochs=2"), tmp_path)
    assert summary["status"] == "completed" and "mlflow" not in summary
    assert (
        "mlflow stopped logging (ConnectionError: no server at http://mlflow:5000)"
        in capsys.readouterr().err
    )
    assert "mlflow stopped logging" in (tmp_path / runs.RUN_LOG).read_text()  # kept with the run


def test_an_exported_run_keeps_its_own_times_and_short_numbers(tmp_path, store):
    import numpy as np
    from mlflow.tracking import MlflowClient

    from dlrun.cli.main import main

    folder = write_classification_run(tmp_path / "run", epochs=3)
    metrics = (folder / runs.METRICS).read_text().splitlines()
    values = metrics[1].split(",")
    values[2] = repr(float(np.float32(0.653)))  # train_loss as a float32 reads back: 0.65299999...
    (folder / runs.METRICS).write_text("\n".join([metrics[0], ",".join(values), *metrics[2:]]))
    began = 1_700_000_000.0  # 2023-11-14: long before the export
    os.utime(folder / runs.CONFIG, (began, began))
    assert main(["export", "mlflow", str(folder), "--tracking-uri", store]) == 0
    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("dlrun")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # runs table
    (found,) = client.search_runs([experiment.experiment_id])
    summary = runs.read_summary(folder)
    assert found.info.start_time == int(began * 1000)
    assert found.info.end_time == int((began + summary["total_s"]) * 1000)  # not the export's ms
    history = client.get_metric_history(found.info.run_id, "train_loss")
    first = next(m for m in history if m.step == 1)
    assert first.value == 0.653  # not 0.652999997138977
    assert first.timestamp == int((began + 0.1) * 1000)  # the epoch's time_s after the start


def test_an_exported_sweep_parent_spans_its_jobs_and_the_page_opens_on_runs(
    tmp_path, store, capsys
):
    from mlflow.tracking import MlflowClient

    from dlrun.cli.main import main

    sweep = tmp_path / "sweep"
    record_sweep(sweep, ["optimizer"])
    began = 1_700_000_000.0
    os.utime(sweep / runs.SWEEP_STATE / "sweep.json", (began, began))
    ends = []
    for i, name in enumerate(("sgd", "adam")):
        folder = write_classification_run(sweep / f"{i}_optimizer={name}", {"optimizer.name": name})
        os.utime(folder / runs.CONFIG, (began + 10 * i, began + 10 * i))
        ends.append(began + 10 * i + runs.read_summary(folder)["total_s"])
    assert main(["export", "mlflow", str(sweep), "--tracking-uri", store]) == 0
    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("dlrun")
    found = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in found if r.data.tags.get("dlrun.kind") == "sweep"]
    assert parent.info.start_time == int(began * 1000)
    assert parent.info.end_time == int(max(ends) * 1000)  # when its last job ended
    out = capsys.readouterr().out
    page = f"#/experiments/{experiment.experiment_id}/runs?workflowType=machine_learning"
    assert page in out  # MLflow 3's UI opens on its GenAI pages without it


def test_a_tensorboard_export_leaves_the_sweeps_mlflow_run_alone(tmp_path, store, monkeypatch):
    from dlrun.cli.main import main

    sweep = tmp_path / "sweep"
    record_sweep(sweep, ["seed"])
    write_classification_run(sweep / "0_seed=0", epochs=2)
    assert main(["export", "mlflow", str(sweep), "--tracking-uri", store]) == 0
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")  # MLflow would refuse its store now
    assert main(["export", "tensorboard", str(sweep)]) == 0  # and is not asked
