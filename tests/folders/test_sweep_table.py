"""The table at the end of a sweep (dlrun/folders/sweep_table.py)."""

from __future__ import annotations

from dlrun.folders import runs, sweep_index, sweep_table


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
    sweep_table.print_table(tmp_path, columns, rows)
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


def test_without_a_validation_split_the_table_ranks_by_the_test_score_it_names(tmp_path, capsys):
    # experiment=mnist1d_table's protocol (data.val_fraction=0): best_val_loss is empty
    sweep_index.record_sweep(tmp_path, ["data.shuffle_positions"])
    for job, (shuffle, acc) in enumerate([("False", 0.6), ("True", 0.9)]):
        folder = tmp_path / f"{job}_job"
        sweep_index.record_job(tmp_path, job, {"data.shuffle_positions": shuffle}, folder)
        folder.mkdir()
        summary = {"status": "completed", "seed": 0, "best_val_loss": None, "test_acc": acc}
        runs.write_json(folder / "summary.json", summary)
    columns, rows = sweep_index.write_index(tmp_path)
    assert sweep_table.ranked(rows)[0] == "test_acc"
    sweep_table.print_table(tmp_path, columns, rows)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].strip() == "2 jobs, best test_acc first"
    assert lines[2].split()[:2] == ["1", "true"] and lines[3].split()[:2] == ["0", "false"]
