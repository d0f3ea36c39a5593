"""hydra/launcher=slurm's two sides without a cluster: what a job records when SLURM stops it
(_job.py), and what the driver records for a job SLURM lost (_driver.py)."""

from __future__ import annotations

import csv
import math

import pytest
from omegaconf import OmegaConf

from dlrun.errors import Interrupted
from dlrun.folders import runs
from dlrun.folders.sweep_index import record_job

pytest.importorskip("submitit")
from submitit.core.utils import UncompletedJobError  # noqa: E402

from hydra_plugins.dlrun_slurm import _driver, _job  # noqa: E402


def job_cfg(sweep_dir, num=1):
    return OmegaConf.create(
        {
            "hydra": {
                "sweep": {"dir": str(sweep_dir), "subdir": f"{num}_seed={num}"},
                "overrides": {"task": [f"seed={num}"]},
            },
            "trainer": {"early_stopping": {"monitor": "val_loss"}},
            "seed": num,
            "name": "mlp-mnist1d",
        }
    )


def started(sweep_dir, status=runs.INTERRUPTED, epochs=3):
    """A job folder as run() leaves it when a signal stopped it after `epochs` epochs."""
    cfg = job_cfg(sweep_dir)
    run_dir = sweep_dir / cfg.hydra.sweep.subdir
    run_dir.mkdir(parents=True)
    record_job(sweep_dir, 1, {"seed": "1"}, run_dir)
    runs.write_json(run_dir / runs.SUMMARY, {"status": status, "epochs_run": epochs, "seed": 1})
    return cfg, run_dir


def index_row(sweep_dir):
    with open(sweep_dir / runs.SWEEP_INDEX, newline="") as f:
        [row] = list(csv.DictReader(f))
    return row


def test_the_warning_signal_marks_the_job_requeued_then_hands_over_to_submitit(tmp_path):
    cfg, run_dir = started(tmp_path)
    seen = []

    def submitit_requeues(signum, frame):
        seen.append(runs.read_summary(run_dir)["status"])  # what the folder said by then
        raise SystemExit(-1)  # submitit's handler: checkpoint, scontrol requeue, exit

    with pytest.raises(SystemExit):
        _job.after(Interrupted("SIGUSR2", 140), cfg, 1, submitit_requeues, 3)
    assert seen == [runs.REQUEUED]
    summary = runs.read_summary(run_dir)
    assert summary["epochs_run"] == 3 and "after epoch 3" in summary["error"]
    assert index_row(tmp_path)["status"] == runs.REQUEUED


def test_after_the_last_requeue_the_job_ends_timeout_not_failed(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_RESTART_COUNT", "2")
    cfg, run_dir = started(tmp_path, epochs=7)

    def submitit_gives_up(signum, frame):
        raise UncompletedJobError("Job not requeued because: timed-out too many times.")

    ret = _job.after(Interrupted("SIGUSR2", 140), cfg, 1, submitit_gives_up, 2)
    assert ret.return_value == math.inf  # the worst val_loss: Optuna learns, the sweep goes on
    summary = runs.read_summary(run_dir)
    assert summary["status"] == runs.TIMEOUT
    assert "2 requeues" in summary["error"] and "max_num_timeout=2" in summary["error"]
    row = index_row(tmp_path)
    assert row["status"] == runs.TIMEOUT and row["status"] in runs.BROKEN


def test_sigterm_exits_without_a_result_and_a_finished_run_stays_finished(tmp_path):
    cfg, run_dir = started(tmp_path)
    with pytest.raises(SystemExit) as stop:  # the driver reads from squeue how it ended
        _job.after(Interrupted("SIGTERM", 143), cfg, 1, None, 3)
    assert stop.value.code == 143
    assert runs.read_summary(run_dir)["status"] == runs.INTERRUPTED

    runs.write_json(run_dir / runs.SUMMARY, {"status": runs.COMPLETED, "best_val_loss": 0.5})

    def must_not_requeue(signum, frame):
        raise AssertionError("a finished job was requeued")

    ret = _job.after(Interrupted("SIGUSR2", 140), cfg, 1, must_not_requeue, 3)
    assert ret.return_value == 0.5 and runs.read_summary(run_dir)["status"] == runs.COMPLETED


@pytest.mark.parametrize(
    "state, status, words",
    [
        ("CANCELLED", runs.CANCELLED, "scancel"),
        ("TIMEOUT", runs.TIMEOUT, "timeout_min"),
        ("OUT_OF_MEMORY", runs.FAILED, "mem_gb"),
        ("NODE_FAIL", runs.CANCELLED, "NODE_FAIL"),
        ("gone from squeue", runs.CANCELLED, "gone from squeue"),
    ],
)
def test_a_lost_job_is_recorded_with_one_line(tmp_path, capsys, state, status, words):
    cfg, run_dir = started(tmp_path, status=runs.RUNNING)
    job = _driver.Job(1, ["seed=1"], cfg)
    ret = _driver.lost(job, "42_1", state)
    assert ret.return_value == math.inf
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"dlrun: job 1 {status}: SLURM task 42_1") and words in line
    assert runs.read_summary(run_dir)["status"] == status
    assert index_row(tmp_path)["status"] == status


def test_a_job_cancelled_before_it_started_still_gets_its_row(tmp_path):
    cfg = job_cfg(tmp_path, num=2)
    _driver.lost(_driver.Job(2, ["seed=2"], cfg), "42_2", "CANCELLED")
    row = index_row(tmp_path)
    assert (row["job"], row["seed"], row["status"]) == ("2", "2", runs.CANCELLED)
    assert row["run_dir"] == "2_seed=2"


def test_the_array_is_sized_by_its_largest_job_and_device_auto_follows_nodes_have_gpus(tmp_path):
    from types import SimpleNamespace

    def job(num, device, threads):
        cfg = job_cfg(tmp_path, num)
        cfg.device = {"name": device}
        cfg.trainer.threads = threads
        return _driver.Job(num, [], cfg)

    params = {"cpus_per_task": None, "gpus_per_node": None, "mem_gb": 4, "timeout_min": 60}
    launcher = SimpleNamespace(params=params, own={"nodes_have_gpus": False})
    jobs = [job(0, "auto", 2), job(1, "auto", 1)]
    request = _driver.request_of(launcher, jobs)
    assert (request.cpus, request.gpus, request.mem_gb) == (2, 0, 4)
    launcher.own["nodes_have_gpus"] = True
    assert _driver.request_of(launcher, jobs).gpus == 1
    assert _driver.request_of(launcher, [job(0, "cpu", None)]).gpus == 0


def test_sigterm_stops_the_driver_as_ctrl_c_does_and_its_handler_is_put_back():
    import os
    import signal

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as stop:
        with _driver.stopped_by_sigterm():
            os.kill(os.getpid(), signal.SIGTERM)
            signal.pause()  # the handler raises as soon as the signal lands
    assert (stop.value.signal_name, stop.value.exit_code) == ("SIGTERM", 143)
    assert signal.getsignal(signal.SIGTERM) is before
