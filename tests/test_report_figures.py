"""Which figures a set of runs gets (dlrun/report/figures.py)."""

from __future__ import annotations

from dlrun.report.curves import plot_curves
from dlrun.report.load import load_runs
from dlrun.report.study import make_study

from synthetic_runs import (
    write_classification_run,
)


def lines_with(ax, prefix: str) -> list:
    return [line for line in ax.get_lines() if (line.get_gid() or "").startswith(prefix)]


def test_single_run_gets_curves_gap_and_layers_only(tmp_path):
    from dlrun.report.figures import plan

    write_classification_run(tmp_path / "run", epochs=12)
    study = make_study(load_runs([tmp_path / "run"]))
    assert [p.name for p in plan(study)] == ["curves", "gap", "layers"]
    fig = plot_curves(study)
    assert [ax.get_title() for ax in fig.axes] == [
        "Loss: training and validation",
        "Accuracy: training and validation",
    ]
    assert (
        len(lines_with(fig.axes[0], "train_loss:"))
        == len(lines_with(fig.axes[0], "val_loss:"))
        == 1
    )
    assert lines_with(fig.axes[0], "train_loss:")[0].get_linestyle() == "--"
    assert len(lines_with(fig.axes[0], "best_epoch_line")) == 1
    # best_epoch of the summary: where val loss was lowest (the end, for a falling curve)
    (marker,) = lines_with(fig.axes[0], "best_epoch:")
    assert marker.get_xdata()[0] == study.table["best_epoch"].iloc[0] == 12
