"""`dlrun report` end to end: files written, bad input, incomplete run folders, real runs."""

from __future__ import annotations

import base64
import re

import pandas as pd
import pytest

from dlrun.cli.main import main
from dlrun.results.load import find_run_dirs, load_runs

from synthetic_runs import (
    classification_metrics,
    summary_from,
    write_classification_run,
    write_run,
)


@pytest.fixture
def sweep(tmp_path):
    """optimizer x seed, 2 x 2, in a sweep-like folder with a sweep root file beside the jobs."""
    root = tmp_path / "sweep"
    for i, (name, seed) in enumerate((n, s) for n in ("sgd", "adam") for s in range(2)):
        write_classification_run(
            root / f"{i}_optimizer={name},seed={seed}",
            {"optimizer.name": name, "seed": seed},
            epochs=8,
            val_end=0.5 if name == "adam" else 0.8,
            jitter=0.01,
            seed=seed,
        )
    (root / "multirun.yaml").write_text("hydra: {}\n")
    return root


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dlrun: error: "), err
    return err[0]


def test_report_writes_html_csv_and_figures(sweep, capsys):
    assert main(["report", str(sweep)]) == 0
    out = sweep / "report"
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == ["curves.png", "gap.png", "layers.png", "optimizers.png", "sweep.png"]
    page = (out / "index.html").read_text()
    # findings first, then the summary table, then the figures
    assert (
        page.index("<h2>Findings</h2>")
        < page.index("<h2>Summary</h2>")
        < page.index("<h2>Figures</h2>")
    )
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == len(names)
    embedded = {base64.b64decode(image) for image in images}
    assert embedded == {(out / name).read_bytes() for name in names}  # every figure, self-contained
    assert len(pd.read_csv(out / "runs.csv")) == 4
    console = capsys.readouterr().out
    assert (
        "Best of 2 settings: optimizer=adam" in console
        and "4 runs by test accuracy, best first" in console
    )


@pytest.mark.parametrize(("fmt", "magic"), [("svg", b"<?xml"), ("pdf", b"%PDF")])
def test_other_formats_and_out_folder(sweep, tmp_path, fmt, magic):
    out = tmp_path / "elsewhere"
    assert main(["report", str(sweep), "--out", str(out), "--format", fmt]) == 0
    assert (out / f"curves.{fmt}").read_bytes().startswith(magic)
    assert not (sweep / "report").exists()
    page = (out / "index.html").read_text()
    assert page.count("<img src=") == len(list(out.glob(f"*.{fmt}")))
    if fmt == "svg":
        assert "data:image/svg+xml;base64," in page


def test_report_folder_is_not_read_as_runs_on_a_second_report(sweep):
    assert main(["report", str(sweep)]) == 0
    assert main(["report", str(sweep)]) == 0
    assert len(pd.read_csv(sweep / "report" / "runs.csv")) == 4
    assert len(find_run_dirs(sweep)) == 4


def test_an_empty_last_cell_is_empty_and_a_line_cut_after_a_comma_is_cut(tmp_path):
    from dlrun.results.load import Incomplete, read_csv_strict

    path = tmp_path / "metrics.csv"
    path.write_text("epoch,train_loss,update_cos\n1,0.5,\n2,0.4,-0.5\n")  # pandas' nan
    frame = read_csv_strict(path)
    assert frame["update_cos"].isna().tolist() == [True, False]
    assert frame["update_cos"].iloc[1] == -0.5
    path.write_text("epoch,train_loss,update_cos\n1,0.5,0.1\n2,0.4,")  # died after the comma
    with pytest.raises(Incomplete, match="line 3 is truncated"):
        read_csv_strict(path)


def test_incomplete_runs_are_skipped_with_a_warning(sweep, capsys):
    truncated = sweep / "4_optimizer=adam,seed=2"
    write_classification_run(truncated, {"optimizer.name": "adam", "seed": 2}, epochs=8)
    with open(truncated / "metrics.csv", "a") as f:
        f.write("9,90,0.51,0.6")  # the process died mid-line
    no_summary = sweep / "5_optimizer=adam,seed=3"
    write_classification_run(no_summary, {"optimizer.name": "adam", "seed": 3}, epochs=8)
    (no_summary / "summary.json").unlink()
    running = sweep / "6_optimizer=adam,seed=4"
    write_run(
        running,
        {"optimizer.name": "adam", "seed": 4},
        classification_metrics(3),
        {"status": "running"},
    )

    assert main(["report", str(sweep)]) == 0
    captured = capsys.readouterr()
    assert (
        "skipped incomplete run folder 4_optimizer=adam,seed=2: metrics.csv line 10 is truncated"
        in captured.err
    )
    assert "skipped incomplete run folder 5_optimizer=adam,seed=3: no summary.json" in captured.err
    assert "6_optimizer=adam,seed=4: status is still `running`" in captured.err
    assert len(pd.read_csv(sweep / "report" / "runs.csv")) == 4
    assert "Skipped 3 incomplete run folder(s)" in (sweep / "report" / "index.html").read_text()


def test_failed_and_diverged_runs_are_listed_not_drawn(sweep):
    write_run(
        sweep / "7_failed",
        {"optimizer.name": "adam", "seed": 7},
        None,
        {"status": "failed", "error": "ValueError: bad data"},
    )
    metrics = classification_metrics(8, diverge_at=3)
    write_run(
        sweep / "8_diverged",
        {"optimizer.name": "sgd", "optimizer.lr": 10.0, "seed": 8},
        metrics,
        summary_from(metrics, "diverged"),
    )
    assert main(["report", str(sweep)]) == 0
    frame = pd.read_csv(sweep / "report" / "runs.csv")
    assert len(frame) == 6 and set(frame["status"].iloc[-2:]) == {"failed", "diverged"}  # last
    page = (sweep / "report" / "index.html").read_text()
    assert "Run 7_failed (optimizer=adam) failed: ValueError: bad data." in page
    assert "Run 8_diverged" in page and "diverged at epoch 3" in page


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/no/such/folder"], "/no/such/folder: no such file or directory"),
        (["{empty}"], "no run folders here"),
        (
            ["{sweep}", "--metric", "nope"],
            "--metric nope: not a number in the runs' summaries; choose from",
        ),
        (["{sweep}", "--x", "optimizer.name"], "--x optimizer.name: not a numeric setting"),
        (["{sweep}", "--group", "model.nope"], "--group model.nope: not a config key"),
        (["{sweep}", "--format", "jpg"], "argument --format: invalid choice: 'jpg'"),
        (["{sweep}", "{empty}"], "several PATHs: say where the report goes with --out DIR"),
        ([], "no runs under ./outputs: give a PATH"),  # run where nothing was trained
    ],
)
def test_bad_input_is_one_line_and_exit_2(sweep, tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    args = [a.format(sweep=sweep, empty=empty) for a in args]
    assert main(["report", *args]) == 2
    assert message in one_error_line(capsys)


def test_mixed_tasks_are_an_error(sweep, capsys):
    from synthetic_runs import regression_metrics

    metrics = regression_metrics(5)
    write_run(
        sweep / "9_regression",
        {"data.name": "regression"},
        metrics,
        summary_from(metrics, "completed", task="regression"),
    )
    assert main(["report", str(sweep)]) == 2
    assert "mix classification and regression" in one_error_line(capsys)


def test_only_incomplete_runs_is_an_error(tmp_path, capsys):
    write_run(tmp_path / "run", {}, classification_metrics(3), None)
    assert main(["report", str(tmp_path)]) == 2
    assert "no complete run folders (1 skipped as incomplete)" in capsys.readouterr().err


def test_config_is_flattened_with_the_keys_users_type(sweep):
    runs = load_runs([sweep])
    row = runs.table.loc["0_optimizer=sgd,seed=0"]
    assert (
        row["optimizer.name"] == "sgd"
        and row["model.width"] == 100
        and row["trainer.early_stopping.patience"] == 20
    )
    assert row["optimizer.betas"] == "[0.9, 0.999]"  # lists stay one cell
    assert row["status"] == "completed" and row["versions.dlrun"] == "0.1.0"
    assert set(runs.metrics["run"]) == set(runs.table.index)


def test_report_on_real_runs(make_cfg, tmp_path, capsys):
    """The run folders training writes (not the synthetic ones) give a report with the decomposition."""
    from dlrun.run.runner import run

    for width in (4, 16):
        for seed in (0, 1):
            cfg = make_cfg(
                "data=regression",
                f"model.width={width}",
                f"seed={seed}",
                "trainer.epochs=2",
                "data.n_samples=300",
            )
            run(cfg, tmp_path / "sweep" / f"w{width}_s{seed}")
    assert main(["report", str(tmp_path / "sweep"), "--x", "model.width"]) == 0
    out = tmp_path / "sweep" / "report"
    assert (out / "bias_variance.png").is_file() and (out / "layers.png").is_file()
    frame = pd.read_csv(out / "runs.csv")
    assert (
        len(frame) == 4
        and set(frame["model.width"]) == {4, 16}
        and frame["test_loss"].notna().all()
    )


def test_the_report_path_is_printed_whole_off_a_terminal(tmp_path, capsys, monkeypatch):
    from dlrun.report.cli import main

    monkeypatch.delenv("COLUMNS", raising=False)  # a log file: rich's 80 columns
    sweep = tmp_path / ("a-long-sweep-folder-name-" * 4)
    write_classification_run(sweep / "0_seed=0", epochs=3)
    assert main([str(sweep)]) == 0
    (last,) = [line for line in capsys.readouterr().out.splitlines() if "report in" in line]
    assert f"dlrun: report in {sweep / 'report' / 'index.html'} (" in last and len(last) > 80
