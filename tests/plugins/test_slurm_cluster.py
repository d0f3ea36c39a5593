"""hydra/launcher=slurm's rules without a cluster: sizing, the pre-check, lost and pending jobs.

Command output below is what SLURM 22.05 printed on the test cluster
(tests/slurm/cluster.sh) or, for GPU nodes, sinfo's documented format.
"""

from __future__ import annotations

import os

import pytest

from hydra_plugins.dlrun_slurm import _cluster
from hydra_plugins.dlrun_slurm._cluster import Request, Watch, minutes, parse_nodes, refusal, size

# sinfo -h -N -o '%N|%P|%c|%m|%G|%l'
CPU_NODE = "vm|debug*|2|22644|(null)|infinite\n"
MIXED = (
    "c1|cpu*|32|128000|(null)|2-00:00:00\n"
    "c2|cpu*|64|256000|(null)|2-00:00:00\n"
    "g1|gpu|16|64000|gpu:a100:4(S:0-1)|12:00:00\n"
    "g2|gpu|8|512000|gpu:2,shard:8|12:00:00\n"
)


def launcher(**keys):
    return {"cpus_per_task": None, "gpus_per_node": None, "mem_gb": 4, "timeout_min": 120,
            "partition": None, "nodes_have_gpus": False, **keys}  # fmt: skip


@pytest.mark.parametrize(
    "keys, device, threads, cpus, gpus",
    [
        ({}, "cpu", None, _cluster.DEFAULT_CPUS, 0),
        ({}, "auto", 6, 6, 0),  # trainer.threads sizes the CPUs; auto on unknown nodes: no GPU
        ({"nodes_have_gpus": True}, "auto", None, 1, 1),
        ({}, "cuda", None, 1, 1),
        ({}, "cuda:1", None, 1, 1),
        ({"cpus_per_task": 3, "gpus_per_node": 0}, "cuda", 8, 3, 0),  # typed values win
    ],
)
def test_a_job_asks_for_what_it_will_use(keys, device, threads, cpus, gpus):
    request = size(launcher(**keys), device, threads)
    assert (request.cpus, request.gpus, request.mem_gb, request.minutes) == (cpus, gpus, 4, 120)


def test_memory_per_cpu_replaces_the_default_memory_per_job():
    assert size(launcher(mem_per_cpu="2G"), "cpu", None).mem_gb is None
    assert size(launcher(mem_gb=8), "cpu", None).mem_gb == 8


def test_the_sweep_asks_for_its_largest_job_and_names_where_that_came_from():
    jobs = [size(launcher(), "cpu", 2), size(launcher(), "cuda", None), size(launcher(), "cpu", 1)]
    top = _cluster.largest(jobs)
    assert (top.cpus, top.gpus) == (2, 1)
    assert top.why["cpus"] == "trainer.threads=2" and top.why["gpus"] == "device=cuda"


def test_sinfo_lines_become_nodes():
    nodes = parse_nodes(MIXED + "garbage line\n")
    assert [(n.name, n.partition, n.default, n.cpus, n.mem_mb, n.gpus) for n in nodes] == [
        ("c1", "cpu", True, 32, 128000, 0),
        ("c2", "cpu", True, 64, 256000, 0),
        ("g1", "gpu", False, 16, 64000, 4),
        ("g2", "gpu", False, 8, 512000, 2),
    ]
    assert nodes[0].max_minutes == 2 * 1440 and nodes[2].max_minutes == 720


@pytest.mark.parametrize(
    "text, expected",
    [("infinite", float("inf")), ("1-00:00:00", 1440), ("2:00:00", 120), ("30:00", 30),
     ("1-12:30:00", 2190), ("45", 45)],
)  # fmt: skip
def test_partition_time_limits_in_minutes(text, expected):
    assert minutes(text) == expected


def request(**keys) -> Request:
    return size(launcher(**keys), "cpu", None)


@pytest.mark.parametrize(
    "nodes, keys, words",
    [
        (CPU_NODE, {"cpus_per_task": 4}, ["hydra.launcher.cpus_per_task=4", "4 CPUs", "offers 2"]),
        (CPU_NODE, {"mem_gb": 100}, ["mem_gb=100", "102400 MB", "offers 22644"]),
        (CPU_NODE, {"gpus_per_node": 1}, ["gpus_per_node=1", "1 GPUs", "offers 0"]),
        (MIXED, {"partition": "gpu", "timeout_min": 1000}, ["timeout_min=1000", "offers 720"]),
        (MIXED, {"partition": "big"}, ["partition=big", "no such partition", "cpu, gpu"]),
        # each alone fits some GPU node, together none: 16 CPUs and 300 GB
        (MIXED, {"partition": "gpu", "cpus_per_task": 16, "mem_gb": 300}, ["together"]),
    ],
)
def test_a_request_no_node_can_grant_is_refused_in_one_line(nodes, keys, words):
    reason = refusal(request(**keys), parse_nodes(nodes))
    assert reason is not None and "\n" not in reason
    for word in words:
        assert word in reason, reason


def test_a_request_some_node_grants_passes_and_the_default_partition_is_the_starred_one():
    assert refusal(request(), parse_nodes(CPU_NODE)) is None
    assert refusal(request(cpus_per_task=64, mem_gb=200), parse_nodes(MIXED)) is None
    # the default partition (cpu) has no GPU even though partition gpu does
    assert "default partition cpu" in refusal(request(gpus_per_node=1), parse_nodes(MIXED))
    assert refusal(request(partition="gpu", gpus_per_node=4), parse_nodes(MIXED)) is None


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_task_is_lost_only_after_the_grace_period_and_a_requeue_is_never_lost():
    clock = Clock()
    watch = Watch(grace_s=10, pending_every_s=60, clock=clock)
    tasks = {"7_0", "7_1", "7_2"}
    states = {"7_0": ("RUNNING", "None"), "7_1": ("CANCELLED", "None"), "7_2": ("REQUEUED", "")}
    assert watch.lost(tasks, states) == {}
    clock.now = 9
    assert watch.lost(tasks, states) == {}
    clock.now = 10
    assert watch.lost(tasks, states) == {"7_1": "CANCELLED"}
    # SLURM forgets it (MinJobAge): still reported by the last state it was seen in
    assert watch.lost({"7_1"}, {}) == {"7_1": "CANCELLED"}
    # the requeued task pends, runs, completes (result pending on a slow file system)...
    for state in ("PENDING", "RUNNING", "COMPLETING", "COMPLETED"):
        clock.now += 5
        assert watch.lost({"7_2"}, {"7_2": (state, "")}) == {}
    clock.now += 10
    assert watch.lost({"7_2"}, {"7_2": ("COMPLETED", "")}) == {"7_2": "COMPLETED"}


def test_a_task_never_seen_in_squeue_is_lost_as_gone():
    clock = Clock()
    watch = Watch(grace_s=5, pending_every_s=60, clock=clock)
    assert watch.lost({"9"}, {}) == {}
    clock.now = 5
    assert watch.lost({"9"}, {}) == {"9": "gone from squeue"}


def test_a_pending_reason_that_never_clears_is_lost_at_once_others_are_printed_at_intervals():
    clock = Clock()
    watch = Watch(grace_s=30, pending_every_s=60, clock=clock)
    states = {"3_0": ("PENDING", "PartitionConfig"), "3_1": ("PENDING", "Resources")}
    assert watch.lost({"3_0", "3_1"}, states) == {
        "3_0": "PENDING (PartitionConfig: never runs as submitted)"
    }
    assert watch.pending({"3_1"}, states) == {}  # pending a moment is normal
    clock.now = 60
    assert watch.pending({"3_1"}, states) == {"3_1": "Resources"}
    clock.now = 90
    assert watch.pending({"3_1"}, states) == {}  # not again before the next interval


@pytest.mark.parametrize(
    "rc, stdout, stderr, expected",
    [
        (0, "7_0|RUNNING|None\n7_1|PENDING|Resources\n", "",
         {"7_0": ("RUNNING", "None"), "7_1": ("PENDING", "Resources")}),
        (1, "", "slurm_load_jobs error: Invalid job id specified", {}),  # forgotten: gone
        (1, "", "slurm_load_jobs error: Unable to contact slurm controller", None),  # ask again
    ],
)  # fmt: skip
def test_squeue_answers_and_silences_are_told_apart(tmp_path, monkeypatch, rc, stdout, stderr,
                                                     expected):  # fmt: skip
    fake = tmp_path / "squeue"
    fake.write_text(f"#!/bin/sh\nprintf '{stdout}'\necho '{stderr}' >&2\nexit {rc}\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert _cluster.queue("7") == expected
