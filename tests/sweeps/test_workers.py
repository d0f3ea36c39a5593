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


def own_children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            pass
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


# slow: a joblib sweep started, stopped and run again (about 40 s)
@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the workers in /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "kill-9"])
def test_a_parallel_sweeps_driver_stopped_leaves_no_worker_and_loses_no_epoch(tmp_path, signum):
    # reproduction 7 of issue 20: SIGTERM killed the driver at once; kill -9 left its
    # workers training unsupervised
    sweep = tmp_path / "sweep"
    args = ["train", "-m", "seed=0,1,2", "hydra/launcher=parallel", "hydra.launcher.n_jobs=2"]
    args += ["data=moons", "data.n_samples=400", "trainer.epochs=400", "trainer.progress=false"]
    args += ["trainer.early_stopping.patience=null", "trainer.checkpoint_every_s=0"]
    args += ["device=cpu", f"hydra.sweep.dir={sweep}"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    driver = subprocess.Popen(
        [sys.executable, "-m", "dlrun", *args], cwd=tmp_path, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    first = [sweep / "0_seed=0", sweep / "1_seed=1"]
    while not all(runs.last_checkpoint(f).is_file() for f in first):
        assert driver.poll() is None, driver.stdout.read()
        time.sleep(0.05)
    children = own_children(driver.pid)
    driver.send_signal(signum)
    out = driver.communicate(timeout=120)[0]
    deadline = time.time() + 60
    while any(alive(pid) for pid in children) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(alive(pid) for pid in children), "workers outlived their driver"
    if signum == signal.SIGTERM:
        assert driver.returncode == 143, out
        assert "SIGTERM: the sweep stopped;" in out.strip().splitlines()[-1]
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
