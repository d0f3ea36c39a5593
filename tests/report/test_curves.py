"""Learning curves, the generalisation gap and the optimizer comparison (dlrun/report/curves.py)."""

from __future__ import annotations

import numpy as np
import pytest

from dlrun.report.curves import plot_curves, plot_gap, plot_optimizers
from dlrun.results.load import load_runs
from dlrun.results.study import make_study

from synthetic_runs import (
    classification_metrics,
    summary_from,
    write_classification_run,
    write_run,
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


def legend_texts(fig) -> list[str]:
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def lines_with(ax, prefix: str) -> list:
    return [line for line in ax.get_lines() if (line.get_gid() or "").startswith(prefix)]


def test_optimizer_sweep_draws_one_band_per_optimizer_with_n_seeds(optimizer_sweep):
    study = make_study(load_runs([optimizer_sweep]))
    # optimizer.lr changes with the choice, so it is implied, not a setting of its own
    assert study.keys == ["optimizer.name"]
    assert len(study.table) == 9

    fig = plot_curves(study)
    axes = {ax.get_title(): ax for ax in fig.axes}
    assert fig.get_suptitle() == "Learning curves (mean ± std over seeds)"
    assert set(axes) == {
        "Loss: training",
        "Loss: validation",
        "Accuracy: training",
        "Accuracy: validation",
    }
    for title, ax in axes.items():
        column = ("train_" if title.endswith("training") else "val_") + (
            "loss" if title.startswith("Loss") else "acc"
        )
        assert ax.get_xlabel() == "epoch"
        assert ax.get_ylabel() == (
            "loss (cross-entropy)" if title.startswith("Loss") else "accuracy (fraction correct)"
        )
        assert len(lines_with(ax, f"{column}:")) == 3  # one line per optimizer...
        assert len(ax.collections) == 3  # ...each with its ± std band
    texts = legend_texts(fig)
    for name in OPTIMIZERS:
        assert f"optimizer={name} (n=3)" in texts

    # the drawn validation line is the mean over the three seeds
    runs = load_runs([optimizer_sweep])
    adam = runs.table.index[runs.table["optimizer.name"] == "adam"]
    expected = runs.metrics[runs.metrics["run"].isin(adam)].groupby("epoch")["val_loss"]
    (line,) = lines_with(axes["Loss: validation"], "val_loss:optimizer=adam")
    np.testing.assert_allclose(line.get_ydata(), expected.mean().to_numpy())
    (band,) = [
        c for c in axes["Loss: validation"].collections if c.get_gid() == "val_loss:optimizer=adam"
    ]
    upper = band.get_paths()[0].vertices[:, 1].max()
    assert upper == pytest.approx((expected.mean() + expected.std()).max())

    fig = plot_optimizers(study)
    (ax,) = fig.axes
    assert ax.get_yscale() == "log"
    assert "training loss" in ax.get_ylabel()
    assert len(lines_with(ax, "optimizer:")) == 3
    assert sorted(legend_texts(fig)) == ["adam (n=3)", "momentum (n=3)", "sgd (n=3)"]
    # not the learning curves' training panel again: loss against seconds of training
    assert ax.get_xlabel() == "seconds of training (median over seeds)"
    (line,) = lines_with(ax, "optimizer:adam")
    per_epoch = runs.metrics[runs.metrics["run"].isin(adam)].groupby("epoch")
    np.testing.assert_allclose(line.get_xdata(), per_epoch["time_s"].median().to_numpy())
    np.testing.assert_allclose(line.get_ydata(), per_epoch["train_loss"].mean().to_numpy())


def test_beside_the_optimizers_losses_is_the_turn_of_their_updates(optimizer_sweep):
    import pandas as pd

    # update_cos as the loop writes it: nan at the first epoch, then one cosine per epoch
    for i, path in enumerate(sorted(optimizer_sweep.glob("*/metrics.csv"))):
        frame = pd.read_csv(path)
        frame["update_cos"] = np.r_[np.nan, np.linspace(-0.9, 0.5, len(frame) - 1) + 0.01 * i]
        frame.to_csv(path, index=False, na_rep="nan")
    runs = load_runs([optimizer_sweep])
    fig = plot_optimizers(make_study(runs))
    loss_ax, turn_ax = fig.axes
    assert loss_ax.get_yscale() == "log" and turn_ax.get_ylim() == (-1.05, 1.05)
    (line,) = lines_with(turn_ax, "update_cos:optimizer=adam")
    adam = runs.table.index[runs.table["optimizer.name"] == "adam"]
    turns = runs.metrics[runs.metrics["run"].isin(adam)].groupby("epoch")["update_cos"].mean()
    np.testing.assert_allclose(line.get_xdata(), turns.dropna().index.to_numpy())
    np.testing.assert_allclose(line.get_ydata(), turns.dropna().to_numpy())
    assert len(lines_with(turn_ax, "update_cos:")) == 3


def test_gap_is_validation_minus_training(tmp_path):
    metrics = classification_metrics(10, train_end=0.1, val_end=0.5)
    write_run(tmp_path / "run", {}, metrics, summary_from(metrics, "completed"))
    fig = plot_gap(make_study(load_runs([tmp_path])))
    loss_ax, acc_ax = fig.axes[:2]
    (line,) = lines_with(loss_ax, "loss_gap:")
    np.testing.assert_allclose(line.get_ydata(), metrics["val_loss"] - metrics["train_loss"])
    (line,) = lines_with(acc_ax, "acc_gap:")
    np.testing.assert_allclose(line.get_ydata(), metrics["train_acc"] - metrics["val_acc"])
    assert loss_ax.get_ylabel() == "validation − training loss"


def test_optimizer_time_axis_is_the_median_over_seeds(optimizer_sweep):
    """A job slowed by other work on the machine does not stretch its optimizer's line."""
    import pandas as pd

    slow = next(optimizer_sweep.glob("*_optimizer=adam,seed=2")) / "metrics.csv"
    frame = pd.read_csv(slow)
    frame["time_s"] *= 10
    frame.to_csv(slow, index=False)
    runs = load_runs([optimizer_sweep])
    (ax,) = plot_optimizers(make_study(runs)).axes
    (line,) = lines_with(ax, "optimizer:adam")
    adam = runs.table.index[runs.table["optimizer.name"] == "adam"]
    times = runs.metrics[runs.metrics["run"].isin(adam)].groupby("epoch")["time_s"]
    np.testing.assert_allclose(line.get_xdata(), times.median().to_numpy())
    assert not np.allclose(line.get_xdata(), times.mean().to_numpy())
