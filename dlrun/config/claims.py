"""Claims: an experiment's expected outcome, as checks on its sweep (docs/claims.md).

A claim (`claims.<name>` in an experiment file, dlrun.config.schema.ClaimConfig) names
one quantity measured on the sweep's aggregated results and bounds it:

    of: {init: zeros}                  the metric of one setting, mean over its seeds
    of: {...}  minus: {...}            the difference of two settings' metrics
      than: {of: {...}, minus: {...}}  less another difference (one gain against another)
    of: {...}  over: {...}             their ratio
    slope: data.condition              the slope of log(metric) against log(key)
    peak: model.width                  where along the key the metric is highest
    order: [{...}, {...}]              settings from the highest metric down

with `above: x`, `below: x`, or `near: x` and `tol: t`, and optionally
`given: {metric: train_loss, below: 2.0, of: {...}}`, a condition that must be
confirmed too (evidence that the runs trained, say). This module is the form:
its parts, its validation at compose time, and its words; dlrun.claims.decide
measures and decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from dlrun.errors import ConfigError


@dataclass
class ClaimConfig:
    """One expected outcome of an experiment, checked on its sweep (docs/claims.md).

    The quantity: `metric` of the setting `of` (mean over its seeds), minus or
    over another setting, its log-log slope or peak along a swept key, or an
    order of settings. The bound: `above`, `below`, or `near` within `tol`.
    """

    says: str = "???"  # required  # the claim in words
    source: str = ""  # where the claim comes from: a paper, the lecture
    metric: str = "test_acc"  # a summary number, or a measure (docs/claims.md)
    of: dict[str, Any] = field(default_factory=dict)  # config values that pick the setting
    minus: dict[str, Any] | None = None  # the difference of two settings' metrics...
    # ...less another difference, {of: {...}, minus: {...}}: one gain against another
    than: dict[str, Any] | None = None
    over: dict[str, Any] | None = None  # ...or their ratio
    slope: str | None = None  # a swept key: the slope of log(metric) against log(key)
    peak: str | None = None  # a swept key: where along it the metric is highest
    order: list[dict[str, Any]] | None = None  # settings from the highest metric down
    above: float | None = None  # bounds: the quantity is above...
    below: float | None = None  # ...and/or below these,
    near: float | None = None  # or within `tol` of this
    tol: float | None = None
    # a condition confirmed alongside: {metric, above and/or below, of (default: the claim's)}
    given: dict[str, Any] | None = None
    quick: bool = True  # false: too small at the experiment's quick size to show
    # overrides that remove the claim's effect: `dlrun check --controls` runs them, and the
    # claim must not be confirmed there (no training, the effect's knob at neutral...)
    control: list[str] | None = None
    # where the claim, as its source states it, fails on this task: what was found and why,
    # shown beside its verdict (the claim itself stays as the source states it)
    finding: str = ""


FORMS = ("minus", "over", "slope", "peak", "order")  # none of them: the value of `of`

# Per-run numbers: summary.json's, and what follows from them.
SPLITS = ("train", "val", "test")
SUMMARY_METRICS = {
    *(f"{split}_{kind}" for split in SPLITS for kind in ("loss", "acc", "rmse")),
    *(f"best_val_{kind}" for kind in ("loss", "acc", "rmse")),
    "steps_to_target",
    "epochs_run",
    "best_epoch",
    "steps",
    "n_params",
    "wall_s",
}
DERIVED_METRICS = {
    **{f"{split}_error": f"1 - {split}_acc" for split in SPLITS},
    "gap": "val_loss - train_loss at the end (the kept weights, in eval mode)",
}
# <measure>@<layer>: layers.csv before training, or the final weights' units.
LAYER_MEASURES = {
    "act_std": "the layer's activation std before training (layers.csv, epoch 0)",
    "act_mean": "the layer's activation mean before training (layers.csv, epoch 0)",
    "grad_norm": "the layer's gradient norm before training (layers.csv, epoch 0)",
    "unit_spread": "the largest difference between two units' weights at the end (last.pt)",
}
# <measure>@<metrics.csv column>: what a run's curve did.
CURVE_MEASURES = {
    "jitter": "the std of the column over the last 10 epochs: how much the curve still bounces",
    "mean": "the mean of the column over the run's epochs (its empty cells left out)",
}
JITTER_EPOCHS = 10
# Numbers of a setting as a whole, measured across its seeds (regression runs).
SETTING_MEASURES = {
    "bias2": "bias² of the seeds' predictions on the fixed grid",
    "variance": "variance of the seeds' predictions on the fixed grid",
}


def form(claim: Any) -> str:
    """value, minus, over, slope, peak or order: which quantity the claim measures."""
    used = [f for f in FORMS if claim.get(f) is not None]
    return used[0] if used else "value"


def layer_measure(metric: str) -> tuple[str, str] | None:
    """('act_std', 'features.fc30') for 'act_std@features.fc30' (or ('jitter', 'val_loss'));
    None for other metrics."""
    measure, at, where = metric.partition("@")
    return (measure, where) if at else None


def known_metric(metric: str) -> bool:
    parts = layer_measure(metric)
    if parts is not None:
        return (parts[0] in LAYER_MEASURES or parts[0] in CURVE_MEASURES) and bool(parts[1])
    return metric in SUMMARY_METRICS or metric in DERIVED_METRICS or metric in SETTING_MEASURES


def check_claims(cfg: Any) -> None:
    """Every claim of a composed config is well formed and names keys the config has.

    Typos in a claim's fields fail earlier, in Hydra's schema check; this finds
    what the schema cannot: two quantities at once, no bound, an unknown metric,
    a setting key that is not a config key. One line, before anything runs.
    """
    for name, claim in (cfg.get("claims") or {}).items():
        problem = claim_problem(claim, cfg)
        if problem:
            raise ConfigError(f"claims.{name}: {problem}")


def claim_problem(claim: Any, cfg: Any) -> str | None:
    unknown = set(claim) - {f.name for f in fields(ClaimConfig)}
    if unknown:  # `+claims.x.nera=1` gets past the schema: Hydra's `+` adds to any node
        return f"unknown field {sorted(unknown)[0]!r}; fields: {', '.join(f.name for f in fields(ClaimConfig))}"
    if claim.get("says") in (None, "", "???"):
        return "`says` is missing: the claim in words"
    used = [f for f in FORMS if claim.get(f) is not None]
    if len(used) > 1:
        return f"one quantity per claim: {' and '.join(used)} both given"
    if not known_metric(claim["metric"]):
        return f"metric={claim['metric']!r} is not a known measure (docs/claims.md lists them)"
    bounds = [b for b in ("above", "below", "near") if claim.get(b) is not None]
    if claim.get("near") is not None and (claim.get("tol") is None or claim["tol"] < 0):
        return "near needs tol, the distance accepted (>= 0)"
    if claim.get("near") is not None and len(bounds) > 1:
        return "near (with tol) is a bound of its own: drop above/below"
    if not bounds and form(claim) != "order":
        return "no bound: give above, below, or near with tol"
    if form(claim) in ("minus", "over") and not claim["of"]:
        return f"{form(claim)} compares with the setting `of`, which is empty"
    than = claim.get("than")
    if than is not None:
        problem = than_problem(claim, than)
        if problem:
            return problem
    selectors = [claim["of"], claim.get("minus"), claim.get("over"), *(claim.get("order") or [])]
    selectors += [than["of"], than["minus"]] if than is not None else []
    keys = [key for selector in selectors if selector for key in selector]
    keys += [claim[f] for f in ("slope", "peak") if claim.get(f) is not None]
    for key in keys:
        if not has_key(cfg, key):
            return f"{key!r} is not a config key (a group like `init`, or a key like `model.width`)"
    if form(claim) == "order" and len(claim["order"]) < 2:
        return "order needs two settings or more"
    return given_problem(claim.get("given"), cfg)


def than_problem(claim: Any, than: Any) -> str | None:
    """`than` is another difference, `{of: {...}, minus: {...}}`, subtracted from `minus`'s."""
    if claim.get("minus") is None:
        return "than subtracts a difference from the claim's: give minus too"
    if set(than) != {"of", "minus"} or not all(than[k] for k in ("of", "minus")):
        return "than: give {of: {...}, minus: {...}}, the settings of the other difference"
    return None


GIVEN_FIELDS = ("metric", "of", "above", "below")


def given_problem(given: Any, cfg: Any) -> str | None:
    """`given` is a metric of one setting with a one-sided bound or two."""
    if given is None:
        return None
    unknown = set(given) - set(GIVEN_FIELDS)
    if unknown:
        return f"given: unknown field {sorted(unknown)[0]!r}; fields: {', '.join(GIVEN_FIELDS)}"
    if not known_metric(str(given.get("metric", "test_acc"))):
        return f"given: metric={given.get('metric')!r} is not a known measure"
    if given.get("above") is None and given.get("below") is None:
        return "given: no bound: give above and/or below"
    for key in given.get("of") or {}:
        if not has_key(cfg, key):
            return f"given: {key!r} is not a config key"
    return None


def has_key(cfg: Any, key: str) -> bool:
    from omegaconf import OmegaConf

    return OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=False) is not _ABSENT


_ABSENT = object()


def column(key: str, columns: Any) -> str:
    """The runs-table column a setting key means: `init` is the group's choice, `init.name`."""
    return key if key in columns else f"{key}.name"


def describe_setting(selector: dict[str, Any] | None) -> str:
    """init=zeros, model.width=16: a setting as a user types it."""
    if not selector:
        return "all runs"
    return ", ".join(f"{key}={_text(value)}" for key, value in selector.items())


def describe_bound(claim: Any) -> str:
    parts = []
    if claim.get("near") is not None:
        parts.append(f"{_text(claim['near'])} ± {_text(claim['tol'])}")
    if claim.get("above") is not None:
        parts.append(f"above {_text(claim['above'])}")
    if claim.get("below") is not None:
        parts.append(f"below {_text(claim['below'])}")
    bound = " and ".join(parts) or "in this order"
    given = claim.get("given")
    if given:
        where = f" of {describe_setting(given['of'])}" if given.get("of") else ""
        bound += f", given {given.get('metric', 'test_acc')}{where} {describe_bound(given)}"
    return bound


def _text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
