"""Where work runs: devices, GPUs and CPU threads of parallel jobs (dlrun/placement.py)."""

from __future__ import annotations

import math
import os

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


def test_a_slurm_job_without_cpus_per_task_uses_the_cpus_slurm_granted(monkeypatch):
    target = {"_target_": "hydra_plugins.dlrun_slurm.slurm_launcher.DlrunSlurmLauncher"}
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    assert placement.threads_per_job(target, n_cpus=8) is None  # torch's own default
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "3")
    assert placement.threads_per_job(target, n_cpus=8) == 3
    assert placement.threads_per_job({**target, "cpus_per_task": 2}, n_cpus=8) == 2


# --- threads that fit the machine: each source stood in for by a fake reader ---------


@pytest.fixture
def machine(monkeypatch, machine_threads):
    """An idle 8-core machine with no SLURM and no cgroup quota; set a key to change a source."""
    sources = {"affinity": 8, "slurm": None, "cgroup": None, "load": 0.0, "own": 0.0, "cores": 8}

    monkeypatch.setattr(placement, "cpu_count", lambda: sources["affinity"])
    monkeypatch.setattr(placement, "slurm_cpus", lambda: sources["slurm"])
    monkeypatch.setattr(placement, "cgroup_cpus", lambda: sources["cgroup"])
    monkeypatch.setattr(placement, "load_average", lambda: sources["load"])
    monkeypatch.setattr(placement, "own_load", lambda: sources["own"])
    monkeypatch.setattr(placement, "machine_cpus", lambda: sources["cores"])
    return sources


def test_trainer_threads_wins_over_every_source(machine):
    machine.update(affinity=1, slurm=1, load=50.0)
    assert placement.choose_threads(6) == placement.Threads(6, "trainer.threads=6")


def test_an_idle_machine_gives_every_cpu_the_process_may_use(machine):
    choice = placement.choose_threads(None)
    assert choice.n == 8
    assert choice.reason.startswith("8 CPUs allowed (CPU affinity), 8 of 8 free")
    machine["affinity"] = 3  # taskset -c 0-2
    assert placement.choose_threads(None) == placement.Threads(
        3, "3 CPUs allowed (CPU affinity), 8 of 8 free (load average 0.00, 0.00 of it this process)"
    )


@pytest.mark.parametrize(
    ("source", "value", "named"),
    [
        ("slurm", 2, "SLURM_CPUS_PER_TASK"),
        ("cgroup", 3, "cgroup CPU quota"),
    ],
)
def test_slurm_and_a_cgroup_quota_cap_the_threads(machine, source, value, named):
    machine[source] = value
    choice = placement.choose_threads(None)
    assert choice.n == value and f"allowed ({named})" in choice.reason
    machine[source] = 20  # more than the affinity allows: the affinity decides
    assert placement.choose_threads(None).n == 8


def test_a_sweep_job_takes_no_more_than_its_share(machine):
    choice = placement.choose_threads(None, share=2)
    assert choice.n == 2 and "this job's share of the sweep" in choice.reason
    machine["cgroup"] = 1
    assert placement.choose_threads(None, share=2).n == 1  # the tighter source decides


@pytest.mark.parametrize(
    ("cores", "load", "own", "expected"),
    [
        (2, 1.0, 0.0, 1),  # one busy process on 2 cores: one core left
        (2, 1.1, 0.0, 1),
        (2, 0.2, 0.0, 2),  # background noise of an idle machine: both free
        (2, 0.8, 0.0, 1),  # a busy process that started 1.6 minutes ago
        (2, 5.3, 0.0, 1),  # a crowded machine: never fewer than 1
        (2, 1.0, 0.9, 2),  # the load is mostly this process's own (an earlier sweep job)
        (8, 3.0, 0.0, 5),
        (64, 30.0, 0.0, 8),  # a busy host with cores to spare: the affinity decides
    ],
)
def test_cores_other_processes_keep_busy_are_not_taken(machine, cores, load, own, expected):
    machine.update(cores=cores, load=load, own=own)
    choice = placement.choose_threads(None)
    assert choice.n == expected
    free = max(0, math.floor(cores - (load - own) + placement.IDLE_SLACK))
    assert f"{free} of {cores} free (load average {load:.2f}, {own:.2f} of it" in choice.reason


def test_without_a_load_average_the_allowed_cpus_decide(machine):
    machine["load"] = None
    assert placement.choose_threads(None) == placement.Threads(8, "8 CPUs allowed (CPU affinity)")


def test_slurm_cpus_reads_what_slurm_granted(monkeypatch):
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "4")
    assert placement.slurm_cpus() == 4
    for unusable in ("", "0", "two"):
        monkeypatch.setenv("SLURM_CPUS_PER_TASK", unusable)
        assert placement.slurm_cpus() is None
    monkeypatch.delenv("SLURM_CPUS_PER_TASK")
    assert placement.slurm_cpus() is None


def test_cgroup_v2_quota_is_the_tightest_on_the_way_up(tmp_path):
    own = tmp_path / "cgroup"
    own.write_text("0::/user.slice/job_7\n")
    root = tmp_path / "fs"
    (root / "user.slice" / "job_7").mkdir(parents=True)
    assert placement.cgroup_cpus(root, own) is None  # no cpu.max anywhere: no quota
    (root / "user.slice" / "job_7" / "cpu.max").write_text("max 100000\n")
    assert placement.cgroup_cpus(root, own) is None  # "max": no quota
    (root / "user.slice" / "cpu.max").write_text("250000 100000\n")  # 2.5 CPUs, a level up
    assert placement.cgroup_cpus(root, own) == 3  # rounded up
    (root / "user.slice" / "job_7" / "cpu.max").write_text("50000 100000\n")
    assert placement.cgroup_cpus(root, own) == 1  # half a CPU still runs one thread


def test_cgroup_v1_quota_reads_the_cpu_controller(tmp_path):
    own = tmp_path / "cgroup"
    own.write_text("4:memory:/slurm/job_3\n2:cpu,cpuacct:/slurm/job_3\n0::/\n")
    folder = tmp_path / "fs" / "cpu,cpuacct" / "slurm" / "job_3"
    folder.mkdir(parents=True)
    (folder / "cpu.cfs_quota_us").write_text("-1\n")
    (folder / "cpu.cfs_period_us").write_text("100000\n")
    assert placement.cgroup_cpus(tmp_path / "fs", own) is None  # -1: no quota
    (folder / "cpu.cfs_quota_us").write_text("400000\n")
    assert placement.cgroup_cpus(tmp_path / "fs", own) == 4
    assert placement.cgroup_cpus(tmp_path / "fs", tmp_path / "missing") is None


def test_own_load_is_a_steady_rate_built_up_as_the_load_average_builds(monkeypatch):
    monkeypatch.setattr(placement, "process_age_s", lambda: 60.0)
    monkeypatch.setattr(placement.time, "process_time", lambda: 90.0)  # 1.5 cores for a minute
    assert placement.own_load() == pytest.approx(1.5 * (1 - math.exp(-1)))
    monkeypatch.setattr(placement, "process_age_s", lambda: None)
    assert placement.own_load() == 0.0


def test_process_age_reads_proc(tmp_path, monkeypatch):
    stat, uptime = tmp_path / "stat", tmp_path / "uptime"
    ticks = os.sysconf("SC_CLK_TCK")
    fields = (
        ["S"] + ["0"] * 18 + [str(25 * ticks)] + ["0"] * 10
    )  # field 22: started 25 s after boot
    stat.write_text(f"123 (a (strange) name) {' '.join(fields)}\n")
    uptime.write_text("100.50 180.00\n")
    assert placement.process_age_s(stat, uptime) == pytest.approx(75.5)
    assert placement.process_age_s(tmp_path / "none", uptime) is None
    assert 0 < placement.process_age_s() < 3600 * 24 * 365  # this process, really


def test_threads_in_use_names_the_choice_while_torch_keeps_it():
    import torch

    choice = placement.apply_threads(placement.Threads(1, "because"))
    assert torch.get_num_threads() == 1 and placement.threads_in_use() == choice
    torch.set_num_threads(2)
    assert placement.threads_in_use() == placement.Threads(2, "set outside dlrun")
