"""Sweeps as a user runs them: `dlrun train -m` through Hydra's real launchers (dlrun/sweeps/job.py)."""

from __future__ import annotations

import csv
import math
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dlrun import placement
from dlrun.folders import runs
from dlrun.run import runlog
from dlrun.sweeps import job as sweeps


def read_index(folder: Path) -> list[dict[str, str]]:
    with open(folder / "sweep.csv", newline="") as f:
        return list(csv.DictReader(f))


def key(row: dict[str, str]) -> tuple[str, str, str]:
    return row["job"], row["optimizer"], row["seed"]


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> Path:
    """The issue's grid with the basic launcher: 3 optimizers x 2 seeds, 3 epochs."""
    cwd = tmp_path_factory.mktemp("grid")
    out = dlrun(*GRID, "trainer.epochs=3", cwd=cwd)
    assert out.returncode == 0, out.stderr[-3000:]
    return sweep_folder(cwd)


def sweep_folder(cwd: Path) -> Path:
    (folder,) = (cwd / "outputs" / "sweeps").glob("*/*")
    return folder


GRID = ["optimizer=sgd,momentum,adam", "seed=0,1"]


def dlrun(*args: str, cwd: Path, timeout: int = 300, **env: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", **env}
    command = [sys.executable, "-m", "dlrun", "train", "-m", *QUICK, *args]
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout
    )


QUICK = ["device=cpu", "trainer.progress=false", "data.n_samples=1000", "model.width=64"]


def assert_same_rows(rows: list[dict[str, str]], expected: list[dict[str, str]]) -> None:
    assert sorted(map(key, rows)) == sorted(map(key, expected))
    by_key = {key(row): row for row in expected}
    for row in rows:
        assert row["status"] == "completed" and row["run_dir"] == by_key[key(row)]["run_dir"]
        # same seeds, same data: the same numbers, up to float summation order across threads
        assert float(row["best_val_loss"]) == pytest.approx(
            float(by_key[key(row)]["best_val_loss"]), rel=1e-4
        )


def compose_with_hydra(overrides: list[str]):
    """The config with Hydra's own node, as `dlrun train -m <overrides>` would compose it."""
    from hydra import compose, initialize_config_dir

    from dlrun.config.compose import setup_hydra
    from dlrun.paths import conf_dir

    setup_hydra()
    with initialize_config_dir(version_base="1.3", config_dir=str(conf_dir())):
        return compose("train", overrides=overrides, return_hydra_config=True)


def test_grid_sweep_leaves_six_run_folders_and_a_complete_index(grid):
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d/\d\d-\d\d-\d\d_mlp-mnist1d", f"{grid.parent.name}/{grid.name}"
    )
    rows = read_index(grid)
    assert len(rows) == 6
    assert {
        "job",
        "optimizer",
        "seed",
        "status",
        "best_val_loss",
        "test_acc",
        "n_params",
        "wall_s",
        "run_dir",
    } <= set(rows[0])
    assert sorted(key(row) for row in rows) == sorted(
        (str(i), opt, str(seed))
        for i, (opt, seed) in enumerate((o, s) for o in ("sgd", "momentum", "adam") for s in (0, 1))
    )
    for row in rows:
        summary = runs.read_summary(grid / row["run_dir"])
        assert row["status"] == summary["status"] == "completed"
        assert float(row["best_val_loss"]) == pytest.approx(summary["best_val_loss"])
        assert int(row["n_params"]) == summary["n_params"] and summary["seed"] == int(row["seed"])
        # the job folder says what varies, and only that: the fixed overrides are left out
        assert row["run_dir"] == f"{row['job']}_optimizer={row['optimizer']},seed={row['seed']}"


# slow: a second launcher over the same grid (15 s); the default suite keeps the basic one
@pytest.mark.slow
def test_joblib_launcher_gives_the_same_rows(grid, tmp_path):
    out = dlrun(
        *GRID, "trainer.epochs=3", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert_same_rows(read_index(sweep_folder(tmp_path)), read_index(grid))


@pytest.mark.slow
def test_submitit_local_launcher_gives_the_same_rows(grid, tmp_path):
    out = dlrun(*GRID, "trainer.epochs=3", "hydra/launcher=submitit_local", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    folder = sweep_folder(tmp_path)
    assert (folder / ".submitit").is_dir()  # the jobs really went through submitit
    assert_same_rows(read_index(folder), read_index(grid))


def test_a_failing_setting_is_recorded_the_others_complete_and_the_exit_code_says_so(tmp_path):
    out = dlrun(
        "optimizer.lr=0.01,-1",
        "trainer.epochs=2",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        cwd=tmp_path,
    )
    assert out.returncode == 1
    assert "1 completed, 1 failed of 2 jobs" in out.stderr and "Traceback" not in out.stderr
    ok, bad = sorted(read_index(tmp_path / "sweep"), key=lambda row: row["job"])
    assert ok["status"] == "completed" and ok["optimizer.lr"] == "0.01" and ok["error"] == ""
    assert (
        bad["status"] == "failed" and "optimizer.lr" in bad["error"] and "positive" in bad["error"]
    )
    summary = runs.read_summary(tmp_path / "sweep" / bad["run_dir"])
    assert summary["status"] == "failed" and summary["error"] == bad["error"]
    assert f"job 1 failed: {bad['error']}" in out.stdout  # the end-of-sweep table lists it


def test_an_interrupted_sweep_rerun_into_its_folder_continues_its_interrupted_job(tmp_path):
    # reproduction 6 of issue 20: the interrupted job was retrained from scratch, and the
    # stop message counted it as failed, and a 3-job sweep as 2
    import time

    args = [
        "seed=0,1,2",
        "trainer.epochs=30",
        "trainer.early_stopping.patience=null",
        "trainer.checkpoint_every_s=0",
        "model.width=128",
    ]
    command = [sys.executable, "-m", "dlrun", "train", "-m", *QUICK, *args]
    first = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    for line in first.stdout:
        if "run folder" in line and "1_seed=1" in line:
            break
    job1 = Path(line.split("run folder ", 1)[1].strip())
    while not runs.last_checkpoint(job1).is_file():  # job 1 saved an epoch: SIGTERM now
        assert first.poll() is None
        time.sleep(0.01)
    first.send_signal(signal.SIGTERM)
    rest = first.stdout.read()
    assert first.wait(timeout=120) == 143
    last = rest.strip().splitlines()[-1]
    assert "SIGTERM: the sweep stopped; 1 completed, 1 interrupted, 1 not started of 3 jobs" in last
    assert "hydra.sweep.dir=" in last
    folder = sweep_folder(tmp_path)
    stopped = runs.read_summary(job1)
    assert stopped["status"] == "interrupted" and stopped["epochs_run"] >= 1
    stamp = (folder / "0_seed=0" / "summary.json").stat().st_mtime_ns

    again = dlrun(*args, f"hydra.sweep.dir={folder}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("skipped: already completed") == 1
    assert (folder / "0_seed=0" / "summary.json").stat().st_mtime_ns == stamp
    resumed = runs.read_summary(job1)
    assert [r["from_epoch"] for r in resumed["resumes"]] == [stopped["checkpoint_epoch"]]
    with open(job1 / runs.METRICS, newline="") as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == list(range(1, 31))
    rows = read_index(folder)
    assert [(row["job"], row["seed"], row["status"]) for row in rows] == [
        (str(i), str(i), "completed") for i in range(3)
    ]
    assert "resumes" not in runs.read_summary(folder / "2_seed=2")  # no checkpoint: from scratch


# slow: six real trials (13 s)
@pytest.mark.slow
def test_optuna_runs_six_trials_that_maximise_val_acc_and_survive_a_failed_trial(tmp_path):
    out = dlrun(
        "hydra/sweeper=optuna",
        "hydra.sweeper.n_trials=6",
        "hydra.sweeper.sampler.seed=1",
        "optimizer.lr=choice(0.003,0.03,-1)",
        "trainer.early_stopping.monitor=val_acc",
        "trainer.epochs=2",
        f"hydra.sweep.dir={tmp_path / 'search'}",
        cwd=tmp_path,
    )
    assert "hydra.sweeper.direction=maximize" in out.stdout  # followed the monitor
    rows = read_index(tmp_path / "search")
    assert len(rows) == 6 and {row["optimizer.lr"] for row in rows} <= {"0.003", "0.03", "-1"}
    failed = [row for row in rows if row["status"] == "failed"]
    assert failed and all(row["optimizer.lr"] == "-1" for row in failed)  # and the search went on
    assert out.returncode == 1
    results = (tmp_path / "search" / "optimization_results.yaml").read_text()
    best = max(float(row["best_val_acc"]) for row in rows if row["status"] == "completed")
    assert float(re.search(r"best_value: (\S+)", results).group(1)) == pytest.approx(best)


def test_bad_launcher_or_sweep_syntax_is_one_line_and_exit_2(tmp_path):
    no_slurm = os.path.dirname(sys.executable)  # a PATH without srun, even on a cluster
    cases = [
        ("hydra/launcher=bogus", "bogus"),
        ("optimizer=sgd,,adam", "optimizer=sgd,,adam"),
        ("hydra/launcher=slurm", "sbatch"),
    ]
    for bad, word in cases:
        out = dlrun(bad, "seed=0,1", cwd=tmp_path, PATH=no_slurm)
        assert out.returncode == 2, out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("dlrun: error:") and word in lines[0]


def test_slurm_preset_composes_into_an_sbatch_script(tmp_path, monkeypatch):
    """hydra/launcher=slurm through dlrun's launcher and submitit, up to the sbatch file."""
    pytest.importorskip("submitit")
    from hydra.utils import instantiate

    from hydra_plugins.dlrun_slurm import _cluster, _driver

    monkeypatch.chdir(tmp_path)  # resolving the launcher creates the sweep folder
    cfg = compose_with_hydra(
        ["hydra/launcher=slurm", "hydra.launcher.partition=gpu", "hydra.launcher.timeout_min=30"]
    )
    launcher = instantiate(cfg.hydra.launcher)
    assert type(launcher).__name__ == "DlrunSlurmLauncher"
    own = {"nodes_have_gpus", "poll_s", "pending_every_s", "lost_after_s", "stack", "exact_dropout"}
    assert set(launcher.own) == own  # dlrun's keys: sbatch never sees them
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "srun").write_text("#!/bin/sh\n")
    (fake_bin / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    # a job with trainer.threads=2 on device=cuda, as the driver sizes it
    request = _cluster.size(launcher.params, "cuda", 2)
    executor = _driver.executor(launcher, request)  # rejects any parameter submitit does not know
    executor._executor.parameters["map_count"] = 100  # a 100-job sweep is one array
    script = executor._executor._make_submission_file_text("python -m job", "uid")
    for line in (
        "--partition=gpu",
        "--gpus-per-node=1",
        "--time=30",
        "--cpus-per-task=2",
        "--mem=4GB",
        "--array=0-99%32",
        "--signal=USR2@120",
    ):
        assert f"#SBATCH {line}\n" in script
    cpu_only = _driver.executor(launcher, _cluster.size(launcher.params, "auto", None))
    script = cpu_only._executor._make_submission_file_text("python -m job", "uid")
    assert "gpus" not in script and "#SBATCH --cpus-per-task=1\n" in script


def test_slurm_refuses_what_no_node_grants_before_the_sweep_folder_exists(tmp_path):
    """The pre-check reads sinfo (here a recorded answer) and refuses in one line, exit 2."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    for name, text in (("sinfo", "vm|debug*|2|22644|(null)|infinite"), ("sbatch", "")):
        (fake_bin / name).write_text(f"#!/bin/sh\necho '{text}'\n")
        (fake_bin / name).chmod(0o755)
    path = f"{fake_bin}{os.pathsep}{os.environ['PATH']}"
    out = dlrun("hydra/launcher=slurm", "seed=0,1", "trainer.threads=4", cwd=tmp_path, PATH=path)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines() == [
        "dlrun: error: trainer.threads=4 asks each job for 4 CPUs, "
        "but the largest node of the default partition debug offers 2"
    ]
    assert not (tmp_path / "outputs").exists()  # nothing half-made


def test_a_sweep_job_continues_from_last_pt_unless_it_finished(tmp_path, monkeypatch):
    from dlrun.sweeps.job import continues

    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    run_dir = tmp_path / "job"
    (run_dir / "checkpoints").mkdir(parents=True)

    def folder(status, last_pt=True):
        runs.write_json(run_dir / runs.SUMMARY, {"status": status})
        last = runs.last_checkpoint(run_dir)
        last.write_bytes(b"x") if last_pt else last.unlink(missing_ok=True)
        return run_dir

    assert continues(folder(runs.REQUEUED)) and continues(folder(runs.TIMEOUT))
    assert not continues(folder(runs.REQUEUED, last_pt=False))  # nothing to continue from
    for status in (runs.INTERRUPTED, runs.RUNNING, runs.FAILED, runs.CANCELLED):
        assert continues(folder(status))  # a re-run sweep loses no saved epoch (issue 20)
        assert not continues(folder(status, last_pt=False))
    for status in runs.FINISHED:
        assert not continues(folder(status))


def test_parallel_and_search_presets_compose():
    cfg = compose_with_hydra(["hydra/launcher=parallel", "hydra/sweeper=search"])
    assert cfg.hydra.launcher._target_.endswith("JoblibLauncher")
    assert cfg.hydra.launcher.n_jobs == placement.default_n_jobs() >= 1
    assert cfg.hydra.sweeper._target_.endswith("OptunaSweeper")
    assert set(cfg.hydra.sweeper.params) == {
        "optimizer.lr",
        "optimizer.weight_decay",
        "model.width",
        "model.depth",
    }


def test_workers_get_dlrun_resolvers_from_the_callback_module():
    code = "import dlrun.sweeps.job; from omegaconf import OmegaConf; assert OmegaConf.has_resolver('dlrun_slug')"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_run_job_puts_job_k_on_its_own_gpu(make_cfg, tmp_path, monkeypatch):
    import torch

    import dlrun.run.runner

    seen = {}

    def run(cfg, run_dir):
        seen["device"] = cfg.device.name
        seen["threads"] = runlog.job_threads()  # the share the runner's thread choice keeps to
        return {"best_val_loss": 0.5}

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(dlrun.run.runner, "run", run)
    cfg = make_cfg("device=auto")
    assert sweeps.run_job(cfg, tmp_path / "job", 6, {"n_jobs": 4}, []) == 0.5
    assert seen["device"] == "cuda:2" and seen["threads"] == max(1, placement.cpu_count() // 4)


def test_an_error_mid_training_leaves_a_failed_summary_and_a_bad_objective(
    make_cfg, tmp_path, monkeypatch
):
    import dlrun.run.runner

    def fit(*args, **kwargs):
        raise RuntimeError("CUDA out of memory\n(on the second line)")

    monkeypatch.setattr(dlrun.run.runner, "fit", fit)
    assert sweeps.run_job(make_cfg(), tmp_path, 0, {}, []) == math.inf
    assert (
        sweeps.run_job(make_cfg("trainer.early_stopping.monitor=val_acc"), tmp_path, 0, {}, [])
        == -math.inf
    )
    summary = runs.read_summary(tmp_path)
    assert summary["status"] == "failed" and summary["error"].startswith(
        "RuntimeError: CUDA out of memory"
    )
    assert summary["n_params"] > 0
    # no checkpoint of a half-trained state: last.pt is written at epoch boundaries only
    assert summary["checkpoint_epoch"] is None and not (tmp_path / "checkpoints").exists()


def test_run_job_skips_a_finished_folder(make_cfg, tmp_path, monkeypatch):
    import dlrun.run.runner

    monkeypatch.setattr(dlrun.run.runner, "run", lambda *a: pytest.fail("a finished job ran again"))
    runs.write_json(tmp_path / "summary.json", {"status": "early_stopped", "best_val_loss": 0.25})
    assert sweeps.run_job(make_cfg(), tmp_path, 0, {}, []) == 0.25


HOLD_DRIVER = """
import sys, time
from pathlib import Path
from dlrun.folders.sweep_index import drive
lock = drive(Path(sys.argv[1]))
print("driving", flush=True)
time.sleep(120)
"""


def train_in_process(*args: str, capsys) -> tuple[int, list[str]]:
    """`dlrun train -m` in this process (no start-up cost): exit code, stderr lines."""
    from dlrun.cli.main import main

    code = main(["train", "-m", *QUICK, *args])
    return code, capsys.readouterr().err.strip().splitlines()


def test_a_second_driver_is_refused_and_a_dead_drivers_folder_is_taken_over(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "sweep"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_DRIVER, str(folder)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "driving"
    code, err = train_in_process(
        "seed=0,1", "trainer.epochs=1", f"hydra.sweep.dir={folder}", capsys=capsys
    )
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("dlrun: error:")
    assert "another dlrun is running this sweep" in err[0]
    assert [p.name for p in folder.iterdir()] == [runs.SWEEP_STATE]  # no job ran
    holder.kill()  # kill -9: the kernel drops its lock with it
    holder.wait()
    from dlrun.folders.sweep_index import drive

    drive(folder).release()


@pytest.mark.parametrize(
    ("bad", "word"),
    [("trainer.max_grad_norm=-1", "trainer.max_grad_norm"), ("name=../../ESC", "name")],
)
def test_a_bad_shared_setting_stops_a_sweep_before_its_folder_exists(
    tmp_path, monkeypatch, capsys, bad, word
):
    monkeypatch.chdir(tmp_path)
    code, err = train_in_process("seed=0,1", bad, capsys=capsys)
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("dlrun: error:") and word in err[0]
    assert list(tmp_path.iterdir()) == []
