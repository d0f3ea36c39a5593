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
