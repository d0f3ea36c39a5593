"""Helpers of the live SLURM tests (tests/slurm/): run `dlrun train -m hydra/launcher=slurm`
as a user would, and read back the sweep folder, its index and its run folders."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def cluster_missing() -> str | None:
    """Why the live tests cannot run here, or None."""
    if shutil.which("sbatch") is None:
        return "sbatch is not on the PATH (tests/slurm/cluster.sh up installs SLURM)"
    conf = os.environ.get("SLURM_CONF")
    if not conf:
        return 'SLURM_CONF is unset: eval "$(tests/slurm/cluster.sh env)"'
    try:
        out = subprocess.run(["sinfo", "-h"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer in 20 s"
    if out.returncode != 0 or not out.stdout.strip():
        return f"the cluster of SLURM_CONF={conf} does not answer (tests/slurm/cluster.sh up)"
    return None


@pytest.fixture(scope="module", autouse=True)
def live_cluster():
    reason = cluster_missing()
    if reason:
        pytest.skip(reason)


SLURM = ["hydra/launcher=slurm"]
# the driver looks at squeue every second and gives a vanished job 10 s (defaults: 10 s, 45 s)
WATCHFUL = ["hydra.launcher.poll_s=1", "hydra.launcher.lost_after_s=10"]
QUICK = ["device=cpu", "trainer.progress=false"]
# the default job takes ~0.2 s an epoch on one core here: a signal stops it at once; a job
# meant to meet SLURM's first warning under a one-minute limit trains 600 epochs or more
NO_EARLY_STOP = "trainer.early_stopping.patience=null"


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "dlrun", "train", "-m", *SLURM, *QUICK, *args]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONWARNINGS": "ignore"}


def sweep(cwd: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        command(*args), cwd=cwd, capture_output=True, text=True, env=env(), timeout=timeout
    )


def start(cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        command(*args), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env(),
    )  # fmt: skip


def index(folder: Path) -> dict[int, dict[str, str]]:
    with open(folder / "sweep.csv", newline="") as f:
        return {int(row["job"]): row for row in csv.DictReader(f)}


def summary(folder: Path, row: dict[str, str]) -> dict:
    return json.loads((folder / row["run_dir"] / "summary.json").read_text())


def epochs(folder: Path, row: dict[str, str]) -> list[int]:
    with open(folder / row["run_dir"] / "metrics.csv", newline="") as f:
        return [int(r["epoch"]) for r in csv.DictReader(f)]


def submissions(out: str) -> list[tuple[str, list[int]]]:
    """(SLURM job id, the sweep's job numbers in it) for each array the driver submitted."""
    found = re.findall(r"dlrun: SLURM job (\d+): jobs ([\d, ]+) \(", out)
    return [(ident, [int(n) for n in numbers.split(",")]) for ident, numbers in found]


def trained(folder: Path, job: int) -> int:
    found = list(folder.glob(f"{job}_*/metrics.csv"))
    return len(found[0].read_text().splitlines()) - 1 if found else 0


def array_once_both_trained(driver: subprocess.Popen, folder: Path, epochs: int = 3) -> str:
    """Wait (at most 2 minutes) until jobs 0 and 1 trained `epochs` epochs, then the id of
    the sweep's newest SLURM array, as the driver submitted it (.submitit/<id>)."""
    import time

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and driver.poll() is None:
        if trained(folder, 0) > epochs and trained(folder, 1) > epochs:
            break
        time.sleep(1)
    return sorted(p.name for p in (folder / ".submitit").iterdir() if "_" not in p.name)[-1]


def solo(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """The same sweep through Hydra's basic launcher on this machine: the reference."""
    command = [sys.executable, "-m", "dlrun", "train", "-m", *QUICK, *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env(), timeout=300)


def stacks(out: str) -> dict[str, list[int]]:
    """{SLURM task id: the sweep's job numbers it trains} from a stacked sweep's driver."""
    found = re.findall(r"^dlrun: SLURM task (\d+(?:_\d+)?): jobs ([\d, ]+)", out, re.MULTILINE)
    return {task: [int(n) for n in numbers.split(",")] for task, numbers in found}


def task_log(folder: Path, task: str) -> str:
    return "".join(p.read_text() for p in (folder / ".submitit" / task).glob("*_log.out"))


def files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def assert_same_run(mine: Path, theirs: Path) -> None:
    """Two run folders of one job: the same files, config, curves and summary, number by number.

    Not compared: times, the folder's own path, and Hydra's record of the launcher
    and the SLURM job id (.hydra/hydra.yaml).
    """
    from same_folders import TIMES, assert_same_csv

    assert files(mine) == files(theirs)
    for text in ("config.yaml", ".hydra/config.yaml", ".hydra/overrides.yaml"):
        assert (mine / text).read_text() == (theirs / text).read_text(), text
    assert_same_csv(mine / "metrics.csv", theirs / "metrics.csv")
    assert_same_csv(mine / "layers.csv", theirs / "layers.csv")
    a = json.loads((mine / "summary.json").read_text())
    b = json.loads((theirs / "summary.json").read_text())
    assert list(a) == list(b)
    for key in b.keys() - TIMES - {"git_commit"}:
        value = pytest.approx(b[key], rel=1e-5) if isinstance(b[key], float) else b[key]
        assert a[key] == value, key


def assert_same_rows(mine: dict[int, dict[str, str]], theirs: dict[int, dict[str, str]]) -> None:
    """Two sweep.csv files: the same rows, number by number (times and folders apart)."""
    from same_folders import TIMES

    assert sorted(mine) == sorted(theirs)
    for job, row in mine.items():
        assert list(row) == list(theirs[job])
        for key in row.keys() - TIMES:
            try:
                assert float(row[key]) == pytest.approx(float(theirs[job][key]), rel=1e-5), key
            except ValueError:
                assert row[key] == theirs[job][key], key
