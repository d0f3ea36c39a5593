"""Claims decided on a sweep: each claim of the runs' experiment measured and judged.

A claim (dlrun.config.claims, docs/claims.md) bounds one quantity. Each setting's
metric is the mean over its seeds, known to within its standard error
(std/√n); a difference or ratio carries its parts' errors. The verdict:

    confirmed       the bound holds for the whole interval quantity ± error
    not confirmed   it fails for the whole interval
    inconclusive    the interval straddles the bound: the seed spread is too large to decide

Claims come from the runs' own config.yaml, so a report knows what its runs
were meant to show without knowing the experiment file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from dlrun.claims.measures import Stat, Unmeasured, measure
from dlrun.config import claims as form
from dlrun.errors import ConfigError
from dlrun.folders import runs as run_folder
from dlrun.folders import safe
from dlrun.results.study import Study

CONFIRMED, REFUTED, INCONCLUSIVE = "confirmed", "not confirmed", "inconclusive"
UNMEASURED, SKIPPED = "not measured", "skipped"
MARKS = {CONFIRMED: "✅", REFUTED: "❌", INCONCLUSIVE: "◐", UNMEASURED: "⚠", SKIPPED: "–"}


@dataclass
class Result:
    name: str
    claim: dict[str, Any]
    verdict: str
    measured: str  # the numbers, with their spread and n
    stats: dict[str, Stat] = field(default_factory=dict)  # per setting label

    @property
    def passed(self) -> bool:
        """Counts towards `dlrun check`: confirmed, or not meant for this size."""
        return self.verdict in (CONFIRMED, SKIPPED)

    def line(self) -> str:
        claim = self.claim
        source = f" [{claim['source']}]" if claim.get("source") else ""
        expected = form.describe_bound(claim)
        return f"{MARKS[self.verdict]} {self.name}: {claim['says']}{source}\n     {self.measured}; expected {expected} → {self.verdict}"


def run_claims(study: Study) -> dict[str, tuple[dict[str, Any], list[str]]]:
    """{claim name: (claim, the runs that carry it)} from each run's config.yaml.

    Runs made before their experiment stated claims carry none: they get the
    claims of the experiment file their `name` names, as it is now.
    """
    found: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for run, path in study.table["path"].items():
        try:
            config = safe.read_yaml(Path(path) / run_folder.CONFIG, root=Path(path)) or {}
        except (OSError, ConfigError):
            continue  # the report has said why it skipped the folder
        if not isinstance(config, dict):
            continue
        claims = config.get("claims") or experiment_claims(str(config.get("name")))
        if not isinstance(claims, dict):
            continue
        for name, claim in claims.items():
            if not isinstance(claim, dict):
                continue
            known = found.setdefault(name, (claim, []))
            if known[0] == claim:  # another experiment's claim of the same name stays apart
                known[1].append(run)
    return found


def experiment_claims(name: str) -> dict[str, dict[str, Any]]:
    """The claims experiments/<name>.yaml states, with the schema's defaults filled in."""
    from dataclasses import asdict

    from dlrun.paths import experiments_dir

    path = experiments_dir() / f"{name}.yaml"
    if "/" in name or not path.is_file():
        return {}
    stated = (yaml.load(path.read_text(), Loader=yaml.CSafeLoader) or {}).get("claims") or {}
    return {key: {**asdict(form.ClaimConfig()), **claim} for key, claim in stated.items()}


def evaluate(study: Study, claims: dict[str, Any] | None = None) -> list[Result]:
    """Every claim the runs carry (or `claims`, for all the runs), decided on their usable runs."""
    results = []
    found = (
        run_claims(study)
        if claims is None
        else {name: (claim, list(study.table.index)) for name, claim in claims.items()}
    )
    for name, (claim, runs) in found.items():
        usable = study.usable[study.usable.index.isin(runs)]
        quick = "quick" in usable and len(usable) and usable["quick"].astype(bool).all()
        if not claim.get("quick", True) and quick:
            results.append(Result(name, claim, SKIPPED, "checked at the full size only"))
            continue
        try:
            results.append(decide_claim(name, claim, study, usable))
        except Unmeasured as e:
            results.append(Result(name, claim, UNMEASURED, str(e)))
    return results


def select(usable: pd.DataFrame, selector: dict[str, Any] | None) -> pd.DataFrame:
    """The runs whose config has every value of the selector."""
    keep = pd.Series(True, index=usable.index)
    for key, wanted in (selector or {}).items():
        col = form.column(key, usable.columns)
        if col not in usable:
            raise Unmeasured(f"the runs have no config key {key}")
        keep &= usable[col].map(lambda v, w=wanted: same(v, w))
    return usable[keep]


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


def one_setting(study: Study, usable: pd.DataFrame, selector, metric: str) -> tuple[str, Stat]:
    runs = select(usable, selector)
    settings = list(dict.fromkeys(runs["setting"]))
    where = form.describe_setting(selector)
    if not settings:
        raise Unmeasured(f"no finished run with {where}{values_hint(usable, selector)}")
    if len(settings) > 1:
        raise Unmeasured(f"{where} matches {len(settings)} settings ({'; '.join(settings[:3])})")
    return where, measure(study, runs, metric)


def values_hint(usable: pd.DataFrame, selector) -> str:
    hints = []
    for key in selector or {}:
        col = form.column(key, usable.columns)
        if col in usable:
            values = ", ".join(dict.fromkeys(form._text(v) for v in usable[col]))
            hints.append(f"{key} takes {values}")
    return f" ({'; '.join(hints)})" if hints else ""


def decide_claim(name: str, claim: dict[str, Any], study: Study, usable: pd.DataFrame) -> Result:
    metric, kind = claim["metric"], form.form(claim)
    if kind == "order":
        return decide_order(name, claim, study, usable)
    if kind in ("slope", "peak"):
        return decide_along(name, claim, study, usable, kind)
    where, a = one_setting(study, usable, claim["of"], metric)
    stats = {where: a}
    if kind == "value":
        value, error = a.mean, a.se
        text = f"{metric} of {where}: {a}"
    else:
        there, b = one_setting(study, usable, claim[kind], metric)
        stats[there] = b
        if kind == "minus":
            value, error = a.mean - b.mean, math.hypot(a.se, b.se)
            text = f"{metric} of {where} {a} minus {there} {b} = {value:.3g}"
        else:
            value = a.mean / b.mean if b.mean else math.nan
            error = abs(value) * math.hypot(a.se / a.mean if a.mean else 0, b.se / b.mean)
            text = f"{metric} of {where} {a} over {there} {b} = {value:.3g}"
        text += f" (± {error:.2g} standard error)" if error else ""
    return Result(name, claim, bounded(value, error, claim), text, stats)


def decide_order(name, claim, study: Study, usable: pd.DataFrame) -> Result:
    stats = dict(one_setting(study, usable, s, claim["metric"]) for s in claim["order"])
    margin = claim.get("above") or 0.0
    items = list(stats.values())
    steps = [
        bounded(hi.mean - lo.mean, math.hypot(hi.se, lo.se), {"above": margin})
        for hi, lo in zip(items, items[1:])
    ]
    text = f"{claim['metric']}: " + " > ".join(f"{w} {s}" for w, s in stats.items())
    return Result(name, claim, combine(steps), text, stats)


def decide_along(name, claim, study: Study, usable: pd.DataFrame, kind: str) -> Result:
    key, metric = claim[kind], claim["metric"]
    runs = select(usable, claim["of"])
    col = form.column(key, runs.columns)
    if col not in runs or runs[col].nunique() < 3:
        raise Unmeasured(f"{kind} needs 3 or more values of {key} among the runs")
    points = sorted(
        ((float(x), measure(study, group, metric)) for x, group in runs.groupby(col)),
        key=lambda p: p[0],
    )
    xs = np.array([x for x, _ in points])
    means = np.array([s.mean for _, s in points])
    where = form.describe_setting(claim["of"])
    stats = {f"{key}={x:g}": s for x, s in points}
    listed = ", ".join(f"{x:g}: {s.mean:.3g}" for x, s in points)
    if kind == "slope":
        if (xs <= 0).any() or (means <= 0).any():
            raise Unmeasured(f"a log-log slope needs positive {key} and {metric}")
        value, error = fit_slope(np.log(xs), np.log(means))
        text = f"slope of log {metric} against log {key} ({where}; {listed}) = {value:.3g}"
        text += f" (± {error:.2g} standard error)" if error else ""
        return Result(name, claim, bounded(value, error, claim), text, stats)
    top = int(np.argmax(means))
    peak, first, last = points[top][1], points[0][1], points[-1][1]
    inside = 0 < top < len(points) - 1
    edges = [
        bounded(peak.mean - edge.mean, math.hypot(peak.se, edge.se), {"above": 0.0})
        for edge in (first, last)
    ]
    verdict = combine([bounded(xs[top], 0.0, claim), *edges]) if inside else REFUTED
    text = f"{metric} ({where}) peaks at {key}={xs[top]:g} ({peak}); {listed}"
    return Result(name, claim, verdict, text, stats)


def fit_slope(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and its standard error (0 with fewer than 4 points)."""
    if len(x) >= 4:
        coef, cov = np.polyfit(x, y, 1, cov=True)
        return float(coef[0]), float(math.sqrt(cov[0, 0]))
    return float(np.polyfit(x, y, 1)[0]), 0.0


def bounded(value: float, error: float, claim: dict[str, Any]) -> str:
    """The verdict on value ± error against the claim's above/below/near bounds."""
    if value is None or not math.isfinite(value):
        return UNMEASURED
    verdicts = []
    if claim.get("near") is not None:
        off = abs(value - claim["near"])
        verdicts.append(side(off + error <= claim["tol"], off - error > claim["tol"]))
    if claim.get("above") is not None:
        verdicts.append(side(value - error > claim["above"], value + error <= claim["above"]))
    if claim.get("below") is not None:
        verdicts.append(side(value + error < claim["below"], value - error >= claim["below"]))
    return combine(verdicts)


def side(holds: bool, fails: bool) -> str:
    return CONFIRMED if holds else REFUTED if fails else INCONCLUSIVE


def combine(verdicts: list[str]) -> str:
    for verdict in (UNMEASURED, REFUTED, INCONCLUSIVE):
        if verdict in verdicts:
            return verdict
    return CONFIRMED
