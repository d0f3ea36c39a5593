"""A parallel sweep's workers stop with their driver, saved and resumable (dlrun/sweeps/workers.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dlrun.errors import Interrupted
from dlrun.folders import runs
from dlrun.run import signals
from dlrun.run.runner import run
from dlrun.sweeps import workers


def test_a_worker_reads_its_drivers_stop_and_notices_the_driver_gone(tmp_path, monkeypatch):
    (tmp_path / runs.SWEEP_STATE).mkdir()
    monkeypatch.delenv(workers.DRIVER, raising=False)
    assert workers.stop_check(tmp_path) is None  # not in a worker: run() handles signals
    monkeypatch.setenv(workers.DRIVER, str(os.getpid()))
    assert workers.stop_check(tmp_path) is None  # the driver itself
    monkeypatch.setenv(workers.DRIVER, str(os.getppid()))  # this process as the driver's worker
    check = workers.stop_check(tmp_path)
    assert check() is None
    (tmp_path / runs.SWEEP_STATE / workers.STOP).write_text("SIGINT\n")
    assert check() == "SIGINT"
    (tmp_path / runs.SWEEP_STATE / workers.STOP).write_text("rm -rf /\n")  # not a signal name
    assert check() == "SIGTERM"
    monkeypatch.setenv(workers.DRIVER, str(os.getppid() + 100_000))  # a parent that is not ours
    assert workers.stop_check(tmp_path)() == "SIGHUP"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the parents' parents in /proc")
def test_a_submitit_task_sees_its_driver_through_its_controller(tmp_path):
    # submitit_local: driver -> controller -> task; the task's parent is never the driver
    (tmp_path / runs.SWEEP_STATE).mkdir()
    code = (
        "import os, sys; from pathlib import Path; from dlrun.sweeps import workers; "
        "os.environ[workers.DRIVER] = sys.argv[1]; "
        "print(workers.stop_check(Path(sys.argv[2]))())"
    )
    controller = [sys.executable, "-c", "import subprocess, sys; subprocess.run(sys.argv[1:])"]
    task = [sys.executable, "-c", code]

    def ask(driver: int) -> str:
        out = subprocess.run([*controller, *task, str(driver), str(tmp_path)], capture_output=True)
        return out.stdout.decode().strip()

    assert ask(os.getpid()) == "None"  # this process is the task's grandparent
    assert ask(os.getpid() + 100_000) == "SIGHUP"  # an ancestor it does not have


def test_a_stop_asked_by_the_sweep_ends_the_run_at_an_epoch_boundary(make_cfg, tmp_path):
    def check():  # the driver's stop, seen once the second epoch is logged
        metrics = tmp_path / runs.METRICS
        return (
            "SIGTERM" if metrics.is_file() and len(metrics.read_text().splitlines()) > 2 else None
        )

    with signals.watching(check), pytest.raises(Interrupted) as e:
        run(make_cfg("trainer.epochs=5", "trainer.checkpoint_every_s=0"), tmp_path)
    assert e.value.exit_code == 128 + signal.SIGTERM
    summary = runs.read_summary(tmp_path)
    assert summary["status"] == runs.INTERRUPTED and summary["signal"] == "SIGTERM"
    assert summary["epochs_run"] == 2 and summary["checkpoint_epoch"] == 2
    assert signals.requested() is None  # nothing left over for the next job


def descendants(pid: int) -> list[int]:
    """Every process under `pid`: its children, theirs (a submitit controller's task)..."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            pass
    found, frontier = [], [pid]
    while frontier:
        below = [child for child, parent in parents.items() if parent in frontier]
        found, frontier = found + below, below
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


LAUNCHERS = {  # the launchers whose jobs run in other processes on this machine
    "parallel": ["hydra/launcher=parallel", "hydra.launcher.n_jobs=2"],  # joblib, 2 at a time
    "submitit_local": ["hydra/launcher=submitit_local"],  # a controller and a task per job
}


# slow: a sweep started, stopped and run again (about 40 s each)
@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the workers in /proc")
@pytest.mark.parametrize("launcher", list(LAUNCHERS))
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "kill-9"])
def test_a_sweeps_driver_stopped_leaves_no_worker_and_loses_no_epoch(tmp_path, signum, launcher):
    # reproduction 7 of issue 20: SIGTERM killed the driver at once; kill -9 left its
    # workers training unsupervised (joblib, then submitit_local: its tasks' parent is a
    # controller process)
    sweep = tmp_path / "sweep"
    args = ["train", "-m", "seed=0,1,2", *LAUNCHERS[launcher]]
    args += ["data=moons", "data.n_samples=400", "trainer.epochs=400", "trainer.progress=false"]
    args += ["trainer.early_stopping.patience=null", "trainer.checkpoint_every_s=0"]
    args += ["device=cpu", f"hydra.sweep.dir={sweep}"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    driver = subprocess.Popen(
        [sys.executable, "-m", "dlrun", *args], cwd=tmp_path, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    first = [sweep / "0_seed=0", sweep / "1_seed=1"]  # the jobs running at once
    first += [sweep / "2_seed=2"] if launcher == "submitit_local" else []
    while not all(runs.last_checkpoint(f).is_file() for f in first):
        assert driver.poll() is None, driver.stdout.read()
        time.sleep(0.05)
    children = descendants(driver.pid)
    driver.send_signal(signum)
    out = driver.communicate(timeout=120)[0]
    deadline = time.time() + 60
    while any(alive(pid) for pid in children) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(alive(pid) for pid in children), "workers outlived their driver"
    if signum == signal.SIGTERM:
        assert driver.returncode == 143, out
        # parallel: job 2 waits for a free worker, and never starts (not "interrupted")
        counted = "3 interrupted of 3" if len(first) == 3 else "2 interrupted, 1 not started of 3"
        assert f"SIGTERM: the sweep stopped; {counted} jobs" in out.strip().splitlines()[-1]
    for folder in first:
        summary = runs.read_summary(folder)
        assert summary["status"] == runs.INTERRUPTED, summary
        assert summary["signal"] == ("SIGTERM" if signum == signal.SIGTERM else "SIGHUP")
        assert summary["checkpoint_epoch"] == summary["epochs_run"] >= 1
    stopped = {f: runs.read_summary(f)["epochs_run"] for f in first}

    again = subprocess.run(
        [sys.executable, "-m", "dlrun", *args], cwd=tmp_path, env=env, text=True,
        capture_output=True, timeout=300,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-2000:]
    for folder in first:
        resumed = runs.read_summary(folder)
        assert resumed["status"] == runs.COMPLETED and resumed["epochs_run"] == 400
        assert [r["from_epoch"] for r in resumed["resumes"]] == [stopped[folder]]
    fresh = runs.read_summary(sweep / "2_seed=2")  # trained now, from its first epoch
    assert fresh["status"] == runs.COMPLETED and fresh["epochs_run"] == 400
    assert "resumes" in fresh if len(first) == 3 else "resumes" not in fresh
