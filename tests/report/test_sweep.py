"""The sweep plot: a metric against the swept settings (dlrun/report/sweep.py)."""

from __future__ import annotations

import numpy as np

from dlrun.report.sweep import plot_sweep
from dlrun.results.load import load_runs
from dlrun.results.study import make_study

from synthetic_runs import (
    classification_metrics,
    summary_from,
    write_run,
)


def lines_with(ax, prefix: str) -> list:
    return [line for line in ax.get_lines() if (line.get_gid() or "").startswith(prefix)]


def test_sweep_plot_mean_and_std_over_seeds_with_log_axis(tmp_path):
    rates = [1e-4, 1e-3, 1e-2, 1e-1]
    for i, (lr, seed) in enumerate((lr, s) for lr in rates for s in range(2)):
        metrics = classification_metrics(5)
        summary = summary_from(
            metrics, "completed", test_acc=0.5 + 0.1 * rates.index(lr) + 0.02 * seed
        )
        write_run(tmp_path / f"{i}", {"optimizer.lr": lr, "seed": seed}, metrics, summary)
    study = make_study(load_runs([tmp_path]))
    fig = plot_sweep(study)
    (ax,) = fig.axes
    assert (
        ax.get_xscale() == "log"
        and ax.get_xlabel() == "optimizer.lr"
        and ax.get_ylabel() == "test accuracy"
    )
    (line,) = lines_with(ax, "sweep:optimizer.lr")
    np.testing.assert_allclose(line.get_xdata(), rates)
    np.testing.assert_allclose(line.get_ydata(), [0.51, 0.61, 0.71, 0.81])


def test_sweep_plot_groups_lines_by_a_categorical_setting(tmp_path):
    """optimizer x lr x 2 seeds: the lr panel has one line per optimizer; --group picks the lines."""
    for i, (name, lr, seed) in enumerate(
        (n, lr, s) for n in ("sgd", "adam") for lr in (0.01, 0.1) for s in range(2)
    ):
        metrics = classification_metrics(5)
        summary = summary_from(
            metrics, "completed", test_acc=(0.6 if name == "adam" else 0.5) + lr + 0.01 * seed
        )
        write_run(
            tmp_path / f"{i}",
            {"optimizer.name": name, "optimizer.lr": lr, "seed": seed},
            metrics,
            summary,
        )
    study = make_study(load_runs([tmp_path]))
    assert study.keys == ["optimizer.name", "optimizer.lr"]
    (ax,) = plot_sweep(study).axes
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == [
        "optimizer=adam (n=2)",
        "optimizer=sgd (n=2)",
    ]
    (adam,) = lines_with(ax, "sweep:optimizer.lr:optimizer=adam")
    np.testing.assert_allclose(adam.get_ydata(), [0.615, 0.705])


def test_group_option_picks_the_lines_and_averages_the_rest(tmp_path):
    for i, (name, lr, width) in enumerate(
        (n, lr, w) for n in ("sgd", "adam") for lr in (0.01, 0.1) for w in (32, 64)
    ):
        metrics = classification_metrics(5)
        summary = summary_from(
            metrics, "completed", test_acc=(0.6 if name == "adam" else 0.5) + lr + width / 6400
        )
        write_run(
            tmp_path / f"{i}",
            {"optimizer.name": name, "optimizer.lr": lr, "model.width": width},
            metrics,
            summary,
        )
    study = make_study(load_runs([tmp_path]))
    lr_ax = plot_sweep(study).axes[1]
    assert (
        lr_ax.get_xlabel() == "optimizer.lr" and len(lines_with(lr_ax, "sweep:")) == 4
    )  # optimizer x width
    lr_ax = plot_sweep(study, group="optimizer.name").axes[1]
    (adam,) = lines_with(lr_ax, "sweep:optimizer.lr:optimizer=adam")
    np.testing.assert_allclose(adam.get_ydata(), [0.6175, 0.7075])  # mean over both widths
    assert len(lines_with(lr_ax, "sweep:")) == 2


def test_settings_dots_take_the_colours_of_the_learning_curves(tmp_path):
    from dlrun.report.curves import plot_curves

    names = ["sgd", "adam", "momentum"]
    for i, (name, seed) in enumerate((n, s) for n in names for s in range(2)):
        metrics = classification_metrics(5)
        summary = summary_from(
            metrics, "completed", test_acc=0.3 + 0.1 * names.index(name) + 0.01 * seed
        )
        write_run(tmp_path / f"{i}", {"optimizer.name": name, "seed": seed}, metrics, summary)
    study = make_study(load_runs([tmp_path]))
    (dots,) = plot_sweep(study).axes  # no numeric key: the dot plot
    curves = plot_curves(study).axes[0]
    for name in names:
        (diamond,) = lines_with(dots, f"setting:optimizer={name}")
        (curve,) = lines_with(curves, f"train_loss:optimizer={name}")
        assert diamond.get_color() == curve.get_color(), name
