"""Settings, the ranking metric and seed aggregates (dlrun/results/study.py)."""

from __future__ import annotations

import pytest

from dlrun.report.curves import plot_curves
from dlrun.results.load import load_runs
from dlrun.results.study import format_value, label, make_study, mean_std

from synthetic_runs import (
    classification_metrics,
    summary_from,
    write_classification_run,
    write_run,
)


def lines_with(ax, prefix: str) -> list:
    return [line for line in ax.get_lines() if (line.get_gid() or "").startswith(prefix)]


def write(folder, overrides):
    metrics = classification_metrics(5)
    return write_run(folder, overrides, metrics, summary_from(metrics, "completed"))


def test_many_settings_are_capped_to_the_best(tmp_path):
    for i, width in enumerate(range(10, 210, 10)):  # 20 settings
        write_classification_run(
            tmp_path / f"{i}", {"model.width": width}, epochs=5, val_end=1.0 - width / 400
        )
    study = make_study(load_runs([tmp_path]))
    fig = plot_curves(study)
    val_ax = next(ax for ax in fig.axes if ax.get_title() == "Loss: validation")
    assert len(lines_with(val_ax, "val_loss:")) == 8
    assert any("best 8 of 20 settings" in t.get_text() for t in fig.axes[0].texts)
    drawn = {line.get_gid().split(":")[1] for line in lines_with(val_ax, "val_loss:")}
    assert drawn == {f"model.width={w}" for w in range(130, 210, 10)}  # the lowest val loss


def test_a_key_swept_over_null_and_a_value_is_a_setting(tmp_path):
    for job, patience in enumerate([None, 20, None, 20]):
        write(tmp_path / str(job), {"trainer.early_stopping.patience": patience, "seed": job // 2})
    study = make_study(load_runs([tmp_path]))
    assert study.keys == ["trainer.early_stopping.patience"]
    assert set(study.table["setting"]) == {
        "trainer.early_stopping.patience=null",
        "trainer.early_stopping.patience=20",
    }
    assert set(study.ranked()["n"]) == {2}


def test_transfer_from_scratch_or_from_a_source_is_a_setting(tmp_path):
    write(tmp_path / "0", {"transfer.source": None})
    write(tmp_path / "1", {"transfer.source": "outputs/pretrained/a"})
    study = make_study(load_runs([tmp_path]))
    assert "transfer.source" in study.keys
    assert len(set(study.table["setting"])) == 2


def test_trackers_are_not_settings(tmp_path):
    from dlrun.results.load import load_runs
    from dlrun.results.study import make_study

    from synthetic_runs import write_classification_run

    write_classification_run(tmp_path / "a", {"logger.tensorboard": True, "optimizer.name": "sgd"})
    write_classification_run(tmp_path / "b", {"logger.mlflow": True, "optimizer.name": "adam"})
    assert make_study(load_runs([tmp_path])).keys == ["optimizer.name"]


@pytest.mark.parametrize(
    ("mean", "std", "text"),
    [
        (0.4138, 0.0114, "0.414 ± 0.011"),  # a std starting 100-354: two digits
        (0.402, 0.023, "0.402 ± 0.023"),
        (0.30567, 0.00058, "0.3057 ± 0.0006"),  # 355-949: one digit is all three seeds support
        (0.30567, 0.0097, "0.306 ± 0.010"),  # 950-999 rounds up to two digits of the next decade
        (12.34, 3.6, "12 ± 4"),
        (0.5, 0.0, "0.5"),  # no spread: the value alone
    ],
)
def test_a_mean_is_printed_to_the_precision_its_spread_supports(mean, std, text):
    assert mean_std(mean, std) == text


def test_booleans_are_spelled_as_yaml_and_as_typed():
    import numpy as np

    assert label({"data.shuffle_positions": True, "model.name": "gru"}) == (
        "data.shuffle_positions=true, model=gru"
    )
    assert format_value(np.bool_(False)) == "false" and format_value(None) == "null"
