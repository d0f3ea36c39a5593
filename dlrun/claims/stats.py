"""The statistics behind a verdict: one-sided 95% bounds over seeds, Holm across claims.

Every quantity a claim bounds is an `Estimate`: a value, its standard error and
the degrees of freedom of a t distribution (docs/claims.md, "How a claim is decided"):

    a mean over seeds             one-sample t (std ddof 1 / √n, n − 1)
    a difference of two settings  paired t on the per-seed differences where both
                                  settings ran the same seeds, else Welch
    a difference of differences   the same, on each seed's contrast, or Welch's
                                  standard error over the settings
    ratios, slopes, bias², variance, anything else of the seeds
                                  a bootstrap over seeds: the replicates' std, scaled
                                  by √(n/(n−1)) (so that for a mean it is the t
                                  standard error), with n − 1 degrees of freedom

A claim "quantity above b" is a one-sided test of H0: quantity ≤ b; its p-value
is below α exactly when the one-sided 1 − α lower bound clears b. One seed has
no spread: its standard error is unknown (nan) and no test decides.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05  # the false-confirmation rate a verdict is decided at
POWER = 0.8  # "the seeds that would likely decide it": 80% power at the observed effect
BOOTSTRAP_DRAWS = 2000
BOOTSTRAP_SEED = 0  # fixed: the same runs always get the same verdict
MAX_SEEDS = 1000  # beyond this the effect is too small to chase with seeds


@dataclass(frozen=True)
class Estimate:
    """A quantity over seeds: its value, standard error, t degrees of freedom, fewest seeds."""

    value: float
    se: float  # nan: unknown (fewer than 2 seeds in a setting)
    df: float
    n: int  # seeds in the smallest setting it was measured on
    method: str  # t, paired t, Welch, bootstrap

    @property
    def decidable(self) -> bool:
        return self.n >= 2 and math.isfinite(self.value) and math.isfinite(self.se)

    def p_above(self, bound: float) -> float:
        """p-value of "the quantity is above bound" (H0: it is at most bound)."""
        if not self.decidable:
            return 1.0
        if self.se == 0:  # every seed gave the same number: no spread to doubt it
            return 0.0 if self.value > bound else 1.0
        return float(stats.t.sf((self.value - bound) / self.se, self.df))

    def p_below(self, bound: float) -> float:
        """p-value of "the quantity is below bound" (H0: it is at least bound)."""
        if not self.decidable:
            return 1.0
        if self.se == 0:
            return 0.0 if self.value < bound else 1.0
        return float(stats.t.cdf((self.value - bound) / self.se, self.df))

    def bounds(self, alpha: float = ALPHA) -> tuple[float, float]:
        """The one-sided 1 − alpha lower and upper confidence bounds."""
        if not self.decidable:
            return -math.inf, math.inf
        half = float(stats.t.ppf(1 - alpha, self.df)) * self.se
        return self.value - half, self.value + half


def mean_of(values: Sequence[float]) -> Estimate:
    x = np.asarray(values, dtype=float)
    n = len(x)
    se = float(x.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return Estimate(float(x.mean()) if n else math.nan, se, n - 1, n, "t")


def difference(a: Sequence[float], b: Sequence[float], paired: bool = False) -> Estimate:
    """mean(a) − mean(b): paired by seed (a[i] and b[i] share seed i), or Welch."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if paired:
        return Estimate(**{**mean_of(a - b).__dict__, "method": "paired t"})
    n = min(len(a), len(b))
    value = float(a.mean() - b.mean()) if n else math.nan
    if n < 2:
        return Estimate(value, math.nan, 0, n, "Welch")
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return Estimate(value, 0.0, len(a) + len(b) - 2, n, "Welch")
    # Welch–Satterthwaite
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return Estimate(value, se, float(df), n, "Welch")


def contrast(
    samples: Sequence[Sequence[float]], weights: Sequence[float], paired: bool = False
) -> Estimate:
    """Σ weight × mean: a difference of differences, say. Paired by seed (a t on each seed's
    contrast), or Welch's standard error and Welch–Satterthwaite degrees of freedom, which
    for weights (1, −1) are `difference`'s."""
    arrays = [np.asarray(x, dtype=float) for x in samples]
    if paired:
        per_seed = sum(w * x for w, x in zip(weights, arrays))
        return Estimate(**{**mean_of(per_seed).__dict__, "method": "paired t"})
    n = min(len(x) for x in arrays)
    value = float(sum(w * x.mean() for w, x in zip(weights, arrays))) if n else math.nan
    if n < 2:
        return Estimate(value, math.nan, 0, n, "Welch")
    parts = [w**2 * x.var(ddof=1) / len(x) for w, x in zip(weights, arrays)]
    se = math.sqrt(sum(parts))
    if se == 0:
        return Estimate(value, 0.0, sum(len(x) for x in arrays) - len(arrays), n, "Welch")
    df = sum(parts) ** 2 / sum(v**2 / (len(x) - 1) for v, x in zip(parts, arrays))
    return Estimate(value, se, float(df), n, "Welch")


def bootstrap(
    statistic: Callable[..., np.ndarray],
    samples: Sequence[np.ndarray],
    paired: bool = False,
    draws: int = BOOTSTRAP_DRAWS,
    seed: int = BOOTSTRAP_SEED,
) -> Estimate:
    """statistic(*samples) with a bootstrap standard error over seeds.

    Each sample has one row per seed (axis 0). `statistic` takes the samples
    with a leading axis of replicates, (draws, seeds, ...), and returns one
    number per replicate. Paired: the samples share their seeds, row i of each
    is seed i, and a replicate draws the same seeds for all of them.
    """
    samples = [np.asarray(s, dtype=float) for s in samples]
    n = min(len(s) for s in samples)
    value = float(np.asarray(statistic(*(s[None] for s in samples))).reshape(-1)[0])
    if n < 2:
        return Estimate(value, math.nan, 0, n, "bootstrap")
    rng = np.random.default_rng(seed)
    if paired:
        rows = rng.integers(0, n, size=(draws, n))
        drawn = [s[rows] for s in samples]
    else:
        drawn = [s[rng.integers(0, len(s), size=(draws, len(s)))] for s in samples]
    replicates = np.asarray(statistic(*drawn), dtype=float).reshape(-1)
    replicates = replicates[np.isfinite(replicates)]
    if len(replicates) < draws // 2:  # the statistic is undefined on most resamples
        return Estimate(value, math.nan, n - 1, n, "bootstrap")
    # the bootstrap spreads a mean by std(ddof 0)/√n: rescale to the t standard error
    se = float(replicates.std(ddof=1)) * math.sqrt(n / (n - 1))
    return Estimate(value, se, n - 1, n, "bootstrap")


def log_slope(xs: Sequence[float]) -> Callable[[np.ndarray], np.ndarray]:
    """The least-squares slope of log(mean) against log(x), for means of shape (..., len(xs))."""
    lx = np.log(np.asarray(xs, dtype=float))
    weights = (lx - lx.mean()) / ((lx - lx.mean()) ** 2).sum()

    def slope(means: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where((means > 0).all(axis=-1), np.log(means) @ weights, np.nan)

    return slope


def holm(p_values: Sequence[float], alpha: float = ALPHA) -> list[bool]:
    """Which hypotheses Holm's step-down procedure rejects (family-wise error ≤ alpha).

    Holm 1979: sort the p-values; the k-th smallest (k = 0, 1...) is rejected
    at alpha / (m − k), and the first one that is not stops the procedure.
    """
    m = len(p_values)
    rejected = [False] * m
    for k, i in enumerate(sorted(range(m), key=lambda j: p_values[j])):
        if p_values[i] > alpha / (m - k):
            break
        rejected[i] = True
    return rejected


def seeds_to_decide(
    estimate: Estimate, bound: float, alpha: float = ALPHA, power: float = POWER
) -> int | None:
    """Seeds per setting at which a one-sided test of the value against bound would
    likely (with `power`) come out, if the observed value and seed spread held.

    None when the spread is unknown (one seed) or zero; MAX_SEEDS + 1 when even
    MAX_SEEDS would not do.
    """
    if not estimate.decidable or estimate.se == 0:
        return None
    spread = estimate.se * math.sqrt(estimate.n)  # one seed's std
    n = np.arange(2, MAX_SEEDS + 1)
    reach = (stats.t.ppf(1 - alpha, n - 1) + stats.t.ppf(power, n - 1)) * spread / np.sqrt(n)
    enough = np.flatnonzero(reach <= abs(estimate.value - bound))
    return int(n[enough[0]]) if len(enough) else MAX_SEEDS + 1


Part = tuple[Estimate, str, float]  # (estimate, "above" or "below", bound)


@dataclass(frozen=True)
class Decision:
    """A claim's two p-values: of the claim, and of its opposite; the seeds likely to decide."""

    p_confirm: float
    p_refute: float
    seeds: int | None = None
    parts: tuple[Part, ...] = ()  # decide_parts' tests, to size the seeds at a corrected level


def seeds_at(decision: Decision, alpha: float) -> int | None:
    """The seeds that would likely confirm a claim whose every part holds, when its test
    must pass at `alpha` (Holm's level for it among claims not yet confirmed), not
    ALPHA; a claim some part of which fails keeps its seeds to refute (uncorrected)."""
    parts = decision.parts
    if not parts or not all((e.value > b) if s == "above" else (e.value < b) for e, s, b in parts):
        return decision.seeds
    needed = [seeds_to_decide(e, b, alpha) for e, _, b in parts]
    return None if None in needed else max(needed)


def decide_parts(parts: Sequence[Part]) -> Decision:
    """A claim that holds when every part holds: each a one-sided test of an estimate.

    Confirmed only when every part is (the intersection–union test: its p-value
    is the largest part's, no correction needed); refuted when any part's
    opposite is (the smallest opposite p-value).
    """
    confirm = [e.p_above(b) if side == "above" else e.p_below(b) for e, side, b in parts]
    refute = [e.p_below(b) if side == "above" else e.p_above(b) for e, side, b in parts]
    holds = [(e.value > b) if side == "above" else (e.value < b) for e, side, b in parts]
    needed = [seeds_to_decide(e, b) for e, _, b in parts]
    if all(holds):  # to confirm, every part must clear its bound
        seeds = None if None in needed else max(needed, default=None)
    else:  # to refute, one failing part is enough
        failing = [s for s, h in zip(needed, holds) if not h and s is not None]
        seeds = min(failing, default=None)
    return Decision(max(confirm), min(refute), seeds, tuple(parts))


def both(first: Decision, second: Decision) -> Decision:
    """Two conditions that must both hold: confirmed when both are, refuted when either is."""
    seeds = [s for s in (first.seeds, second.seeds) if s is not None]
    return Decision(
        max(first.p_confirm, second.p_confirm),
        min(first.p_refute, second.p_refute),
        max(seeds) if seeds else None,
        first.parts + second.parts if first.parts and second.parts else (),
    )


def peak(
    estimates: Callable[[int, int], Estimate], xs: Sequence[float], low: float, high: float
) -> Decision:
    """The metric along xs peaks strictly inside the swept range, at an x in (low, high).

    It does when some inside candidate c (not an end, low < c < high) beats
    every setting that is not a candidate; estimates(i, j) is setting i minus
    setting j. For one candidate that is an intersection–union test; any of
    the candidates may be it, so its p-value is Bonferroni's over them. The
    opposite: some setting that is not a candidate beats every candidate.
    """
    inside = [i for i, x in enumerate(xs) if 0 < i < len(xs) - 1 and low < x < high]
    outside = [i for i in range(len(xs)) if i not in inside]
    if not inside:
        return Decision(1.0, 0.0)

    def beats(i: int, others: list[int]) -> float:
        return max(estimates(i, j).p_above(0.0) for j in others)

    p_confirm = min(1.0, len(inside) * min(beats(c, outside) for c in inside))
    p_refute = min(1.0, len(outside) * min(beats(o, inside) for o in outside))
    return Decision(p_confirm, p_refute)
