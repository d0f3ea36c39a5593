"""A claim's quantity on a sweep: its settings picked, measured, and tested against its bounds.

Each form (dlrun.config.claims) becomes estimates with standard errors
(dlrun.claims.stats) and one-sided tests of its bounds: a `Measured`, whose
Decision dlrun.claims.decide turns into a verdict (Holm across the claims).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dlrun.claims import stats
from dlrun.claims.measures import Stat, Unmeasured, measure
from dlrun.config import claims as form
from dlrun.results.study import Study


@dataclass
class Measured:
    text: str  # the numbers, with their bounds and n
    stats: dict[str, Stat]  # per setting label
    decision: stats.Decision


def measure_claim(claim: dict[str, Any], study: Study, runs: pd.DataFrame) -> Measured:
    """The claim's quantity on `runs` (every run that carries it, failed ones too), and its
    `given` condition: confirmed only when both are (an intersection–union test)."""
    measured = measure_quantity(claim, study, runs)
    given = claim.get("given")
    if not given:
        return measured
    where, stat = one_setting(
        study, runs, given.get("of") or claim["of"], given.get("metric", "test_acc")
    )
    estimate = combined([stat], lambda x: x, "mean")
    condition = stats.decide_parts(bound_parts(estimate, given))
    text = f"{measured.text}; given {given.get('metric', 'test_acc')} of {where}: {stat}{interval(estimate)}"
    return Measured(text, {**measured.stats, where: stat}, stats.both(measured.decision, condition))


def measure_quantity(claim: dict[str, Any], study: Study, runs: pd.DataFrame) -> Measured:
    metric, kind = claim["metric"], form.form(claim)
    if kind == "order":
        return measure_order(claim, study, runs)
    if kind in ("slope", "peak"):
        return measure_along(claim, study, runs, kind)
    if claim.get("than") is not None:
        return measure_contrast(claim, study, runs)
    where, a = one_setting(study, runs, claim["of"], metric)
    found = {where: a}
    if kind == "value":
        estimate = combined([a], lambda x: x, "mean")
        text = f"{metric} of {where}: {a}"
    else:
        there, b = one_setting(study, runs, claim[kind], metric)
        found[there] = b
        if kind == "minus":
            estimate = combined([a, b], minus, "difference")
            text = f"{metric} of {where} {a} minus {there} {b}"
        else:
            estimate = combined([a, b], lambda x, y: x / y)
            text = f"{metric} of {where} {a} over {there} {b}"
        text += f" = {estimate.value:.3g}"
    decision = stats.decide_parts(bound_parts(estimate, claim))
    return Measured(text + interval(estimate), found, decision)


def measure_contrast(claim: dict[str, Any], study: Study, runs: pd.DataFrame) -> Measured:
    """(of − minus) − (than.of − than.minus): a gain against another gain, by seed where
    every setting ran the same seeds (a setting named twice counts once, twice weighted)."""
    metric, than = claim["metric"], claim["than"]
    terms = [(claim["of"], 1.0), (claim["minus"], -1.0), (than["of"], -1.0), (than["minus"], 1.0)]
    found: dict[str, Stat] = {}
    weights: dict[str, float] = {}
    for selector, weight in terms:
        where, stat = one_setting(study, runs, dict(sorted(selector.items())), metric)
        found[where] = stat
        weights[where] = weights.get(where, 0.0) + weight
    parts, ws = list(found.values()), [weights[w] for w in found]
    paired = len({p.seeds for p in parts}) == 1 and parts[0].n > 1
    if any(p.whole for p in parts):
        estimate = combined(parts, lambda *means: sum(w * m for w, m in zip(ws, means)))
    else:
        estimate = stats.contrast([p.values for p in parts], ws, paired)
    label = [form.describe_setting(dict(sorted(s.items()))) for s, _ in terms]
    text = (
        f"{metric}: ({label[0]} {found[label[0]]} minus {label[1]} {found[label[1]]}) minus "
        f"({label[2]} {found[label[2]]} minus {label[3]} {found[label[3]]}) = {estimate.value:.3g}"
    )
    decision = stats.decide_parts(bound_parts(estimate, claim))
    return Measured(text + interval(estimate), found, decision)


def combined(parts: list[Stat], function, how: str = "") -> stats.Estimate:
    """function of the parts' measures, with its standard error over seeds.

    how="mean" (one part) or "difference" (two) of per-seed numbers: t, paired
    when the parts ran the same seeds, else Welch; anything else, or a measure
    of a whole setting: the bootstrap over seeds.
    """
    paired = len(parts) > 1 and len({p.seeds for p in parts}) == 1 and parts[0].n > 1
    plain = not any(p.whole for p in parts)
    if plain and how == "mean":
        return stats.mean_of(parts[0].values)
    if plain and how == "difference":
        return stats.difference(parts[0].values, parts[1].values, paired)
    return stats.bootstrap(
        lambda *rows: function(*(p.of(r) for p, r in zip(parts, rows))),
        [p.values for p in parts],
        paired=paired,
    )


def minus(x, y):
    return x - y


def bound_parts(estimate: stats.Estimate, claim: dict[str, Any]) -> list[stats.Part]:
    """The one-sided tests a claim's bounds make: `near ± tol` is two (TOST)."""
    if claim.get("near") is not None:
        return [
            (estimate, "above", claim["near"] - claim["tol"]),
            (estimate, "below", claim["near"] + claim["tol"]),
        ]
    parts = []
    if claim.get("above") is not None:
        parts.append((estimate, "above", claim["above"]))
    if claim.get("below") is not None:
        parts.append((estimate, "below", claim["below"]))
    return parts


def interval(estimate: stats.Estimate) -> str:
    if not estimate.decidable:
        return ""
    low, high = estimate.bounds()
    return f" (95% bounds {low:.3g} … {high:.3g}, {estimate.method})"


def measure_order(claim: dict[str, Any], study: Study, runs: pd.DataFrame) -> Measured:
    found = dict(one_setting(study, runs, s, claim["metric"]) for s in claim["order"])
    margin = claim.get("above") or 0.0
    items = list(found.values())
    steps = [combined([hi, lo], minus, "difference") for hi, lo in zip(items, items[1:])]
    text = f"{claim['metric']}: " + " > ".join(f"{w} {s}" for w, s in found.items())
    text += "; steps " + ", ".join(f"{s.value:.3g}{interval(s)}" for s in steps)
    decision = stats.decide_parts([(step, "above", margin) for step in steps])
    return Measured(text, found, decision)


def measure_along(claim: dict[str, Any], study: Study, runs: pd.DataFrame, kind: str) -> Measured:
    key, metric = claim[kind], claim["metric"]
    runs = select(runs, claim["of"])
    col = form.column(key, runs.columns)
    if col not in runs or runs[col].nunique() < 3:
        raise Unmeasured(f"{kind} needs 3 or more values of {key} among the runs")
    points = sorted(
        ((float(x), measure(study, group, metric)) for x, group in runs.groupby(col)),
        key=lambda p: p[0],
    )
    xs = [x for x, _ in points]
    parts = [s for _, s in points]
    where = form.describe_setting(claim["of"])
    found = {f"{key}={x:g}": s for x, s in points}
    listed = ", ".join(f"{x:g}: {s}" for x, s in points)
    if kind == "slope":
        if min(xs) <= 0:
            raise Unmeasured(f"a log-log slope needs positive values of {key}")
        slope = stats.log_slope(xs)
        estimate = combined(parts, lambda *means: slope(np.stack(means, axis=-1)))
        if not math.isfinite(estimate.value):
            raise Unmeasured(f"a log-log slope needs a positive {metric} in every setting")
        text = f"slope of log {metric} against log {key} ({where}; {listed}) = {estimate.value:.3g}"
        decision = stats.decide_parts(bound_parts(estimate, claim))
        return Measured(text + interval(estimate), found, decision)
    low = claim["above"] if claim.get("above") is not None else -math.inf
    high = claim["below"] if claim.get("below") is not None else math.inf
    decision = stats.peak(
        lambda i, j: combined([parts[i], parts[j]], minus, "difference"), xs, low, high
    )
    top = int(np.argmax([s.mean for s in parts]))
    text = f"{metric} ({where}) peaks at {key}={xs[top]:g} ({parts[top]}); {listed}"
    return Measured(text, found, decision)


def select(runs: pd.DataFrame, selector: dict[str, Any] | None) -> pd.DataFrame:
    """The runs whose config has every value of the selector."""
    keep = pd.Series(True, index=runs.index)
    for key, wanted in (selector or {}).items():
        col = form.column(key, runs.columns)
        if col not in runs:
            raise Unmeasured(f"the runs have no config key {key}")
        keep &= runs[col].map(lambda v, w=wanted: same(v, w))
    return runs[keep]


def same(value: Any, wanted: Any) -> bool:
    """A config value equals a claim's: numbers as numbers, null as missing, text as text."""
    if wanted is None or (isinstance(value, float) and math.isnan(value)) or value is None:
        return (wanted is None) == (
            value is None or (isinstance(value, float) and math.isnan(value))
        )
    if isinstance(wanted, bool) or isinstance(value, (bool, np.bool_)):
        return str(value).lower() == str(wanted).lower()
    if isinstance(wanted, (int, float)) and isinstance(value, (int, float, np.number)):
        return math.isclose(float(value), float(wanted), rel_tol=1e-9)
    # a folder matches the paths inside it (transfer.source: the run records its checkpoint)
    return str(value) == str(wanted) or str(value).startswith(str(wanted).rstrip("/") + "/")


def one_setting(study: Study, runs: pd.DataFrame, selector, metric: str) -> tuple[str, Stat]:
    chosen = select(runs, selector)
    settings = list(dict.fromkeys(chosen["setting"]))
    where = form.describe_setting(selector)
    if not settings:
        raise Unmeasured(f"no run with {where}{values_hint(runs, selector)}")
    if len(settings) > 1:
        raise Unmeasured(f"{where} matches {len(settings)} settings ({'; '.join(settings[:3])})")
    return where, measure(study, chosen, metric)


def values_hint(runs: pd.DataFrame, selector) -> str:
    hints = []
    for key in selector or {}:
        col = form.column(key, runs.columns)
        if col in runs:
            values = ", ".join(dict.fromkeys(form._text(v) for v in runs[col]))
            hints.append(f"{key} takes {values}")
    return f" ({'; '.join(hints)})" if hints else ""
