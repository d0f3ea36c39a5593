"""Which job of how many (dlrun/sweeps/count.py)."""

from __future__ import annotations

import json
import os
import time

import pytest

from dlrun.sweeps import count
from dlrun.sweeps.count import count_jobs, job_line


@pytest.mark.parametrize(
    ("overrides", "params", "trials", "count"),
    [
        (["optimizer=sgd,momentum,adam", "seed=0,1,2"], None, None, 9),
        (["trainer.epochs=3"], {"init": "zeros,constant,xavier,he", "seed": "0,1"}, None, 8),
        (["seed=0"], {"init": "zeros,constant,xavier,he", "seed": "0,1"}, None, 4),  # fixed wins
        ([], {"seed": "range(0,16)", "model.width": "1,2,4"}, None, 48),
        (["hydra/launcher=parallel", "seed=0,1"], None, None, 2),  # Hydra's own keys: no jobs
        (["model.width=choice(64,128)"], None, 30, 30),  # Optuna: its trials
        (["data=glob(*)"], None, None, None),  # known only once Hydra lists the choices
        ([], None, None, 1),
    ],
)
def test_a_sweep_counts_its_jobs_as_the_basic_sweeper_expands_them(
    overrides, params, trials, count
):
    assert count_jobs(overrides, params, trials) == count


def test_the_job_line_says_which_of_how_many_and_the_time_left():
    assert job_line(0, 9, 0.5, 0) == "dlrun: job #0 (1 of 9)"
    # 3 jobs took 30 s: 6 more take about a minute
    assert job_line(3, 9, 30.0, 3) == "dlrun: job #3 (4 of 9), about 1m00s left in the sweep"
    assert job_line(5, None, 30.0, 3) == "dlrun: job #5"
    line = job_line(4, 9, 40.0, 4, "seed=4 quick=True optimizer.lr=0.0012345678")
    assert (
        line
        == "dlrun: job #4 (5 of 9) seed=4 quick=true optimizer.lr=0.001235, about 50s left in the sweep"
    )


def test_workers_count_the_jobs_that_ended_since_the_sweep_started(tmp_path, monkeypatch):
    def job(name, status, age):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "summary.json").write_text(json.dumps({"status": status}))
        os.utime(folder / "summary.json", (time.time() - age, time.time() - age))

    job("0_seed=0", "completed", 5)
    job("1_seed=1", "failed", 5)
    job("2_seed=2", "running", 5)  # still training
    job("3_seed=3", "completed", 500)  # ended in an earlier run of the sweep
    (tmp_path / "4_link").symlink_to(tmp_path / "0_seed=0")  # never followed
    assert count.ended_since(tmp_path, time.time() - 60) == 2
    monkeypatch.setenv(count.STARTED, "nan")
    assert count.started() is None
    count.mark_start()
    assert abs(count.started() - time.time()) < 5
