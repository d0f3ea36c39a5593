"""dlrun report on synthetic run folders with known numbers: figures, tables, findings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dlrun.report.bias_variance import interpolation_threshold, size_stats
from dlrun.report.curves import plot_curves, plot_gap, plot_optimizers
from dlrun.report.findings import findings
from dlrun.report.layers import plot_layers
from dlrun.report.load import load_runs
from dlrun.report.study import make_study
from dlrun.report.sweep import plot_sweep
from dlrun.report.synthetic import (
    classification_metrics,
    layer_rows,
    summary_from,
    write_classification_run,
    write_run,
)

OPTIMIZERS = {"sgd": 0.05, "momentum": 0.02, "adam": 0.001}


def legend_texts(fig) -> list[str]:
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def lines_with(ax, prefix: str) -> list:
    return [line for line in ax.get_lines() if (line.get_gid() or "").startswith(prefix)]


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
    assert ax.get_xlabel() == "epoch" and "training loss" in ax.get_ylabel()
    assert len(lines_with(ax, "optimizer:")) == 3
    assert sorted(legend_texts(fig)) == ["adam (n=3)", "momentum (n=3)", "sgd (n=3)"]


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


def test_layers_heatmap_and_activations_per_init(tmp_path):
    stds = {"default": [0.3, 0.1, 0.03], "he": [0.8, 0.8, 0.8]}
    for i, (init, seed) in enumerate((n, s) for n in stds for s in range(2)):
        metrics = classification_metrics(6)
        write_run(
            tmp_path / f"{i}",
            {"init.name": init, "seed": seed},
            metrics,
            summary_from(metrics, "completed"),
            layer_rows(6, act_std=stds[init]),
        )
    fig = plot_layers(make_study(load_runs([tmp_path])))
    heatmaps = [im for ax in fig.axes for im in ax.get_images()]
    assert len(heatmaps) == 2 and heatmaps[0].get_array().shape == (3, 7)  # layers x epochs 0..6
    act_ax = next(ax for ax in fig.axes if ax.get_title().startswith("Activation std"))
    assert act_ax.get_xlabel().startswith("layer depth")
    lines = {line.get_gid(): line for line in lines_with(act_ax, "act_std:")}
    np.testing.assert_allclose(lines["act_std:init=he"].get_ydata(), stds["he"])
    np.testing.assert_allclose(lines["act_std:init=default"].get_ydata(), stds["default"])
    assert sorted(legend_texts(fig)) == ["init=default (n=2)", "init=he (n=2)"]


def test_findings_name_overfitting_diverged_and_edge(tmp_path):
    """lr sweep, 2 seeds: one overfitting run, one diverged run, the best lr the largest one."""
    rates = [1e-4, 1e-3, 1e-2]
    for i, (lr, seed) in enumerate((lr, s) for lr in rates for s in range(2)):
        overfit = {"overfit_from": 8, "overfit_slope": 0.05} if (lr, seed) == (1e-3, 1) else {}
        metrics = classification_metrics(25, **overfit)
        summary = summary_from(metrics, "completed", test_acc=0.5 + 20 * lr + 0.001 * seed)
        write_run(
            tmp_path / f"{i}_lr={lr},seed={seed}",
            {"optimizer.lr": lr, "seed": seed},
            metrics,
            summary,
        )
    metrics = classification_metrics(25, diverge_at=4)
    write_run(
        tmp_path / "6_lr=1.0,seed=0",
        {"optimizer.lr": 1.0, "seed": 0},
        metrics,
        summary_from(metrics, "diverged"),
    )

    text = "\n".join(findings(make_study(load_runs([tmp_path]))))
    assert "Best of 3 settings: optimizer.lr=0.01" in text
    assert (
        "Run 3_lr=0.001,seed=1 (optimizer.lr=0.001) overfit: validation loss bottomed out at epoch 8"
        in text
    )
    assert "Run 6_lr=1.0,seed=0 (optimizer.lr=1) diverged at epoch 4 (training loss nan)" in text
    assert (
        "at optimizer.lr=0.01, the largest value searched (0.0001 to 0.01): widen the range above 0.01"
        in text
    )
    # no other run overfits, and seed spreads (0.0007) are far below the lr differences
    assert text.count("overfit") == 1 and "seed spread" not in text


def test_findings_flag_differences_smaller_than_seed_spread(tmp_path):
    for i, (init, seed) in enumerate((n, s) for n in ("he", "xavier") for s in range(3)):
        metrics = classification_metrics(5)
        summary = summary_from(
            metrics, "completed", test_acc=0.80 + (0.005 if init == "he" else 0.0) + 0.05 * seed
        )
        write_run(tmp_path / f"{i}", {"init.name": init, "seed": seed}, metrics, summary)
    text = "\n".join(findings(make_study(load_runs([tmp_path]))))
    assert (
        "init=he and init=xavier differ by 0.005 in test accuracy, less than their seed spread"
        in text
    )


def test_interpolation_threshold_is_the_smallest_interpolating_size():
    # size 2 interpolates in one seed of two: its mean, 0.015, is what counts
    errs = pd.DataFrame(
        {
            "group": "all runs",
            "x": [1, 1, 2, 2, 3, 3],
            "train": [0.5, 0.4, 0.03, 0.0, 0.0, 0.0],
            "test": 0.3,
        }
    )
    stats = size_stats(errs)
    assert interpolation_threshold(stats, 0.01) == 3
    assert interpolation_threshold(stats, 0.02) == 2
    assert interpolation_threshold(stats.assign(train_mean=1.0), 0.01) is None
