"""Per-layer figures from layers.csv (dlrun/report/layers.py)."""

from __future__ import annotations

import numpy as np

from dlrun.report.layers import plot_layers
from dlrun.results.load import load_runs
from dlrun.results.study import make_study

from synthetic_runs import (
    classification_metrics,
    layer_rows,
    summary_from,
    write_run,
)


def legend_texts(fig) -> list[str]:
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def lines_with(ax, prefix: str) -> list:
    return [line for line in ax.get_lines() if (line.get_gid() or "").startswith(prefix)]


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


def test_gradient_heatmaps_share_one_colour_scale(tmp_path):
    for i, scale in enumerate((1.0, 100.0)):  # the second setting's gradients are 100x larger
        metrics = classification_metrics(4, val_end=0.3 + 0.1 * i)
        rows = layer_rows(4)
        rows["grad_norm"] *= scale
        write_run(
            tmp_path / f"{i}",
            {"init.name": ["he", "xavier"][i]},
            metrics,
            summary_from(metrics, "completed"),
            rows,
        )
    fig = plot_layers(make_study(load_runs([tmp_path])))
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert len(images) == 2
    norms = {(im.norm.vmin, im.norm.vmax) for im in images}
    assert len(norms) == 1  # one colour means one gradient norm in both panels
    grads = [load_runs([tmp_path]).layers["grad_norm"]]
    assert norms.pop() == (min(g.min() for g in grads), max(g.max() for g in grads))
    colorbars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(colorbars) == 1


def init_runs(folder, stds: dict[str, list[float]], accs: dict[str, float]):
    for i, init in enumerate(stds):
        metrics = classification_metrics(4)
        summary = summary_from(metrics, "completed") | {"test_acc": accs[init]}
        write_run(
            folder / f"{i}",
            {"init.name": init},
            metrics,
            summary,
            layer_rows(4, act_std=stds[init]),
        )
    return make_study(load_runs([folder]))


def test_the_settings_a_claim_names_always_get_a_heatmap(tmp_path):
    from dlrun.report.figures import named_settings
    from dlrun.report.layers import heatmap_settings

    accs = {"zeros": 0.1, "constant": 0.2, "xavier": 0.5, "he": 0.6, "lecun": 0.55}
    study = init_runs(tmp_path, {init: [0.5, 0.5, 0.5] for init in accs}, accs)
    best, total = heatmap_settings(study)
    assert total == 5 and "init=zeros" not in best  # the worst setting: not among the best 3
    claim = {"says": "x", "metric": "test_acc", "of": {"init": "zeros"}, "near": 0.1}

    class Claimed:  # what claims.decide.evaluate returns, as far as the figure reads it
        def __init__(self, claim):
            self.claim = claim

    named = named_settings([Claimed(claim)], study)
    assert named == ["init=zeros"]
    chosen, _ = heatmap_settings(study, named)
    assert "init=zeros" in chosen and len(chosen) == 3
    fig = plot_layers(study, named)
    assert any("init=zeros" in ax.get_title() for ax in fig.axes)


def test_activation_stds_spanning_decades_get_a_log_axis_with_zeros_on_its_floor(tmp_path):
    stds = {"zeros": [0.0, 0.0, 0.0], "normal": [1e-3, 1e-8, 1e-13], "he": [0.8, 0.8, 0.8]}
    study = init_runs(tmp_path, stds, {"zeros": 0.1, "normal": 0.1, "he": 0.6})
    fig = plot_layers(study)
    act_ax = next(ax for ax in fig.axes if ax.get_title().startswith("Activation std"))
    assert act_ax.get_yscale() == "log"
    lines = {line.get_gid(): line for line in lines_with(act_ax, "act_std:")}
    np.testing.assert_allclose(lines["act_std:init=zeros"].get_ydata(), [1e-14] * 3)  # the floor
    np.testing.assert_allclose(lines["act_std:init=normal"].get_ydata(), stds["normal"])
    assert "init=zeros (n=1), 0 drawn at the axis floor" in legend_texts(fig)
    close = init_runs(
        tmp_path / "close", {"a": [0.5, 0.4, 0.3], "b": [0.8, 0.8, 0.8]}, {"a": 0.1, "b": 0.2}
    )
    act_ax = next(ax for ax in plot_layers(close).axes if ax.get_title().startswith("Activation"))
    assert act_ax.get_yscale() == "linear"  # within 30x: a linear axis reads best
