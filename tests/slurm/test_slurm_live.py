"""hydra/launcher=slurm against a live SLURM (tests/slurm/cluster.sh), end to end.

Marked `slurm`: deselected by default (pyproject's addopts); `.ci/run` brings a
three-node cluster up (`cluster.sh up --nodes 3`) and runs `pytest -m slurm
tests/slurm`. Without a reachable cluster they skip and say why.

Each test runs `dlrun train -m hydra/launcher=slurm ...` as a user would and
checks the run folders, their statuses and sweep.csv. The cluster's short
timers (cluster.sh) keep them to a few minutes: SLURM looks at time limits
every 30 s, so the time-limit test takes one or two of those cycles.
"""

from __future__ import annotations

import subprocess

import pytest
from live_slurm import (  # noqa: F401 (live_cluster: the module's autouse fixture)
    NO_EARLY_STOP,
    WATCHFUL,
    array_once_both_trained,
    epochs,
    index,
    live_cluster,
    start,
    submissions,
    summary,
    sweep,
    task_log,
    trained,
)

pytestmark = pytest.mark.slurm


def test_a_four_job_sweep_runs_as_shipped(tmp_path):
    out = sweep(
        tmp_path, "optimizer=sgd,adam", "seed=0,1", "trainer.epochs=2", "hydra.sweep.dir=sw"
    )
    assert out.returncode == 0, out.stderr
    folder = tmp_path / "sw"
    rows = index(folder)
    assert sorted(rows) == [0, 1, 2, 3]
    assert {(r["optimizer"], r["seed"]) for r in rows.values()} == {
        (o, s) for o in ("sgd", "adam") for s in ("0", "1")
    }
    for row in rows.values():
        assert row["status"] == "completed" and summary(folder, row)["status"] == "completed"
        assert epochs(folder, row) == [1, 2]
    [(ident, numbers)] = submissions(out.stdout)
    assert numbers == [0, 1, 2, 3]
    # sized from the jobs: one CPU (trainer.threads unset), 4 GB, no GPU on a CPU-only node
    script = (folder / ".submitit" / ident / f"{ident}_submission.sh").read_text()
    assert "#SBATCH --cpus-per-task=1\n" in script and "#SBATCH --mem=4GB\n" in script
    assert "gpu" not in script and "--partition" not in script and "--array=0-3%4" in script
    for job in range(4):  # each task's log says which of the sweep's jobs it trains
        log = task_log(folder, f"{ident}_{job}")
        assert f"dlrun: job #{job} ({job + 1} of 4) in SLURM task {ident}_{job}\n" in log


def test_a_failing_job_fails_alone_and_a_rerun_submits_only_it(tmp_path):
    args = ("optimizer.lr=0.01,-1", "trainer.epochs=2", "hydra.sweep.dir=sw", *WATCHFUL)
    first = sweep(tmp_path, *args)
    assert first.returncode == 1, first.stderr
    folder = tmp_path / "sw"
    rows = index(folder)
    assert rows[0]["status"] == "completed"
    assert rows[1]["status"] == "failed" and "lr" in rows[1]["error"]
    done = (folder / rows[0]["run_dir"] / "summary.json").stat().st_mtime_ns

    again = sweep(tmp_path, *args)
    assert again.returncode == 1, again.stderr
    assert "job 0 skipped: already completed" in again.stdout
    [(ident, numbers)] = submissions(again.stdout)
    assert numbers == [1]  # the finished job got no SLURM task
    assert not (folder / ".submitit" / f"{ident}_1").exists()  # an array of one
    assert (folder / rows[0]["run_dir"] / "summary.json").stat().st_mtime_ns == done
    assert index(folder)[1]["status"] == "failed" and index(folder)[0]["status"] == "completed"


def test_preemption_continues_a_job_and_scancel_ends_one_cancelled(tmp_path):
    """Job 0 is requeued by SLURM (`scontrol requeue`: preemption's signals) and continues
    from last.pt; job 1 is scancel'led: the driver records it and exits, never hangs."""
    driver = start(tmp_path, "trainer.epochs=150,2000", NO_EARLY_STOP,
                   "hydra.sweep.dir=sw", *WATCHFUL)  # fmt: skip
    folder = tmp_path / "sw"
    ident = array_once_both_trained(driver, folder)
    subprocess.run(["scontrol", "requeue", f"{ident}_0"], check=True)
    subprocess.run(["scancel", f"{ident}_1"], check=True)
    stdout, stderr = driver.communicate(timeout=240)  # bounded: never a hang
    assert driver.returncode == 1, stderr
    rows = index(folder)
    assert rows[0]["status"] == "completed"
    done = summary(folder, rows[0])
    assert epochs(folder, rows[0]) == list(range(1, 151))  # one continuous run
    assert len(done["resumes"]) == 1 and done["resumes"][0]["from_epoch"] > 0
    assert rows[1]["status"] == "cancelled" and summary(folder, rows[1])["status"] == "cancelled"
    lost = [line for line in stderr.splitlines() if line.startswith("dlrun: job 1 cancelled")]
    assert len(lost) == 1 and f"{ident}_1" in lost[0], stderr
    assert "UncompletedJobError" not in stderr and "Traceback" not in stderr


def test_time_limits_requeue_from_last_pt_then_end_as_timeout(tmp_path):
    """Two sweeps at once, each one job under a one-minute limit with SLURM's warning 5 s before:
    one may be requeued up to 6 times and finishes; the other may not and ends `timeout`."""
    limit = ["hydra.launcher.timeout_min=1", "hydra.launcher.signal_delay_s=5", *WATCHFUL]
    limit += [NO_EARLY_STOP]
    requeued = start(tmp_path, "seed=0", "hydra.launcher.max_num_timeout=6", "hydra.sweep.dir=a",
                     *limit, "trainer.epochs=600")  # fmt: skip
    # (2000 epochs: it ends at SLURM's first warning, however fast the machine)
    timeout = start(tmp_path, "seed=1", "hydra.launcher.max_num_timeout=0", "hydra.sweep.dir=b",
                    *limit, "trainer.epochs=2000")  # fmt: skip
    out_b, err_b = timeout.communicate(timeout=300)
    # 600 epochs: past the first minute even with one thread on a quiet machine (300 at
    # about 0.18 s an epoch sometimes finished inside it), and within the 6 requeues allowed
    out_a, err_a = requeued.communicate(timeout=600)

    assert requeued.returncode == 0, err_a
    folder = tmp_path / "a"
    [row] = index(folder).values()
    done = summary(folder, row)
    assert row["status"] == done["status"] == "completed" and done["epochs_run"] == 600
    assert epochs(folder, row) == list(range(1, 601))  # one continuous run
    assert len(done["resumes"]) >= 1  # it was requeued and continued from last.pt
    log = "".join(p.read_text() for p in (folder / ".submitit").rglob("*_log.out"))
    assert "Requeued job" in log and "resuming" in log

    assert timeout.returncode == 1, err_b
    folder = tmp_path / "b"
    [row] = index(folder).values()
    ended = summary(folder, row)
    assert row["status"] == ended["status"] == "timeout"
    assert "max_num_timeout=0" in ended["error"]
    assert (
        0 < ended["epochs_run"] < 2000
        and (folder / row["run_dir"] / "checkpoints/last.pt").exists()
    )
    assert epochs(folder, row) == list(range(1, ended["epochs_run"] + 1))
