"""Convergence rates: steps_to_target against a swept parameter, slopes on log-log axes."""

from __future__ import annotations

import numpy as np
import pytest

from dlrun.report.figures import plan
from dlrun.report.rates import plot_rates, rate_axis, rate_findings
from dlrun.results.load import load_runs
from dlrun.results.study import make_study

from synthetic_runs import classification_metrics, summary_from, write_run

KAPPAS = [10.0, 100.0, 1000.0, 10000.0]
# steps = c * kappa^p: gradient descent p = 1, momentum p = 0.5 (with seed jitter of 1 step)
STEPS = {"sgd": (3.0, 1.0), "momentum": (4.0, 0.5)}


def mean_steps(name: str) -> list[float]:
    c, p = STEPS[name]
    return [round(c * k**p) + 0.5 for k in KAPPAS]  # seeds 0 and 1 add 0 and 1 step


def slope(name: str) -> float:
    return float(np.polyfit(np.log(KAPPAS), np.log(mean_steps(name)), 1)[0])


@pytest.fixture
def kappa_sweep(tmp_path):
    job = 0
    for name, (c, p) in STEPS.items():
        for kappa in KAPPAS:
            for seed in (0, 1):
                metrics = classification_metrics(5)
                summary = {
                    **summary_from(metrics, "completed"),
                    "steps_to_target": round(c * kappa**p) + seed,
                }
                overrides = {"optimizer.name": name, "data.condition": kappa, "seed": seed}
                # the textbook step size depends on kappa too: a numeric key spanning less
                overrides["optimizer.lr"] = float(
                    1.0 + 0.1 * np.log10(kappa) * (name == "momentum")
                )
                write_run(tmp_path / f"{job}", overrides, metrics, summary)
                job += 1
    return tmp_path


def test_rates_plot_steps_against_the_key_spanning_decades_with_fitted_slopes(kappa_sweep):
    study = make_study(load_runs([kappa_sweep]), "steps_to_target")
    assert rate_axis(study) == "data.condition"
    assert "rates" in [p.name for p in plan(study)]
    fig = plot_rates(study)
    ax = fig.axes[0]
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert ax.get_xlabel() == "data.condition"
    lines = {line.get_gid(): line for line in ax.get_lines() if line.get_gid()}
    assert set(lines) == {"steps:optimizer=sgd", "steps:optimizer=momentum"}
    sgd = lines["steps:optimizer=sgd"]
    np.testing.assert_allclose(sgd.get_xdata(), KAPPAS)
    np.testing.assert_allclose(sgd.get_ydata(), mean_steps("sgd"))
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert f"optimizer=sgd (slope {slope('sgd'):.2f})" in labels
    assert f"optimizer=momentum (slope {slope('momentum'):.2f})" in labels
    assert abs(slope("sgd") - 1) < 0.01 and abs(slope("momentum") - 0.5) < 0.02


def test_rate_findings_name_the_slopes_and_the_speedup(kappa_sweep):
    study = make_study(load_runs([kappa_sweep]), "steps_to_target")
    (sentence,) = rate_findings(study)
    assert f"optimizer=momentum: {slope('momentum'):.2f}" in sentence
    assert f"optimizer=sgd: {slope('sgd'):.2f}" in sentence
    expected = mean_steps("sgd")[-1] / mean_steps("momentum")[-1]
    assert f"needs {expected:.0f}x fewer steps" in sentence


def test_no_rates_without_steps_to_target(tmp_path):
    for seed in (0, 1):
        metrics = classification_metrics(5)
        write_run(tmp_path / str(seed), {"seed": seed}, metrics, summary_from(metrics, "completed"))
    study = make_study(load_runs([tmp_path]))
    assert rate_axis(study) is None and rate_findings(study) == []
