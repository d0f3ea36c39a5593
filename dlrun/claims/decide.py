"""Claims decided on a sweep: each claim of the runs' experiment measured and judged.

A claim (dlrun.config.claims, docs/claims.md) bounds one quantity, measured
over seeds with its standard error (dlrun.claims.quantities, .stats). Each
bound is a one-sided test at α = 5%; the claims of one experiment are
corrected together (Holm). The verdict:

    confirmed       the claim's test rejects its opposite, after Holm's correction
    not confirmed   the opposite one-sided test rejects the claim (at 5%)
    inconclusive    neither: the seed spread is too large (one seed never decides);
                    the result says how many seeds would likely decide it

Claims come from the runs' own config.yaml, so a report knows what its runs
were meant to show without knowing the experiment file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from dlrun.claims import stats
from dlrun.claims.measures import Stat, Unmeasured
from dlrun.claims.quantities import measure_claim
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
    for run, config in run_configs(study):
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


def restated(study: Study) -> dict[str, list[str]]:
    """{experiment: its claims that its file states differently now than the runs recorded}.

    A report decides the claims as the runs recorded them; `dlrun check --on` as the
    file states them now. Fields added to the form since count as their defaults.
    """
    defaults = asdict(form.ClaimConfig())
    stated: dict[str, dict[str, Any]] = {}  # each experiment file read once
    changed: dict[str, set[str]] = {}
    for _, config in run_configs(study):
        recorded, name = config.get("claims"), str(config.get("name"))
        if not isinstance(recorded, dict) or not recorded:
            continue
        if name not in stated:
            stated[name] = experiment_claims(name)
        now = stated[name]
        was = {k: {**defaults, **c} for k, c in recorded.items() if isinstance(c, dict)}
        differ = {k for k in {*was, *now} if was.get(k) != now.get(k)} if now else set()
        if differ:
            changed.setdefault(name, set()).update(differ)
    return {name: sorted(claims) for name, claims in changed.items()}


def run_configs(study: Study) -> Iterator[tuple[str, dict[str, Any]]]:
    """(run id, its config.yaml as plain values) for each run whose config is a mapping."""
    for run, path in study.table["path"].items():
        try:
            config = safe.read_yaml(Path(path) / run_folder.CONFIG, root=Path(path)) or {}
        except (OSError, ConfigError):
            continue  # the report has said why it skipped the folder
        if isinstance(config, dict):
            yield run, config


def experiment_claims(name: str) -> dict[str, dict[str, Any]]:
    """The claims experiments/<name>.yaml states, with the schema's defaults filled in."""
    from dlrun.paths import experiments_dir

    path = experiments_dir() / f"{name}.yaml"
    if "/" in name or not path.is_file():
        return {}
    stated = (yaml.load(path.read_text(), Loader=yaml.CSafeLoader) or {}).get("claims") or {}
    return {key: {**asdict(form.ClaimConfig()), **claim} for key, claim in stated.items()}


def evaluate(study: Study, claims: dict[str, Any] | None = None) -> list[Result]:
    """Every claim the runs carry (or `claims`, for all the runs), decided on them together."""
    found = (
        run_claims(study)
        if claims is None
        else {name: (claim, list(study.table.index)) for name, claim in claims.items()}
    )
    results, measured = [], {}
    for name, (claim, runs) in found.items():
        carrying = study.table[study.table.index.isin(runs)]
        usable = carrying[carrying["status"].isin(run_folder.USABLE)]
        quick = "quick" in usable and len(usable) and usable["quick"].astype(bool).all()
        if not claim.get("quick", True) and quick:
            results.append(Result(name, claim, SKIPPED, "checked at the full size only"))
            continue
        try:
            measured[name] = measure_claim(claim, study, carrying)
        except Unmeasured as e:
            results.append(Result(name, claim, UNMEASURED, str(e)))
            continue
        results.append(Result(name, claim, INCONCLUSIVE, measured[name].text, measured[name].stats))
    # Holm across the experiment's decided claims: at most a 5% chance that any is falsely confirmed
    names = list(measured)
    confirmed = dict(zip(names, stats.holm([measured[n].decision.p_confirm for n in names])))
    # an unconfirmed claim's test would pass at Holm's next level, not at ALPHA: size its seeds so
    level = stats.ALPHA / max(1, len(names) - sum(confirmed.values()))
    for result in results:
        if result.name in measured:
            decision = measured[result.name].decision
            if not confirmed[result.name]:
                decision = replace(decision, seeds=stats.seeds_at(decision, level))
            one_seed = min(s.n for s in result.stats.values()) < 2
            result.verdict, note = verdict(decision, confirmed[result.name], one_seed)
            result.measured += note
    return results


def verdict(decision: stats.Decision, confirmed: bool, one_seed: bool) -> tuple[str, str]:
    """The verdict, and what to add to the numbers: the p-value, or the seeds that would decide."""
    if confirmed:
        return CONFIRMED, f"; p = {decision.p_confirm:.2g}"
    if decision.p_refute < stats.ALPHA:
        return REFUTED, f"; its opposite at p = {decision.p_refute:.2g}"
    if one_seed:
        return INCONCLUSIVE, "; one seed has no spread and decides nothing: run more seeds"
    if decision.seeds is None:
        if any(e.decidable and e.se == 0 for e, _, _ in decision.parts):
            # a control that removes the effect: two settings that are now the same runs
            return (
                INCONCLUSIVE,
                "; every seed gives exactly its bound: no number of seeds decides it",
            )
        return INCONCLUSIVE, "; more seeds would decide it"
    if decision.seeds > stats.MAX_SEEDS:
        return INCONCLUSIVE, f"; over {stats.MAX_SEEDS} seeds per setting would be needed"
    return INCONCLUSIVE, f"; about {decision.seeds} seeds per setting would likely decide it"
