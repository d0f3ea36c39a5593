"""Which figures a set of runs gets (dlrun/report/figures.py)."""

from __future__ import annotations

from dlrun.report.curves import plot_curves
from dlrun.results.load import load_runs
from dlrun.results.study import make_study

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


def optimizer_runs(folder, names=("sgd", "adam"), seeds=2, epochs=8):
    for i, (name, seed) in enumerate((n, s) for n in names for s in range(seeds)):
        write_classification_run(
            folder / f"{i}_optimizer={name},seed={seed}",
            {"optimizer.name": name, "seed": seed},
            epochs=epochs,
            val_end=0.3 + 0.2 * (name == "sgd"),
            jitter=0.02,
            seed=seed,
        )
    return make_study(load_runs([folder]))


def test_captions_describe_the_layout_each_figure_has(tmp_path):
    from dlrun.report.figures import plan
    from dlrun.report.layers import plot_layers

    write_classification_run(tmp_path / "one" / "run", epochs=6)
    single = {p.name: p for p in plan(make_study(load_runs([tmp_path / "one"])))}
    # one setting: training dashed and validation solid in one panel, layers side by side
    assert "training (dashed) and validation (solid)" in single["curves"].caption
    assert single["layers"].caption.startswith("Left: gradient norm per layer")
    assert (
        lines_with(plot_curves(make_study(load_runs([tmp_path / "one"]))).axes[0], "train_loss:")[
            0
        ].get_linestyle()
        == "--"
    )

    study = optimizer_runs(tmp_path / "sweep")
    several = {p.name: p for p in plan(study)}
    fig = plot_curves(study)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:2] == ["Loss: training", "Loss: validation"]  # panels split, lines solid
    assert all(line.get_linestyle() == "-" for ax in fig.axes for line in lines_with(ax, "train_"))
    assert "dashed" not in several["curves"].caption
    assert "training on the left, validation on the right" in several["curves"].caption
    # two heatmaps on top, the activation panel below: the caption says so
    layers = plot_layers(study)
    heat = [ax for ax in layers.axes if ax.get_images()]
    act = next(ax for ax in layers.axes if ax.get_title().startswith("Activation std"))
    assert len(heat) == 2 and all(ax.get_position().y0 > act.get_position().y1 for ax in heat)
    assert several["layers"].caption.startswith("Top: gradient norm per layer")
    assert "Bottom: activation std" in several["layers"].caption


def test_the_optimizer_figure_is_not_the_training_loss_panel_again(tmp_path):
    from dlrun.report.curves import plot_optimizers

    study = optimizer_runs(tmp_path)
    curves = plot_curves(study)
    train_panel = next(ax for ax in curves.axes if ax.get_title() == "Loss: training")
    (ax,) = plot_optimizers(study).axes
    for name in ("sgd", "adam"):
        (curve,) = lines_with(train_panel, f"train_loss:optimizer={name}")
        (line,) = lines_with(ax, f"optimizer:{name}")
        assert list(line.get_ydata()) == list(curve.get_ydata())  # the same losses...
        assert list(line.get_xdata()) != list(curve.get_xdata())  # ...against time, not epoch
    assert ax.get_xlabel() == "seconds of training (median over seeds)"


def no_validation_runs(folder, epochs=6):
    """Runs of the MNIST-1D paper's protocol (data.val_fraction=0): no validation numbers."""
    import numpy as np

    from synthetic_runs import classification_metrics, layer_rows, summary_from, write_run

    for i, model in enumerate(("logistic", "resmlp")):
        metrics = classification_metrics(epochs, train_end=0.3 + 0.3 * i)
        metrics[["val_loss", "val_acc"]] = np.nan
        summary = summary_from(metrics, "completed") | {"best_epoch": None, "best_val_loss": None}
        summary |= {"test_acc": 0.3 + 0.3 * i, "val_loss": None, "val_acc": None}
        write_run(folder / f"{i}", {"model.name": model}, metrics, summary, layer_rows(epochs))
    return make_study(load_runs([folder]))


def test_without_a_validation_split_nothing_empty_is_drawn(tmp_path):
    from dlrun.report.figures import plan
    from dlrun.report.tables import settings_frame

    study = no_validation_runs(tmp_path)
    assert not study.validated
    planned = {p.name: p for p in plan(study)}
    assert planned["gap"].draw is None and "no validation split" in planned["gap"].caption
    assert "\n" not in planned["gap"].caption
    fig = planned["curves"].draw()
    assert [ax.get_title() for ax in fig.axes] == ["Loss: training", "Accuracy: training"]
    for ax in fig.axes:  # every panel has its lines, drawn solid: nothing to tell them from
        lines = lines_with(ax, "train_")
        assert len(lines) == 2 and {line.get_linestyle() for line in lines} == {"-"}
        assert not lines_with(ax, "best_epoch")
    assert "no validation split" in planned["curves"].caption
    assert "best epoch (median)" not in settings_frame(study)  # an empty column is left out


def test_the_page_says_which_figure_was_left_out_and_why(tmp_path):
    from dlrun.report.cli import main

    no_validation_runs(tmp_path / "sweep")
    assert main([str(tmp_path / "sweep")]) == 0
    out = tmp_path / "sweep" / "report"
    page = (out / "index.html").read_text()
    assert '<figure id="gap">' not in page and not (out / "gap.png").exists()
    assert "No generalisation-gap figure: these runs have no validation split" in page
    assert '<figure id="curves">' in page


def test_every_figure_is_drawn_under_the_one_style_file():
    # a figure sets no font size of its own: the style file's sizes hold for all
    import re
    from pathlib import Path

    import dlrun.report as report
    from dlrun.report.style import STYLE

    assert STYLE.is_file() and "font.size" in STYLE.read_text()
    for path in Path(report.__file__).parent.glob("*.py"):
        text = path.read_text()
        assert not re.search(r"fontsize=\d", text), path.name
        assert not re.search(r"rcParams\[|rc_context\(", text), path.name
