"""The run folder's vocabulary and writers, against docs/run-folder.md (dlrun/folders/runs.py)."""

from __future__ import annotations

import csv
import errno
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import dlrun.run.runner
from dlrun.errors import ConfigError, WriteError
from dlrun.folders import runs
from dlrun.run.runner import run

DOCS = Path(__file__).resolve().parents[2] / "docs" / "run-folder.md"


def documented_summary_keys() -> dict[str, str]:
    """{key: when} from the summary.json table of docs/run-folder.md."""
    text = DOCS.read_text().split("## summary.json", 1)[1]
    keys = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            for key in re.findall(r"`([^`]+)`", cells[0]):
                keys[key] = cells[1]
    return keys


def expected_keys(
    documented: dict[str, str], task: str, status: str, monitor: str, resumed: bool = False
) -> set[str]:
    """The keys the docs promise for a run of this task and status (no optional extras)."""
    finished = status in runs.FINISHED
    wanted = set()
    for key, when in documented.items():
        conditions = [c.strip() for c in when.split(",")]
        if conditions == ["always"]:
            wanted.add(key)
        elif conditions[0] == "finished" and finished:
            if len(conditions) == 1 or conditions[1] == task:
                wanted.add(key)
        elif status in conditions or (resumed and conditions == ["resumed"]):
            wanted.add(key)
    return {runs.best_key(monitor) if k == "best_<monitor>" else k for k in wanted}


def test_docs_list_every_summary_key_of_a_classification_run(make_cfg, tmp_path):
    summary = run(make_cfg("trainer.epochs=2"), tmp_path)
    documented = documented_summary_keys()
    assert set(summary) == expected_keys(
        documented, "classification", summary["status"], "val_loss"
    )


def test_docs_list_every_summary_key_of_an_interrupted_regression_run(
    make_cfg, tmp_path, monkeypatch
):
    real_fit = dlrun.run.runner.fit

    def fit_then_ctrl_c(cfg, data, parts, state, metrics, layers, run_dir):
        cfg.trainer.epochs = 2
        real_fit(cfg, data, parts, state, metrics, layers, run_dir)
        raise KeyboardInterrupt

    monkeypatch.setattr(dlrun.run.runner, "fit", fit_then_ctrl_c)
    cfg = make_cfg("data=regression", "trainer.early_stopping.monitor=val_rmse")
    with pytest.raises(KeyboardInterrupt):
        run(cfg, tmp_path)
    summary = runs.read_summary(tmp_path)
    assert summary["status"] == runs.INTERRUPTED
    documented = documented_summary_keys()
    assert set(summary) == expected_keys(documented, "regression", runs.INTERRUPTED, "val_rmse")
    assert summary["best_val_rmse"] > 0  # the same key as a finished run's, in every status


def test_docs_list_every_summary_key_of_a_resumed_run(make_cfg, tmp_path):
    from dlrun.run.resume import resume_run

    run(make_cfg("trainer.epochs=1"), tmp_path)
    summary = resume_run(tmp_path, {"trainer.epochs": 2})
    documented = documented_summary_keys()
    assert set(summary) == expected_keys(
        documented, "classification", summary["status"], "val_loss", resumed=True
    )


def test_statuses_nest_as_the_sweep_index_and_report_use_them():
    assert set(runs.USABLE) < set(runs.FINISHED) < set(runs.STATUSES)
    assert runs.DIVERGED in runs.FINISHED and runs.DIVERGED not in runs.USABLE
    assert not set(runs.BROKEN) & set(runs.FINISHED)
    assert runs.KILLED in runs.BROKEN and runs.KILLED not in runs.STATUSES  # sweep.csv only


def test_docs_name_every_status_and_what_a_sweep_does_with_it():
    """run-folder.md's `status` row and sweeps.md's index and SLURM tables name each status."""
    row = next(line for line in DOCS.read_text().splitlines() if line.startswith("| `status` |"))
    assert set(re.findall(r"`([a-z_]+)`", row)) - {"status"} >= set(runs.STATUSES)
    sweeps = (DOCS.parent / "sweeps.md").read_text()
    index = next(line for line in sweeps.splitlines() if line.startswith("| `status` |"))
    assert set(re.findall(r"`([a-z_]+)`", index)) >= {*runs.STATUSES, runs.KILLED}
    # every status a SLURM job can end in says what the user does next
    slurm = sweeps.split("### How a job ends", 1)[1].split("\n\n", 2)[1]
    for status in (*runs.FINISHED, runs.FAILED, *runs.CONTINUES, runs.CANCELLED):
        assert f"`{status}`" in slurm, status
    assert set(runs.CONTINUES) <= set(runs.STATUSES) and not set(runs.CONTINUES) & set(
        runs.FINISHED
    )


@pytest.mark.parametrize(
    ("metric", "higher"),
    [
        ("val_acc", True),
        ("test_acc", True),
        ("best_val_acc", True),
        ("val_loss", False),
        ("test_rmse", False),
    ],
)
def test_only_accuracies_are_maximised(metric, higher):
    assert runs.higher_is_better(metric) is higher


def test_metric_columns_follow_the_task():
    assert runs.metric_columns("classification")[4:6] == ["train_acc", "val_acc"]
    assert runs.metric_columns("regression")[4:6] == ["train_rmse", "val_rmse"]
    assert runs.monitorable("regression") == ["train_loss", "val_loss", "train_rmse", "val_rmse"]


def test_read_summary_is_none_for_anything_but_a_json_object(tmp_path):
    assert runs.read_summary(tmp_path) is None
    for text in ("[1, 2]", "{not json", "null", '"running"'):
        (tmp_path / runs.SUMMARY).write_text(text)
        assert runs.read_summary(tmp_path) is None, text
    runs.write_json(tmp_path / runs.SUMMARY, {"status": "completed"})
    assert runs.read_summary(tmp_path) == {"status": "completed"}
    assert runs.is_finished(tmp_path)


def test_atomic_write_leaves_no_temporary_file(tmp_path):
    runs.atomic_write_text(tmp_path / "a.txt", "one")
    runs.atomic_write_text(tmp_path / "a.txt", "two")
    assert (tmp_path / "a.txt").read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_csv_log_appends_to_an_existing_file_and_truncate_drops_later_epochs(tmp_path):
    path = tmp_path / runs.METRICS
    log = runs.CsvLog(path, ["epoch", "x"])
    log.write([{"epoch": 1, "x": 0.5}, {"epoch": 2, "x": 0.25}])
    assert path.read_text().splitlines() == ["epoch,x", "1,0.5", "2,0.25"]  # flushed, not closed
    log.close()
    log = runs.CsvLog(path, ["epoch", "x"], append=True)
    log.write({"epoch": 3, "x": 0.125, "ignored": 1})
    log.close()
    runs.truncate_csv(path, last_epoch=2)
    with open(path, newline="") as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["1", "2"]


def test_csv_log_appends_in_the_files_own_columns(tmp_path):
    # a run written before a column was added (update_cos), resumed by today's dlrun:
    # its rows stay as long as its header, so truncate_csv keeps every one of them
    path = tmp_path / runs.METRICS
    path.write_bytes(b"epoch,x\r\n1,0.5\r\n")  # as csv writes it
    log = runs.CsvLog(path, ["epoch", "x", "new"], append=True)
    log.write({"epoch": 2, "x": 0.25, "new": -1.0})
    log.close()
    assert path.read_text().splitlines() == ["epoch,x", "1,0.5", "2,0.25"]
    runs.truncate_csv(path, last_epoch=2)
    assert path.read_text().splitlines() == ["epoch,x", "1,0.5", "2,0.25"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary_one(tmp_path):
    target = tmp_path / "summary.json"
    runs.write_json(target, {"status": "completed"})

    def fill_the_disk(tmp):
        tmp.write_text('{"status": "fail')  # half written when the disk fills up
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(WriteError) as e:
        runs.atomic_write(target, fill_the_disk)
    assert str(e.value) == f"cannot write {target}: no space left on device"
    assert runs.read_summary(tmp_path) == {"status": "completed"}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_a_csv_log_names_its_file_when_a_write_fails(tmp_path, monkeypatch):
    log = runs.CsvLog(tmp_path / runs.METRICS, ["epoch", "x"])

    def full(*args):
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))

    monkeypatch.setattr(log.file, "flush", full)
    with pytest.raises(WriteError, match=f"cannot write {tmp_path / runs.METRICS}: disk quota"):
        log.write({"epoch": 1, "x": 0.5})


def test_one_process_trains_into_a_folder_at_a_time(tmp_path):
    with runs.exclusive(tmp_path / "run"):
        with pytest.raises(ConfigError, match="in use by another dlrun process"):
            with runs.exclusive(tmp_path / "run"):
                pass
    with runs.exclusive(tmp_path / "run"):  # released
        pass


def test_a_killed_process_leaves_its_folder_free(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(ConfigError):
        with runs.exclusive(tmp_path):
            pass
    holder.kill()  # kill -9: no clean-up ran in the holder
    holder.wait()
    with runs.exclusive(tmp_path):
        pass


HOLD_LOCK = """
import sys, time
from dlrun.folders import runs
from dlrun.errors import ConfigError, WriteError
with runs.exclusive(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""
