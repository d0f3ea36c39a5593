"""Where work runs: devices, GPUs and CPU threads of parallel jobs (dlrun/placement.py)."""

from __future__ import annotations

import pytest

from dlrun import placement


@pytest.mark.parametrize(
    ("name", "job", "n_gpus", "expected"),
    [
        ("auto", 5, 4, "cuda:1"),
        ("cuda", 2, 2, "cuda:0"),
        ("cuda", 3, 1, "cuda"),
        ("cpu", 3, 4, "cpu"),
        ("auto", 0, 0, "auto"),
    ],
)
def test_place_device_round_robins_over_several_gpus(name, job, n_gpus, expected):
    assert placement.place_device(name, job, n_gpus) == expected


@pytest.mark.parametrize(
    ("launcher", "expected"),
    [
        ({"n_jobs": 2}, 4),
        ({"n_jobs": -1}, 1),
        ({"n_jobs": -2}, 1),
        ({"n_jobs": 3}, 2),
        ({"cpus_per_task": 6, "_target_": "x.SlurmLauncher"}, 6),
        (
            {
                "cpus_per_task": None,
                "_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher",
            },
            1,
        ),
        ({"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}, None),
    ],
)
def test_threads_per_job_share_the_cpus(launcher, expected):
    assert placement.threads_per_job(launcher, n_cpus=8) == expected
