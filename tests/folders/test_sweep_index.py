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


def test_a_job_stopped_before_it_began_is_counted_not_started_unless_it_ran_before(tmp_path):
    # issue 20: a stopped parallel sweep's queued jobs were "interrupted before training started"
    sweep_index.record_sweep(tmp_path, ["seed"], jobs=4)
    for num in range(4):
        sweep_index.record_job(tmp_path, num, {"seed": str(num)}, tmp_path / f"{num}_seed={num}")
        (tmp_path / f"{num}_seed={num}" / ".hydra").mkdir(parents=True)  # Hydra made it
    runs.write_json(tmp_path / "0_seed=0" / runs.SUMMARY, {"status": "completed", "seed": 0})
    runs.write_json(tmp_path / "1_seed=1" / runs.SUMMARY, {"status": "interrupted", "seed": 1})
    runs.write_json(tmp_path / "3_seed=3" / runs.SUMMARY, {"status": "failed", "seed": 3})
    sweep_index.forget_unstarted(tmp_path, 2, tmp_path / "2_seed=2")  # queued, never began
    sweep_index.forget_unstarted(tmp_path, 3, tmp_path / "3_seed=3")  # failed in a run before
    outcome = sweep_index.finish(tmp_path, runs.INTERRUPTED)
    assert outcome.counts() == {"completed": 1, "interrupted": 1, "failed": 1, "not started": 1}
    assert outcome.message.startswith("1 completed, 1 interrupted, 1 failed, 1 not started of 4")
    assert [row["job"] for row in read_index(tmp_path)] == ["0", "1", "3"]
