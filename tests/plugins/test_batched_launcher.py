"""`dlrun train -m ... hydra/launcher=batched` against the basic launcher (hydra_plugins/dlrun_batched)."""

from __future__ import annotations

import csv
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf, open_dict

from dlrun.cli.main import main
from dlrun.folders import runs

from same_folders import TIMES, assert_same_csv

SMALL = [
    "device=cpu",
    "trainer.progress=false",
    "trainer.epochs=3",
    "data.n_samples=1000",
    "model.width=32",
]
BATCHED = "hydra/launcher=batched"
EXACT = "hydra.launcher.exact_dropout=true"  # the default MLP drops out: the solo runs' masks


def sweep(folder: Path, *args: str) -> int:
    return main(["train", "-m", *SMALL, *args, f"hydra.sweep.dir={folder}"])


def read_index(folder: Path) -> list[dict[str, str]]:
    with open(folder / runs.SWEEP_INDEX, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """The same three seeds through the basic launcher and, in stacks of at most two, batched."""
    root = tmp_path_factory.mktemp("pair")
    assert sweep(root / "basic", "seed=0,1,2") == 0
    batched = (BATCHED, EXACT, "hydra.launcher.max_replicas=2")
    assert sweep(root / "batched", "seed=0,1,2", *batched) == 0
    return root / "basic", root / "batched"


def job_folders(sweep_dir: Path) -> list[str]:
    return sorted(p.name for p in sweep_dir.iterdir() if (p / runs.SUMMARY).exists())


def files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def hydra_node(run_dir: Path) -> dict:
    """Hydra's record of the job, less what names the launcher and the sweep folder."""
    node = OmegaConf.to_container(OmegaConf.load(run_dir / ".hydra" / "hydra.yaml"))["hydra"]
    for key in ("launcher", "sweep"):
        node.pop(key)
    node["runtime"].pop("output_dir")
    node["runtime"]["choices"].pop("hydra/launcher")
    node["overrides"]["hydra"] = [o for o in node["overrides"]["hydra"] if "launcher" not in o]
    node["overrides"]["hydra"] = [o for o in node["overrides"]["hydra"] if "sweep.dir" not in o]
    return node


def test_batched_sweep_writes_the_basic_launchers_folders_and_index(pair):
    basic, batched = pair
    assert job_folders(batched) == job_folders(basic) == ["0_seed=0", "1_seed=1", "2_seed=2"]
    for name in job_folders(basic):
        mine, theirs = batched / name, basic / name
        assert files(mine) == files(theirs)  # .hydra/, checkpoints/, the logs, the summary
        for text in (runs.CONFIG, ".hydra/config.yaml", ".hydra/overrides.yaml"):
            assert (mine / text).read_text() == (theirs / text).read_text()
        assert hydra_node(mine) == hydra_node(theirs)  # job 2's was derived, not composed
        assert_same_csv(mine / runs.METRICS, theirs / runs.METRICS)
        assert_same_csv(mine / runs.LAYERS, theirs / runs.LAYERS)
        a, b = runs.read_summary(mine), runs.read_summary(theirs)
        assert list(a) == list(b) and a["status"] == b["status"] == runs.COMPLETED
        for k in b.keys() - TIMES:
            assert a[k] == (pytest.approx(b[k], rel=1e-5) if isinstance(b[k], float) else b[k])
    rows, expected = read_index(batched), read_index(basic)
    assert list(rows[0]) == list(expected[0]) and len(rows) == len(expected) == 3
    for row, other in zip(rows, expected):
        for k in row.keys() - TIMES:
            try:
                assert float(row[k]) == pytest.approx(float(other[k]), rel=1e-5), k
            except ValueError:
                assert row[k] == other[k], k


def report(folder: Path) -> tuple[list[str], object]:
    """`dlrun report`'s findings and its table of runs, without drawing the figures."""
    from dlrun.report.findings import findings
    from dlrun.report.tables import runs_frame
    from dlrun.results.load import load_runs
    from dlrun.results.study import make_study

    study = make_study(load_runs([folder]), None)
    return findings(study, []), runs_frame(study)


NUMBER = re.compile(r"-?\d+\.?\d*(?:e-?\d+)?")


def test_report_on_both_sweeps_is_the_same(pair):
    (said, table), (expected, expected_table) = report(pair[1]), report(pair[0])
    assert [NUMBER.sub("#", s) for s in said] == [NUMBER.sub("#", s) for s in expected]
    for mine, theirs in zip(said, expected):
        numbers = [float(n) for n in NUMBER.findall(mine)]
        assert numbers == pytest.approx([float(n) for n in NUMBER.findall(theirs)], rel=1e-3)
    assert list(table.columns) == list(expected_table.columns)
    keep = [c for c in table.columns if c not in TIMES | {"path"}]
    mine, theirs = table[keep].sort_values("run"), expected_table[keep].sort_values("run")
    for column in keep:
        if mine[column].dtype.kind == "f":
            assert mine[column].tolist() == pytest.approx(theirs[column].tolist(), rel=1e-5)
        else:
            assert mine[column].astype(str).tolist() == theirs[column].astype(str).tolist()


def test_rerun_into_the_sweep_skips_finished_jobs(pair, capsys):
    batched = pair[1]
    stamps = {p: p.stat().st_mtime_ns for p in batched.rglob("summary.json")}
    index = read_index(batched)
    capsys.readouterr()
    assert sweep(batched, "seed=0,1,2", BATCHED, EXACT, "hydra.launcher.max_replicas=2") == 0
    assert capsys.readouterr().out.count("skipped: already completed") == 3
    assert {p: p.stat().st_mtime_ns for p in batched.rglob("summary.json")} == stamps
    assert read_index(batched) == index


def test_unbatchable_jobs_run_alone_with_a_note_and_bad_values_fail_alone(tmp_path, capsys):
    folder = tmp_path / "sweep"
    code = sweep(
        folder, "model.batch_norm=false,true", "optimizer.lr=0.001,-1", "seed=0,1", BATCHED
    )
    out = capsys.readouterr().out
    assert code == 1  # some jobs failed: the sweep says so
    rows = {(r["model.batch_norm"], r["optimizer.lr"], r["seed"]): r for r in read_index(folder)}
    assert len(rows) == 8
    for (_, lr, _), row in rows.items():
        if lr == "-1":
            assert row["status"] == runs.FAILED and "positive" in row["error"]
        else:
            assert row["status"] == runs.COMPLETED and row["error"] == ""
    assert "2 jobs as one stack (job 0, job 1)" in out  # batch_norm=false, lr=0.001
    stack_line = next(line for line in out.splitlines() if "as one stack" in line)
    assert stack_line.endswith("; 1 thread: one thread in tests (tests/conftest.py)")
    for job in (4, 5, 6, 7):  # batch_norm=true: the ordinary path, saying why
        assert f"dlrun: job {job} runs alone: model.batch_norm=true" in out


@pytest.mark.slow
def test_ctrl_c_mid_stack_leaves_every_job_interrupted_at_a_whole_epoch(tmp_path):
    folder = tmp_path / "sweep"
    args = ["seed=0,1,2", "trainer.epochs=40", "trainer.early_stopping.patience=null"]
    command = [sys.executable, "-m", "dlrun", "train", "-m", *SMALL[:-1], "model.width=256"]
    command += [*args, BATCHED, f"hydra.sweep.dir={folder}"]
    proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if "as one stack" in line:
            break
    metrics = folder / "1_seed=1" / runs.METRICS
    while not metrics.exists() or len(metrics.read_text().splitlines()) < 3:
        assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    proc.stdout.read()
    assert proc.wait(timeout=120) == 130
    for row in read_index(folder):
        assert row["status"] == runs.INTERRUPTED
        run_dir = folder / row["run_dir"]
        summary = runs.read_summary(run_dir)
        epochs = len(run_dir.joinpath(runs.METRICS).read_text().splitlines()) - 1
        last = torch.load(runs.last_checkpoint(run_dir), weights_only=True)
        # Ctrl-C came as job 1 logged its second epoch: whole epochs, the same in every file
        assert summary["epochs_run"] == epochs == last["epoch"] >= 1


def test_each_job_is_composed_once_and_derived_configs_equal_hydras_own(tmp_path):
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    from dlrun.config.compose import setup_hydra
    from dlrun.paths import conf_dir
    from hydra_plugins.dlrun_batched._compose import ComposingLoader

    setup_hydra()
    jobs = [
        ["trainer.max_grad_norm=1.0", "seed=0"],
        ["trainer.max_grad_norm=1.0", "seed=1"],  # derived, and checked against Hydra's own
        ["trainer.max_grad_norm=0.5", "seed=2"],  # derived
        ["trainer.max_grad_norm=null", "seed=3"],  # derived: null is a plain value too
        ["optimizer=sgd", "seed=4"],  # a group choice: composed in full
        ["+extra=1", "seed=5"],  # an addition: composed in full
    ]
    with initialize_config_dir(version_base="1.3", config_dir=str(conf_dir())):
        hydra_loader = GlobalHydra.instance().config_loader()
        master = hydra_loader.load_configuration(
            "train", [f"hydra.sweep.dir={tmp_path}", "trainer.epochs=2"], RunMode.MULTIRUN
        )
        composed = []

        class Counting:  # Hydra's loader, counting full compositions
            def load_sweep_config(self, master_config, sweep_overrides):
                composed.append(sweep_overrides)
                return hydra_loader.load_sweep_config(master_config, sweep_overrides)

        loader = ComposingLoader(Counting())
        expected = [hydra_loader.load_sweep_config(master, o) for o in jobs]
        for _ in ("the sweeper validates", "the launcher runs"):
            for i, overrides in enumerate(jobs):
                config = loader.load_sweep_config(master, overrides)
                assert OmegaConf.to_container(config) == OmegaConf.to_container(expected[i])
                with open_dict(config):  # as the launcher does with each job's config
                    config.hydra.job.num = i
    assert composed == [jobs[0], jobs[1], jobs[4], jobs[5]]  # job 1: checking the first derived


def test_a_bad_replica_cap_is_one_line_and_exit_2(tmp_path, capsys):
    assert sweep(tmp_path / "sweep", "seed=0,1", BATCHED, "hydra.launcher.max_replicas=0") == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (
        "dlrun: error: hydra.launcher.max_replicas=0 must be at least 1 "
        "(or null: as many as fit in memory)"
    )
