"""Finding runs: `dlrun runs`, `dlrun report` with no PATH, `from dlrun import load_runs` (dlrun/results/listing.py)."""

from __future__ import annotations

import os
import shutil

import pytest

from dlrun.cli.main import main
from dlrun.folders import runs
from dlrun.folders.sweep_index import record_job, record_sweep
from dlrun.results.listing import flat_config, newest

from synthetic_runs import write_classification_run


def age(folder, seconds_ago: float, *names: str) -> None:
    """Date a run (its config.yaml) or a sweep (its .dlrun/sweep.json) `seconds_ago`."""
    when = os.path.getmtime(folder) - seconds_ago
    for name in names:
        os.utime(folder / name, (when, when))


@pytest.fixture
def outputs(tmp_path, monkeypatch):
    """Two single runs and a two-job sweep under ./outputs, of known ages."""
    monkeypatch.chdir(tmp_path)
    old = write_classification_run(tmp_path / "outputs/runs/d/10-00-00_old", {"name": "old"})
    new = write_classification_run(
        tmp_path / "outputs/runs/d/11-00-00_new", {"name": "new"}, val_end=0.3
    )
    age(old, 3600, runs.CONFIG)
    age(new, 60, runs.CONFIG)
    sweep = tmp_path / "outputs/sweeps/d/09-00-00_sweep"
    record_sweep(sweep, ["optimizer"])
    for job, name in enumerate(("sgd", "adam")):
        folder = write_classification_run(
            sweep / f"{job}_optimizer={name}", {"optimizer.name": name}, val_end=0.2 + job
        )
        record_job(sweep, job, {"optimizer": name}, folder)
    age(sweep, 7200, f"{runs.SWEEP_STATE}/sweep.json")
    return {"old": old, "new": new, "sweep": sweep}


def table(out: str) -> list[list[str]]:
    return [line.split() for line in out.strip().splitlines()[2:]]


def test_runs_lists_single_runs_newest_first(outputs, capsys):
    assert main(["runs"]) == 0
    rows = table(capsys.readouterr().out)
    assert [row[-1] for row in rows] == [
        "outputs/runs/d/11-00-00_new",
        "outputs/runs/d/10-00-00_old",
    ]
    summary = runs.read_summary(outputs["new"])
    assert rows[0][2:] == [
        "new",
        "-",  # nothing differs between the two but their names
        "completed",
        "acc",
        f"{summary['test_acc']:.4g}",
        "val_loss",
        f"{summary['best_val_loss']:.4g}",
        f"{summary['best_epoch']}/{summary['epochs_run']}",
        "outputs/runs/d/11-00-00_new",
    ]


def test_runs_sweeps_lists_each_sweep_with_its_best_job(outputs, capsys):
    assert main(["runs", "--sweeps"]) == 0
    (row,) = table(capsys.readouterr().out)
    jobs = [runs.read_summary(f) for f in outputs["sweep"].glob("*_optimizer=*")]
    best = min(jobs, key=lambda job: job["best_val_loss"])
    assert row[2:] == [
        "sweep",
        "2",
        "completed",
        "acc",
        f"{best['test_acc']:.4g}",
        "val_loss",
        f"{best['best_val_loss']:.4g}",
        "2",
        "jobs",
        "outputs/sweeps/d/09-00-00_sweep",
    ]


def test_runs_of_a_sweep_lists_its_jobs_with_what_differs(outputs, capsys):
    assert main(["runs", str(outputs["sweep"])]) == 0
    rows = table(capsys.readouterr().out)
    assert sorted(row[3] for row in rows) == ["optimizer=adam", "optimizer=sgd"]
    for row in rows:  # the job folder, whole, on the row of the job it names
        assert row[-1].endswith(f"_{row[3]}")


def test_off_a_terminal_a_long_folder_is_printed_whole_on_its_row(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COLUMNS", raising=False)
    folder = tmp_path / "outputs" / "runs" / "d" / ("12-00-00_" + "a-very-long-run-name-" * 6)
    write_classification_run(folder, {"name": "long"})
    assert main(["runs"]) == 0
    (row,) = table(capsys.readouterr().out)
    assert row[-1] == str(folder.relative_to(tmp_path))  # over 80 characters, in one piece


def test_report_with_no_path_reports_the_newest_sweep_else_run(outputs, capsys):
    # the sweep is older than both runs, yet a sweep is what one reports after `dlrun train -m`
    assert newest().resolve() == outputs["sweep"].resolve()
    assert main(["report"]) == 0
    assert (outputs["sweep"] / "report" / "index.html").is_file()
    assert "reporting the newest sweep" in capsys.readouterr().out
    shutil.rmtree(outputs["sweep"])
    assert main(["report", "latest"]) == 0
    assert (outputs["new"] / "report" / "index.html").is_file()


def test_load_runs_is_public_and_reads_tables_and_curves(outputs):
    import dlrun
    from dlrun import load_runs

    loaded = load_runs(outputs["sweep"])  # one path, a str or a Path
    assert dlrun.load_runs is load_runs
    assert sorted(loaded.table["optimizer.name"]) == ["adam", "sgd"]
    assert set(loaded.metrics["run"]) == set(loaded.table.index)
    assert loaded.metrics.groupby("run")["epoch"].max().tolist() == [20, 20]
    with pytest.raises(FileNotFoundError, match="no such folder: nowhere"):
        load_runs("nowhere")


@pytest.mark.parametrize("hostile", ["aliases", "link-out"])
def test_runs_reads_a_hostile_config_as_none_at_once(tmp_path, capsys, hostile):
    # issue 20's campaign: a "billion laughs" config.yaml (9 levels of 9 aliases) held
    # `dlrun runs` for minutes while its settings were flattened (9**9 values)
    folder = write_classification_run(tmp_path / "run", epochs=2)
    config = folder / runs.CONFIG
    if hostile == "aliases":
        lines = ['a0: &a0 "lol"']
        lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
        config.write_text("\n".join(lines) + "\n")
    else:
        (tmp_path / "outside.yaml").write_text("name: token-9f8e7d\n")
        config.unlink()
        config.symlink_to(tmp_path / "outside.yaml")
    assert flat_config(folder) == {}
    assert main(["runs", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "completed" in out and "token-9f8e7d" not in out
