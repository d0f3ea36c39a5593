"""Bias–variance: error against size with the interpolation threshold, and the measured decomposition."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dlrun.report.bias_variance import (
    decomposition,
    interpolation_threshold,
    plot_bias_variance,
    size_stats,
    supports_bias_variance,
)
from dlrun.report.double_descent import threshold_findings
from dlrun.results.load import load_runs
from dlrun.results.study import make_study

from synthetic_runs import (
    classification_metrics,
    regression_metrics,
    summary_from,
    write_run,
)

WIDTHS = [2, 4, 8, 16, 32, 64]
# Training error reaches ~0 at width 16 (mean 0.005 over seeds); test error peaks there
# (double descent) and falls again for wider models.
TRAIN_ERROR = {2: 0.4, 4: 0.2, 8: 0.05, 16: 0.005, 32: 0.0, 64: 0.0}
TEST_ERROR = {2: 0.45, 4: 0.35, 8: 0.3, 16: 0.5, 32: 0.3, 64: 0.25}
SEED_OFFSET = [-0.004, 0.0, 0.004]


def n_params(width: int) -> int:
    return 40 * width + width * width + 10 * width + 10  # a 2-layer MLP on 40 inputs, 10 classes


@pytest.fixture
def width_sweep(tmp_path):
    for i, (width, seed) in enumerate((w, s) for w in WIDTHS for s in range(3)):
        metrics = classification_metrics(10)
        offset = SEED_OFFSET[seed] if TRAIN_ERROR[width] > 0 else 0.0
        summary = summary_from(
            metrics,
            "completed",
            n_params=n_params(width),
            train_acc=1 - TRAIN_ERROR[width] - offset,
            test_acc=1 - TEST_ERROR[width] - 2 * offset,
        )
        write_run(
            tmp_path / f"{i}_model.width={width},seed={seed}",
            {"model.width": width, "seed": seed},
            metrics,
            summary,
        )
    return tmp_path


def data_line(ax, gid: str):
    (line,) = [line for line in ax.get_lines() if line.get_gid() == gid]
    return line


def test_width_sweep_plots_errors_against_size_with_the_threshold_marked(width_sweep):
    study = make_study(load_runs([width_sweep]))
    assert supports_bias_variance(study, None)
    fig = plot_bias_variance(study)
    ax = fig.axes[0]
    sizes = [n_params(w) for w in WIDTHS]
    train, test = data_line(ax, "train_error:all runs"), data_line(ax, "test_error:all runs")
    np.testing.assert_allclose(train.get_xdata(), sizes)
    np.testing.assert_allclose(train.get_ydata(), [TRAIN_ERROR[w] for w in WIDTHS], atol=1e-12)
    np.testing.assert_allclose(test.get_ydata(), [TEST_ERROR[w] for w in WIDTHS], atol=1e-12)
    threshold = data_line(ax, "interpolation_threshold")
    assert list(threshold.get_xdata()) == [n_params(16), n_params(16)]
    assert ax.get_xscale() == "log"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("parameters (count)", "error (1 − accuracy)")
    texts = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert texts == ["training error (n=3)", "test error (n=3)"]
    assert any("interpolation threshold" in t.get_text() for t in ax.texts)


def test_threshold_follows_the_x_option_and_the_threshold_option(width_sweep):
    study = make_study(load_runs([width_sweep]))
    ax = plot_bias_variance(study, x="model.width").axes[0]
    assert ax.get_xlabel() == "model.width"
    assert data_line(ax, "interpolation_threshold").get_xdata()[0] == 16
    ax = plot_bias_variance(study, x="model.width", threshold=0.1).axes[0]
    assert data_line(ax, "interpolation_threshold").get_xdata()[0] == 8
    (sentence,) = threshold_findings(study, "model.width")
    assert "first reaches ≤ 0.01 at model.width=16" in sentence
    # the peak after the first minimum (width 8), not the underfit smallest model (width 2)
    assert "falls to 0.3 at model.width=8, peaks at 0.5 at model.width=16" in sentence
    assert "falls again to 0.25 at model.width=64: double descent" in sentence


def test_no_threshold_when_no_size_interpolates(width_sweep):
    study = make_study(load_runs([width_sweep]))
    ax = plot_bias_variance(study, threshold=-1.0).axes[0]
    assert not [line for line in ax.get_lines() if line.get_gid() == "interpolation_threshold"]
    assert threshold_findings(study, None, -1.0)[0].startswith(
        "No model size reaches training error ≤ -1; the lowest is 0"
    )


def true_function(x: np.ndarray) -> np.ndarray:
    return np.sin(2 * np.pi * x) + x


@pytest.fixture
def regression_sweep(tmp_path):
    """3 sizes x 4 seeds of predictions on a fixed grid: the small model biased, the big one noisy."""
    rng = np.random.default_rng(0)
    grid = np.linspace(-1, 1, 201)
    f = true_function(grid)
    saved = {}
    for i, (width, seed) in enumerate((w, s) for w in (4, 16, 64) for s in range(4)):
        shift = {4: 0.5 * np.cos(3 * grid), 16: 0.1 * grid, 64: 0.0}[width]
        wiggle = {4: 0.05, 16: 0.1, 64: 0.3}[width]
        y_pred = (f + shift + wiggle * rng.standard_normal(201)).astype(np.float32)[:, None]
        saved.setdefault(width, []).append(y_pred)
        metrics = regression_metrics(8)
        summary = summary_from(metrics, "completed", task="regression", n_params=3 * width * width)
        predictions = {"x": grid, "y_pred": y_pred, "f_true": f, "noise_std": np.array(0.3)}
        write_run(
            tmp_path / f"{i}",
            {"data.name": "regression", "model.width": width, "seed": seed},
            metrics,
            summary,
            predictions=predictions,
        )
    return tmp_path, f, saved


def test_decomposition_matches_numpy_on_the_saved_predictions(regression_sweep):
    folder, f, saved = regression_sweep
    study = make_study(load_runs([folder]))
    assert study.task == "regression" and study.metric == "test_loss"
    parts = decomposition(study, "model.width").set_index("x")
    for width, preds in saved.items():
        y = np.stack([p[:, 0].astype(np.float64) for p in preds])  # (seeds, grid)
        bias2 = np.mean((y.mean(axis=0) - f) ** 2)
        variance = np.mean(np.mean((y - y.mean(axis=0)) ** 2, axis=0))
        row = parts.loc[width]
        assert row["bias2"] == pytest.approx(bias2, rel=1e-9)
        assert row["variance"] == pytest.approx(variance, rel=1e-9)
        assert row["noise"] == pytest.approx(0.09)
        # bias² + variance is the seeds' mean squared error against the true function
        assert row["bias2"] + row["variance"] == pytest.approx(np.mean((y - f) ** 2), rel=1e-9)
        assert row["total"] == pytest.approx(np.mean((y - f) ** 2) + 0.09, rel=1e-9)
        assert row["n"] == 4


def test_regression_figure_draws_the_u_curve(regression_sweep):
    folder, _, _ = regression_sweep
    study = make_study(load_runs([folder]))
    fig = plot_bias_variance(study, x="model.width")
    errors_ax, parts_ax = fig.axes[:2]
    assert errors_ax.get_ylabel() == "error (MSE, target units²)"
    labels = {line.get_label(): line for line in parts_ax.get_lines()}
    assert {"bias²", "variance", "noise (σ²)", "bias² + variance + noise"} <= set(labels)
    parts = decomposition(study, "model.width")
    np.testing.assert_allclose(labels["bias²"].get_ydata(), parts["bias2"])
    np.testing.assert_allclose(labels["variance"].get_ydata(), parts["variance"])
    np.testing.assert_allclose(
        labels["bias² + variance + noise"].get_ydata(), parts["bias2"] + parts["variance"] + 0.09
    )
    assert np.all(np.diff(parts["variance"]) > 0)  # the wider models were made noisier


def test_no_bias_variance_figure_without_a_size_sweep(tmp_path):
    for seed in range(3):
        metrics = classification_metrics(5)
        write_run(
            tmp_path / f"{seed}",
            {"optimizer.name": ["sgd", "adam", "adam"][seed], "seed": seed},
            metrics,
            summary_from(metrics, "completed"),
        )
    assert not supports_bias_variance(make_study(load_runs([tmp_path])), None)


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
