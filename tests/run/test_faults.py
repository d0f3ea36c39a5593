"""Fault injection: kill -9 and SIGTERM at random moments, and a full disk, against `dlrun train`.

After every kill: every epoch up to last.pt's is in metrics.csv and readable,
last.pt loads with weights_only=True, and resuming (again and again) ends
with exactly the metrics of a run that was never interrupted. The campaign of
kills is slow (`pytest -m slow`); one kill -9 runs in the default suite.
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dlrun.folders import runs

ARGS = [
    "data=moons",
    "data.n_samples=1000",
    "model.width=32",
    "trainer.batch_size=32",
    "trainer.epochs=40",
    "trainer.deterministic=true",
    "trainer.early_stopping.patience=null",
    "trainer.checkpoint_every_s=0.3",
    "device=cpu",
    "trainer.progress=false",
    "trainer.threads=1",
]


def start(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "dlrun", "train", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(*args: str, cwd: Path) -> None:
    process = start(*args, cwd=cwd)
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err


def results(folder: Path) -> tuple[dict, list[dict]]:
    summary = json.loads((folder / runs.SUMMARY).read_text())
    keys = ("status", "epochs_run", "steps", "best_epoch", "best_val_loss", "test_loss", "test_acc")
    with open(folder / runs.METRICS, newline="") as f:
        curve = [{k: v for k, v in r.items() if k != "time_s"} for r in csv.DictReader(f)]
    return {key: summary[key] for key in keys}, curve


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> tuple[dict, list[dict]]:
    cwd = tmp_path_factory.mktemp("straight")
    finish(*ARGS, f"hydra.run.dir={cwd / 'run'}", cwd=cwd)
    return results(cwd / "run")


# The default suite's kill: a shorter run, checkpointed every epoch.
SHORT = [*ARGS, "trainer.epochs=12", "data.n_samples=600", "trainer.checkpoint_every_s=0"]


def check_after_kill(folder: Path) -> int | None:
    """What a kill must leave: the epoch last.pt holds (None: none yet), all that came before."""
    if (folder / runs.SUMMARY).exists():  # killed in start-up: not there yet
        assert runs.read_summary(folder) is not None  # written whole, or not at all
    last = runs.last_checkpoint(folder)
    if not last.is_file():
        return None
    epoch = torch.load(last, weights_only=True)["epoch"]
    with open(folder / runs.METRICS, newline="") as f:
        epochs = [int(row["epoch"]) for row in csv.DictReader(f) if None not in row.values()]
    assert epochs[:epoch] == list(range(1, epoch + 1))
    return epoch


def kill_and_resume(folder: Path, cwd: Path, rng: random.Random, signum: int) -> str | None:
    """One start (fresh or resumed) killed at a random moment: "start-up", "training", or
    None when it finished first."""
    fresh = not runs.last_checkpoint(folder).is_file()
    args = [*ARGS, f"hydra.run.dir={folder}"] if fresh else [f"resume={folder}"]
    if fresh and folder.exists():  # killed before its first checkpoint: start over
        import shutil

        shutil.rmtree(folder)
    process = start(*args, cwd=cwd)
    moment = "start-up" if rng.random() < 0.2 else "training"
    if moment == "start-up":  # imports, composition, data: before dlrun handles signals
        time.sleep(rng.uniform(0.1, 1.5))
    else:  # the line printed as the first epoch starts, then up to ~half the run
        while "dlrun: run folder" not in (process.stdout.readline() or "dlrun: run folder"):
            pass
        time.sleep(rng.uniform(0.0, 1.0))
    if process.poll() is not None:
        assert process.returncode == 0, process.stderr.read()
        return None
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    if signum == signal.SIGTERM and process.returncode == 143:  # handled: stopped at a boundary
        summary = runs.read_summary(folder)
        if summary["status"] == runs.COMPLETED:  # the signal came in the last epoch or the test
            assert "SIGTERM: the run had finished; nothing lost" in err
            return None
        assert summary["status"] == runs.INTERRUPTED and summary["signal"] == "SIGTERM"
        assert summary["checkpoint_epoch"] == summary["epochs_run"], err
    else:  # killed outright (kill -9, or SIGTERM before dlrun took over the signal)
        assert process.returncode in (-signum, 128 + signum), err
    check_after_kill(folder)
    return moment


def run_to_the_end(folder: Path, cwd: Path) -> None:
    if runs.last_checkpoint(folder).is_file():
        finish(f"resume={folder}", cwd=cwd)
    else:
        finish(*ARGS, f"hydra.run.dir={folder}", cwd=cwd)
    assert not list(folder.rglob("*.tmp"))  # what a kill mid-write left is cleaned up


def wait_for(condition, process: subprocess.Popen) -> None:
    while not condition():
        assert process.poll() is None, process.communicate()
        time.sleep(0.005)


def epochs_logged(folder: Path) -> int:
    try:
        return len((folder / runs.METRICS).read_text().splitlines()) - 1
    except OSError:
        return 0


def test_sigterm_then_kill_9_then_resume_gives_the_uninterrupted_result(make_cfg, tmp_path):
    from dlrun.run.runner import run

    run(make_cfg(*SHORT, quick=False), tmp_path / "straight")  # in-process: the same numbers
    folder = tmp_path / "run"

    # SIGTERM, as a scheduler sends it: the epoch ends, exit 143, the command to continue
    process = start(*SHORT, f"hydra.run.dir={folder}", cwd=tmp_path)
    wait_for(lambda: epochs_logged(folder) >= 2, process)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    assert err.strip().splitlines()[-1].endswith(f"continue with: dlrun train resume={folder}")
    summary = runs.read_summary(folder)
    assert summary["status"] == runs.INTERRUPTED and summary["signal"] == "SIGTERM"
    stopped = summary["epochs_run"]
    assert summary["checkpoint_epoch"] == stopped == check_after_kill(folder)

    # kill -9 of the resumed run right after its next checkpoint: it never knew
    process = start(f"resume={folder}", cwd=tmp_path)
    wait_for(lambda: epochs_logged(folder) > stopped, process)
    process.kill()
    process.wait()
    assert runs.read_summary(folder)["status"] == runs.RUNNING
    assert check_after_kill(folder) >= stopped

    finish(f"resume={folder}", cwd=tmp_path)
    assert results(folder) == results(tmp_path / "straight")
    assert [r["from_epoch"] for r in runs.read_summary(folder)["resumes"]][0] == stopped


@pytest.mark.slow
def test_a_campaign_of_kills_never_loses_a_saved_epoch(straight, tmp_path):
    rng = random.Random(20261127)
    kills = {signal.SIGTERM: 0, signal.SIGKILL: 0}
    moments = {"start-up": 0, "training": 0}
    chains = 0
    while sum(kills.values()) < 24:
        folder = tmp_path / f"chain{chains}"
        for _ in range(8):  # up to 8 kills of one run, resumed after each
            signum = rng.choice(list(kills))
            moment = kill_and_resume(folder, tmp_path, rng, signum)
            if moment is None:
                break
            kills[signum] += 1
            moments[moment] += 1
        run_to_the_end(folder, tmp_path)
        assert results(folder) == straight, folder
        chains += 1
    print(f"kills: {kills}, {moments}, {chains} runs")
    assert min(kills.values()) >= 8 and moments["training"] >= 12, (kills, moments)


# --- a full disk ----------------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path):
    """A 3 MB tmpfs (root only): a checkpoint of the default model does not fit."""
    yield from mounted(tmp_path / "disk", "3m")


def mounted(mount: Path, size: str):
    """A tmpfs of `size` at `mount` while the test runs (root only, else the test is skipped)."""
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_fails_the_run_in_one_line_and_leaves_no_half_file(
    tiny_disk, monkeypatch, capsys
):
    from dlrun.cli.main import main

    monkeypatch.chdir(tiny_disk)
    # The default 512-wide MLP: its last.pt (4 MB) does not fit; moons builds in no time.
    args = ["data=moons", "data.n_samples=400", "trainer.epochs=3", "device=cpu"]
    assert main(["train", *args, "trainer.progress=false"]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    (folder,) = (tiny_disk / "outputs" / "runs").glob("*/*")
    last = folder / runs.CHECKPOINTS / runs.LAST
    assert line == f"dlrun: error: cannot write {last}: no space left on device"
    summary = runs.read_summary(folder)
    assert summary["status"] == runs.FAILED and summary["error"] == line.removeprefix(
        "dlrun: error: "
    )
    assert not list(tiny_disk.rglob("*.tmp")) and not last.exists()
    with open(folder / runs.METRICS, newline="") as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["1"]  # the epoch it trained

    with open(tiny_disk / "filler", "wb") as f:  # now not even a report fits
        try:
            f.write(b"\0" * 4_000_000)
        except OSError:
            pass
    assert main(["report", "outputs/runs"]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("dlrun: error: cannot write") and "no space left on device" in line


@pytest.fixture
def filling_disk(tmp_path):
    """A 300 KB tmpfs (root only) that the logs of a long run fill."""
    yield from mounted(tmp_path / "disk", "300k")


@pytest.fixture
def half_disk(tmp_path):
    """A 7 MB tmpfs (root only): the default model's last.pt (about 6 MB) fits, best.pt not."""
    yield from mounted(tmp_path / "disk", "7m")


def test_a_disk_with_room_for_last_pt_alone_leaves_the_run_resumable_from_it(
    half_disk, tmp_path, monkeypatch, capsys
):
    import shutil

    from dlrun.cli.main import main
    from dlrun.run.resume import resume_run

    monkeypatch.chdir(half_disk)
    args = ["data=moons", "data.n_samples=400", "trainer.epochs=3", "device=cpu"]
    assert main(["train", *args, "trainer.progress=false"]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    (folder,) = (half_disk / "outputs" / "runs").glob("*/*")
    assert (
        line == f"dlrun: error: cannot write {folder}/checkpoints/best.pt: no space left on device"
    )
    summary = runs.read_summary(folder)
    # the summary says what last.pt holds: before, it said null, nothing to resume from
    assert (summary["status"], summary["checkpoint_epoch"]) == (runs.FAILED, 1)
    saved = torch.load(folder / runs.CHECKPOINTS / runs.LAST, weights_only=True)
    assert saved["epoch"] == 1 and not list(half_disk.rglob("*.tmp"))
    moved = tmp_path / "moved"  # to a disk with room
    shutil.copytree(folder, moved)
    (moved / ".lock").unlink(missing_ok=True)
    resumed = resume_run(moved, {})
    assert (resumed["status"], resumed["epochs_run"]) == (runs.COMPLETED, 3)


@pytest.mark.parametrize("logger", ["csv", "tensorboard"])
def test_a_disk_filled_by_the_logs_ends_the_run_failed_naming_the_file(
    filling_disk, capsys, logger
):
    # reproduction 8 of issue 20: with logger=tensorboard a writer thread's traceback, and
    # summary.json left `running` (no room for its temporary file), with or without a tracker
    if logger == "tensorboard":
        pytest.importorskip("tensorboard")
    from dlrun.cli.main import main

    folder = filling_disk / "run"
    args = ["data=moons", "data.n_samples=400", "model.width=8", "trainer.epochs=3000"]
    args += ["trainer.early_stopping.patience=null", "device=cpu", "trainer.progress=false"]
    assert main(["train", *args, f"logger={logger}", f"hydra.run.dir={folder}"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    *warnings, line = err.strip().splitlines()
    # the tracker may or may not meet the full disk before metrics.csv does: one line if it does
    warned = "dlrun: warning: tensorboard stopped logging (OSError: [Errno 28] No space left "
    warned += "on device); the run folder keeps every number (dlrun export tensorboard <folder>)"
    assert warnings in ([], [warned] if logger == "tensorboard" else [])
    assert line.startswith(f"dlrun: error: cannot write {folder}/")
    assert line.endswith(": no space left on device")
    summary = runs.read_summary(folder)
    assert summary["status"] == runs.FAILED and summary["error"] == line.removeprefix(
        "dlrun: error: "
    )
    assert summary["epochs_run"] > 1 and not list(filling_disk.rglob("*.tmp"))
