"""runs.csv and the settings table (dlrun/report/tables.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from synthetic_runs import (
    write_classification_run,
)


@pytest.fixture
def optimizer_sweep(tmp_path):
    """3 optimizers x 3 seeds; each optimizer's curves end at its own level, seeds jitter."""
    ends = {"sgd": 0.9, "momentum": 0.6, "adam": 0.3}
    for i, (name, seed) in enumerate((n, s) for n in OPTIMIZERS for s in range(3)):
        overrides = {"optimizer.name": name, "optimizer.lr": OPTIMIZERS[name], "seed": seed}
        write_classification_run(
            tmp_path / f"{i}_optimizer={name},seed={seed}",
            overrides,
            epochs=15,
            train_end=ends[name],
            val_end=ends[name] + 0.2,
            jitter=0.02,
            seed=seed,
        )
    return tmp_path


OPTIMIZERS = {"sgd": 0.05, "momentum": 0.02, "adam": 0.001}


def test_runs_csv_has_one_row_per_run_with_flat_config(optimizer_sweep):
    from dlrun.report.cli import main

    assert main([str(optimizer_sweep)]) == 0
    frame = pd.read_csv(optimizer_sweep / "report" / "runs.csv")
    assert len(frame) == 9
    assert {
        "optimizer.name",
        "optimizer.lr",
        "model.width",
        "seed",
        "status",
        "test_acc",
        "n_params",
    } <= set(frame.columns)
    assert frame["test_acc"].is_monotonic_decreasing  # best first
    assert set(frame.loc[frame["optimizer.name"] == "sgd", "optimizer.lr"]) == {0.05}
    # booleans as YAML spells them, in runs.csv and the page (pandas reads them back as bools)
    text = (optimizer_sweep / "report" / "runs.csv").read_text()
    assert ",false," in text and ",False," not in text and ",True," not in text
    assert frame["trainer.shuffle"].dtype == bool
    page = (optimizer_sweep / "report" / "index.html").read_text()
    assert ">False<" not in page and ">True<" not in page


def test_the_summary_rounds_every_mean_to_its_seed_spread(optimizer_sweep):
    from dlrun.report.tables import settings_frame
    from dlrun.results.load import load_runs
    from dlrun.results.study import format_mean, make_study

    study = make_study(load_runs([optimizer_sweep]))
    frame = settings_frame(study).set_index("setting")
    runs = study.usable[study.usable["setting"] == "optimizer=adam"]
    loss = runs["train_loss"]
    assert frame.loc["optimizer=adam", "training loss"] == format_mean(loss.mean(), loss.std())
