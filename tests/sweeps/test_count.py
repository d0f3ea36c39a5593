"""Which job of how many (dlrun/sweeps/count.py)."""

from __future__ import annotations

import time

import pytest

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
    assert job_line(0, 9, time.perf_counter(), 0) == "dlrun: job #0 (1 of 9)"
    started = time.perf_counter() - 30.0  # 3 jobs took 30 s: 6 more take about a minute
    assert job_line(3, 9, started, 3) == "dlrun: job #3 (4 of 9), about 1m00s left in the sweep"
    assert job_line(5, None, started, 3) == "dlrun: job #5"
