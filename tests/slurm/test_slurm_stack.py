"""hydra.launcher.stack on a live three-node SLURM (tests/slurm/cluster.sh up --nodes 3).

A stack is one SLURM task training the jobs the batched launcher would group;
its replicas must end exactly as their solo runs do, and meet SLURM's time
limits, scancel, re-runs and lost nodes as solo jobs do.
"""

from __future__ import annotations

import subprocess
import time

import pytest
from live_slurm import (  # noqa: F401 (live_cluster: the module's autouse fixture)
    NO_EARLY_STOP,
    WATCHFUL,
    array_once_both_trained,
    assert_same_rows,
    assert_same_run,
    epochs,
    index,
    live_cluster,
    solo,
    stacks,
    start,
    summary,
    sweep,
    task_log,
    trained,
)

pytestmark = pytest.mark.slurm

SMALL = ["trainer.epochs=3", "data.n_samples=1000", "model.width=32", "trainer.threads=1"]
# the default MLP drops out: hydra.launcher.exact_dropout (true by default) draws its masks
# as the solo runs do; with false the folders differ, and the equality test fails
STACK = ["hydra.launcher.stack=2"]


def test_a_stacked_sweep_writes_the_solo_runs_folders_and_index(tmp_path):
    args = ("model.batch_norm=false,true", "seed=0,1", *SMALL)
    stacked = sweep(tmp_path, *args, *STACK, "hydra.sweep.dir=stacked", *WATCHFUL)
    assert stacked.returncode == 0, stacked.stderr
    reference = solo(tmp_path, *args, "hydra.sweep.dir=solo")
    assert reference.returncode == 0, reference.stderr
    mine, theirs = tmp_path / "stacked", tmp_path / "solo"

    tasks = stacks(stacked.stdout)
    assert sorted(tasks.values()) == [[0, 1], [2], [3]]  # batch_norm=true: one task each
    for job in (2, 3):
        assert f"dlrun: job {job} runs alone: model.batch_norm=true" in stacked.stdout
    rows = index(mine)
    assert_same_rows(rows, index(theirs))
    for row in rows.values():
        assert row["status"] == "completed"
        assert_same_run(mine / row["run_dir"], theirs / row["run_dir"])
    [pair] = [task for task, jobs in tasks.items() if jobs == [0, 1]]
    log = task_log(mine, pair)
    assert f"dlrun: job #0 (1 of 4) in SLURM task {pair}, one of a stack of 2" in log
    assert f"dlrun: job #1 (2 of 4) in SLURM task {pair}, one of a stack of 2" in log
    assert "2 jobs as one stack (job 0, job 1)" in log


def test_a_stacked_sweep_meets_its_time_limit_and_every_replica_continues(tmp_path):
    """Two replicas in one task under a one-minute limit, SLURM's warning 5 s before it: the
    stack stops at an epoch boundary, the task is requeued, and the two train on as one stack,
    each from its own last.pt."""
    limit = ["hydra.launcher.timeout_min=1", "hydra.launcher.signal_delay_s=5"]
    limit += ["hydra.launcher.max_num_timeout=8", NO_EARLY_STOP, "trainer.threads=1"]
    # 300 epochs of the default job in a stack of two (0.3 s an epoch on a quiet core, 0.7 s
    # at a load of 8): past SLURM's first warning (25-55 s after the start) on any machine
    # this runs on, and done within the requeues allowed
    out = sweep(tmp_path, "seed=0,1", "trainer.epochs=300", *STACK, *limit, *WATCHFUL,
                "hydra.sweep.dir=sw", timeout=900)  # fmt: skip
    assert out.returncode == 0, out.stderr
    folder = tmp_path / "sw"
    [task] = stacks(out.stdout)
    rows = index(folder)
    for row in rows.values():
        done = summary(folder, row)
        assert row["status"] == done["status"] == "completed" and done["epochs_run"] == 300
        assert epochs(folder, row) == list(range(1, 301))  # one continuous run
        assert len(done["resumes"]) >= 1 and done["resumes"][0]["from_epoch"] > 0
    resumed = [r["from_epoch"] for r in summary(folder, rows[0])["resumes"]]
    assert [r["from_epoch"] for r in summary(folder, rows[1])["resumes"]] == resumed
    log = task_log(folder, task)
    assert "Requeued job" in log and "runs alone" not in log
    assert "2 jobs as one stack (job 0, job 1)" in log
    assert f"resumed from epoch {resumed[0]} (each its own last.pt)" in log
    for job in (0, 1):
        assert f"dlrun: job {job} stopped after epoch {resumed[0]} for its time limit" in log


def node_of(task: str) -> str:
    out = subprocess.run(["squeue", "-h", "-j", task, "-o", "%N"], capture_output=True, text=True)
    return out.stdout.strip()


def test_a_node_set_down_mid_sweep_requeues_its_stack_and_nothing_is_lost(tmp_path):
    """Two stacks on two nodes; one node goes down (ReturnToService=1: it stays down), SLURM
    requeues its task on the third node, and its replicas continue from their last.pt."""
    nodes = subprocess.run(["sinfo", "-h", "-N", "-o", "%N"], capture_output=True, text=True)
    if len(set(nodes.stdout.split())) < 3:
        pytest.skip("needs three nodes: tests/slurm/cluster.sh up --nodes 3")
    driver = start(tmp_path, "seed=0,1,2,3", "trainer.epochs=150", NO_EARLY_STOP, *STACK,
                   "trainer.threads=1", "hydra.sweep.dir=sw", *WATCHFUL)  # fmt: skip
    folder = tmp_path / "sw"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and driver.poll() is None:
        if all(trained(folder, job) > 3 for job in range(4)):
            break
        time.sleep(1)
    ident = sorted(p.name for p in (folder / ".submitit").iterdir() if "_" not in p.name)[-1]
    node = node_of(f"{ident}_1")
    assert node.startswith("n"), node
    subprocess.run(["scontrol", "update", f"nodename={node}", "state=down", "reason=dlrun test"],
                   check=True)  # fmt: skip
    try:
        stdout, stderr = driver.communicate(timeout=300)
    finally:
        subprocess.run(["scontrol", "update", f"nodename={node}", "state=resume"], check=False)
    assert driver.returncode == 0, stderr
    rows = index(folder)
    assert stacks(stdout) == {f"{ident}_0": [0, 1], f"{ident}_1": [2, 3]}
    for job, row in rows.items():
        done = summary(folder, row)
        assert row["status"] == done["status"] == "completed", row
        assert epochs(folder, row) == list(range(1, 151))  # one continuous run
        if job in (2, 3):  # the stack on the lost node
            assert len(done["resumes"]) == 1 and done["resumes"][0]["from_epoch"] > 0


def test_an_interrupted_stacked_sweep_run_again_continues_from_last_pt(tmp_path):
    """scancel ends a stacked sweep part-way (each replica `cancelled`, last.pt saved); the same
    command again submits only the unfinished jobs, and each continues where it stopped."""
    args = ("seed=0,1", "trainer.epochs=60", NO_EARLY_STOP, *STACK, "trainer.threads=1",
            "hydra.sweep.dir=sw", *WATCHFUL)  # fmt: skip
    driver = start(tmp_path, *args)
    folder = tmp_path / "sw"
    ident = array_once_both_trained(driver, folder)
    subprocess.run(["scancel", ident], check=True)
    stdout, stderr = driver.communicate(timeout=240)
    assert driver.returncode == 1, stderr
    rows = index(folder)
    stopped = {job: summary(folder, row)["epochs_run"] for job, row in rows.items()}
    for job, row in rows.items():
        assert row["status"] == "cancelled", row
        assert 0 < stopped[job] < 60
        assert f"dlrun: job {job} cancelled: SLURM task {ident}" in stderr  # an array of one

    again = sweep(tmp_path, *args)
    assert again.returncode == 0, again.stderr
    [(task, jobs)] = stacks(again.stdout).items()  # one stack again, each from its last.pt
    assert jobs == [0, 1] and "runs alone" not in again.stdout
    assert len(set(stopped.values())) == 1  # SIGTERM stopped the stack at one epoch boundary
    assert f"resumed from epoch {stopped[0]} (each its own last.pt)" in task_log(folder, task)
    for job, row in index(folder).items():
        done = summary(folder, row)
        assert row["status"] == done["status"] == "completed"
        assert epochs(folder, row) == list(range(1, 61))
        assert [r["from_epoch"] for r in done["resumes"]] == [stopped[job]]
