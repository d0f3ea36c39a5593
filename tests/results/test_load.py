"""A run folder the report cannot trust is skipped with one line; the rest is reported (report/load.py)."""

from __future__ import annotations

import errno
import json
import os

import pandas as pd
import pytest

from dlrun.cli.main import main
from dlrun.folders import runs
from dlrun.results.load import load_runs

from synthetic_runs import write_classification_run

# (file, content, the reason the report gives)
MALFORMED = [
    (runs.SUMMARY, "[1, 2]", "summary.json is not a JSON object"),
    (runs.SUMMARY, "{}", "summary.json has no status"),
    (runs.SUMMARY, '{"status": "completed", "test_acc": "high"}', "test_acc is not a number"),
    (runs.SUMMARY, '{"status": "completed", "n_params": [1]}', "n_params is not a number"),
    (runs.SUMMARY, '{"status": "completed", "best_epoch": 1}', "summary.json has no epochs_run"),
    (runs.SUMMARY, "{not json", "summary.json is not valid JSON"),
    (runs.CONFIG, "- 1\n- 2\n", "config.yaml is not a mapping"),
    (runs.CONFIG, "a: [unclosed\n", "config.yaml is not valid YAML"),
    (runs.CONFIG, b"model: \xff\xfe\n", "config.yaml is not UTF-8"),
    (runs.METRICS, b"epoch,train_loss,val_loss\n1,\xff,2\n", "metrics.csv is not UTF-8"),
    (runs.METRICS, "epoch,step\n1,2\n", "metrics.csv has no column 'train_loss'"),
    (runs.METRICS, "epoch,train_loss,val_loss\n1,0.5,abc\n", "column 'val_loss' holds non-numbers"),
]


def write_bad(folder, name, content):
    bad = write_classification_run(folder, {"seed": 2}, epochs=5)
    path = bad / name
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)


@pytest.mark.parametrize(("name", "content", "reason"), MALFORMED, ids=[m[2] for m in MALFORMED])
def test_a_malformed_file_skips_that_run_with_its_reason(tmp_path, name, content, reason):
    write_classification_run(tmp_path / "0_good", {"seed": 0}, epochs=5)
    write_bad(tmp_path / "1_bad", name, content)
    loaded = load_runs([tmp_path])
    assert [run for run, _ in loaded.skipped] == ["1_bad"] and reason in loaded.skipped[0][1]
    assert "\n" not in loaded.skipped[0][1]
    assert list(loaded.table.index) == ["0_good"]


def test_the_report_is_written_for_the_runs_it_can_read(tmp_path, capsys):
    for i in range(2):
        write_classification_run(tmp_path / f"{i}_good", {"seed": i}, epochs=5)
    write_bad(tmp_path / "2_bad", runs.SUMMARY, "[1, 2]")
    write_bad(tmp_path / "3_bad", runs.METRICS, b"epoch,train_loss,val_loss\n1,\xff,2\n")
    assert main(["report", str(tmp_path)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "dlrun: warning: skipped incomplete run folder 2_bad: summary.json is not a JSON object",
        "dlrun: warning: skipped incomplete run folder 3_bad: metrics.csv is not UTF-8 text",
    ]
    table = pd.read_csv(tmp_path / "report" / "runs.csv")
    assert sorted(table["run"]) == ["0_good", "1_good"]


def test_a_full_disk_under_out_is_one_line_and_keeps_the_earlier_report(
    tmp_path, capsys, monkeypatch
):
    write_classification_run(tmp_path / "run", epochs=5)
    assert main(["report", str(tmp_path / "run")]) == 0
    out = tmp_path / "run" / "report"
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()

    real = runs.os.replace

    def full(src, dst):
        if str(dst).startswith(str(out)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(src, dst)

    monkeypatch.setattr(runs.os, "replace", full)
    assert main(["report", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"dlrun: error: cannot write {out / 'runs.csv'}: no space left on device"]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no temporary file either


def test_summary_numbers_may_be_null(tmp_path):
    folder = write_classification_run(tmp_path / "run", epochs=3, status="interrupted")
    summary = json.loads((folder / runs.SUMMARY).read_text())
    (folder / runs.SUMMARY).write_text(json.dumps({**summary, "best_val_loss": None}))
    assert load_runs([tmp_path]).skipped == []
