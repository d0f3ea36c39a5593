"""Which figures the data supports, with their captions, and writing them to disk.

A single run gets curves, gap and layers; a sweep adds the sweep plot; a model
size sweep the bias–variance figure; several optimizers their comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from dlrun.folders.runs import atomic_write
from dlrun.report import html
from dlrun.report.bias_variance import DEFAULT_THRESHOLD, plot_bias_variance, supports_bias_variance
from dlrun.report.curves import curve_split, plot_curves, plot_gap, plot_optimizers
from dlrun.report.layers import heatmap_count, plot_layers, supports_layers
from dlrun.report.rates import plot_rates, rate_axis
from dlrun.report.style import to_bytes
from dlrun.report.sweep import plot_sweep
from dlrun.results.study import Study, numeric_keys

FORMATS = ("png", "svg", "pdf")
NAMES = ("curves", "gap", "sweep", "optimizers", "bias_variance", "layers", "rates", "published")
MIME = {"png": "image/png", "svg": "image/svg+xml"}


@dataclass
class Planned:
    name: str  # file stem: curves.png
    caption: str  # what to read in it; for a figure left out, why, in one line
    draw: Callable[[], Figure] | None  # None: left out, the page says why


def plan(
    study: Study,
    x: str | None = None,
    group: str | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    named: list[str] = (),
) -> list[Planned]:
    """The figures this study supports, in reading order (`named`: settings claims name)."""
    if not len(study.usable):
        return []
    seeds = (
        "; bands are ± std over seeds, n in the legend"
        if study.usable["setting"].duplicated().any()
        else ""
    )
    planned = [
        Planned("curves", curves_caption(study) + seeds + ".", lambda: plot_curves(study)),
        Planned(
            "gap",
            "Generalisation gap against epoch: a gap that keeps growing while training loss falls is overfitting. Training metrics are epoch means in training mode (dropout on), so the gap can dip below zero.",
            lambda: plot_gap(study),
        )
        if study.validated
        else Planned("gap", f"No generalisation-gap figure: {NO_VALIDATION}.", None),
    ]
    if numeric_keys(study) or len(study.settings()) > 1:
        dots = not numeric_keys(study)  # the dot plot: one row per setting
        planned.append(
            Planned(
                "sweep",
                f"The final {study.metric} per setting, mean ± std over seeds"
                + ("; each setting in its colour from the learning curves." if dots else "."),
                lambda: plot_sweep(study, group),
            )
        )
    if "optimizer.name" in study.keys:
        planned.append(
            Planned(
                "optimizers",
                "Training loss per optimizer against seconds of training, on a log axis (each optimizer at its best setting): "
                "the learning curves show the same runs per epoch, this shows what each epoch cost.",
                lambda: plot_optimizers(study),
            )
        )
    if supports_bias_variance(study, x):
        planned.append(
            Planned(
                "bias_variance",
                "Training and test error against model size; the dotted line marks the interpolation threshold (the smallest model that fits the training set)."
                + (
                    " Right: the test error measured as bias² + variance + noise over seeds on the fixed grid."
                    if study.task == "regression"
                    else ""
                ),
                lambda: plot_bias_variance(study, x, threshold),
            )
        )
    if rate_axis(study, x) is not None:
        planned.append(
            Planned(
                "rates",
                "Optimizer steps until the training loss reached trainer.target_loss, against the swept parameter on log-log axes; the legend gives each line's fitted slope.",
                lambda: plot_rates(study, x),
            )
        )
    if supports_layers(study):
        planned.append(
            Planned("layers", layers_caption(study, named), lambda: plot_layers(study, named))
        )
    return planned


NO_VALIDATION = "these runs have no validation split (data.val_fraction=0), so no validation curve"


def named_settings(results: list, study: Study) -> list[str]:
    """The settings the claims name (`of`, `minus`, `than`'s, `over`, `order`), as setting labels."""
    from dlrun.claims.measures import Unmeasured
    from dlrun.claims.quantities import select

    named: list[str] = []
    for result in results:
        claim = result.claim
        selectors = [
            claim.get("of"),
            claim.get("minus"),
            claim.get("over"),
            *(claim.get("order") or []),
            *(claim.get("than") or {}).values(),
        ]
        for selector in (s for s in selectors if isinstance(s, dict) and s):
            try:
                named += list(select(study.usable, selector)["setting"])
            except Unmeasured:  # a key these runs lack: the claim says so itself
                continue
    return list(dict.fromkeys(named))


def curves_caption(study: Study) -> str:
    """What the curves figure shows, for the layout plot_curves picks (one setting or several)."""
    if not study.validated:
        return f"Training curves against epoch, one colour per setting; {NO_VALIDATION}"
    if curve_split(study):
        return (
            "Learning curves against epoch: training on the left, validation on the right "
            "(each row on one scale), one colour per setting; hollow dots mark the epoch early "
            "stopping kept"
        )
    return (
        "Learning curves against epoch: training (dashed) and validation (solid); "
        "the hollow dot marks the epoch early stopping kept"
    )


def layers_caption(study: Study, named: list[str] = ()) -> str:
    """What the layers figure shows, for the layout plot_layers picks (heatmaps beside or above)."""
    n = heatmap_count(study, named)
    heat = "gradient norm per layer over training (log colour{})".format(
        ", one scale for all panels" if n > 1 else ""
    )
    acts = "activation std per layer before training, per initialisation"
    if n > 1:
        which = (
            f"for all {n} settings"
            if n == len(study.settings())
            else f"for {n} settings: those the claims name, then the best"
            if named
            else f"for the best {n} settings"
        )
        return f"Top: {heat}, {which}. Bottom: {acts}."
    return f"Left: {heat}. Right: {acts}."


def clear_old(out: Path, keep: set[str]) -> None:
    """Remove figures a previous report wrote here, so none is left over from other data."""
    for name in NAMES:
        for fmt in FORMATS:
            if f"{name}.{fmt}" not in keep:
                (out / f"{name}.{fmt}").unlink(missing_ok=True)


def render(planned: list[Planned], out: Path, fmt: str = "png") -> list[html.Figure]:
    """Draw, save as `fmt` in `out`, and return what index.html embeds (PNG unless SVG).

    Each file is replaced whole (a full disk keeps the previous report's file);
    an older report's other figures go once every new one is written.
    """
    shown = []
    for item in planned:
        if item.draw is None:
            continue
        fig = item.draw()
        data = to_bytes(fig, fmt)
        atomic_write(out / f"{item.name}.{fmt}", lambda tmp, data=data: tmp.write_bytes(data))
        embedded = data if fmt in MIME else to_bytes(fig, "png")
        shown.append(html.Figure(item.name, item.caption, embedded, MIME.get(fmt, "image/png")))
    clear_old(out, {f"{item.name}.{fmt}" for item in planned if item.draw is not None})
    return shown
