"""sweep.csv: one row per job from the job records and run folders (dlrun/folders/sweep_index.py)."""

from __future__ import annotations

import csv
from pathlib import Path

from dlrun.folders import runs, sweep_index


def read_index(folder: Path) -> list[dict[str, str]]:
    with open(folder / "sweep.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_index_columns_statuses_and_killed_jobs(tmp_path):
    sweep_index.record_sweep(tmp_path, ["optimizer.lr"])
    jobs = [
        ("0_a", {"optimizer.lr": "0.1", "seed": "3", "device": "cpu"}),
        ("1_b", {"optimizer.lr": "1.0", "seed": "3", "device": "cpu"}),
    ]
    for num, (name, overrides) in enumerate(jobs):
        sweep_index.record_job(tmp_path, num, overrides, tmp_path / name)
    (tmp_path / "0_a").mkdir()
    runs.write_json(
        tmp_path / "0_a" / "summary.json",
        {
            "status": "interrupted",
            "monitor": "val_loss",
            "best_val_loss": 0.5,
            "seed": 3,
            "epochs_run": 4,
        },
    )
    columns, rows = sweep_index.index_rows(tmp_path)
    assert columns[:4] == ["job", "optimizer.lr", "seed", "status"] and "device" not in columns
    assert rows[0]["best_val_loss"] == 0.5 and "after epoch 4" in rows[0]["error"]
    assert rows[1]["status"] == "running"  # started, no summary yet
    _, rows = sweep_index.write_index(tmp_path, final="killed")
    assert rows[1]["status"] == "killed" and rows[1]["status"] in runs.BROKEN
    assert [row["status"] for row in read_index(tmp_path)] == ["interrupted", "killed"]


def test_an_optuna_table_fits_80_columns_without_cutting_a_number(tmp_path, monkeypatch, capsys):
    """Four searched keys at full precision, as Optuna's sweeper passes them."""
    import random

    monkeypatch.setenv("COLUMNS", "80")
    sweep_index.record_sweep(
        tmp_path, ["optimizer.lr", "optimizer.weight_decay", "model.width", "model.depth"]
    )
    rng = random.Random(0)
    for job in range(6):
        overrides = {
            "optimizer.lr": repr(10 ** rng.uniform(-4, -1)),  # 0.0012345678901234...
            "optimizer.weight_decay": repr(10 ** rng.uniform(-6, -2)),
            "model.width": str(rng.choice([64, 128, 256, 512])),
            "model.depth": str(rng.randint(1, 4)),
        }
        folder = tmp_path / f"{job}_trial"
        sweep_index.record_job(tmp_path, job, overrides, folder)
        folder.mkdir()
        summary = {"status": "completed", "seed": 0, "best_val_loss": rng.uniform(1, 2)}
        summary |= {
            "test_acc": rng.uniform(0.3, 0.7),
            "test_loss": 1.5,
            "wall_s": 12.345,
            "n_params": 1000,
        }
        runs.write_json(folder / "summary.json", summary)
    columns, rows = sweep_index.write_index(tmp_path)
    sweep_index.print_table(tmp_path, columns, rows)
    lines = capsys.readouterr().out.splitlines()
    assert all(len(line.rstrip()) <= 80 for line in lines), lines
    assert not any("…" in line for line in lines)  # nothing cut
    header = lines[1].split()
    assert header[:5] == ["job", "lr", "weight_decay", "width", "depth"]
    assert {"best_val_loss", "test_acc"} <= set(header)
    for row in rows:  # every searched value, whole, at 4 significant digits
        line = next(line for line in lines if line.split()[:1] == [str(row["job"])])
        assert f"{float(row['optimizer.lr']):.4g}" in line.split()
        assert f"{row['best_val_loss']:.4g}" in line.split()
