"""The stated error rate, simulated: sweeps with no effect confirm at most 5% of the time.

For every claim form, many sweeps are drawn (numpy only, no training) whose
true quantity sits exactly at the claim's bound, and each is decided as
`dlrun check` decides (dlrun.claims.quantities and .stats, one claim, so Holm
changes nothing). The share confirmed is the false-confirmation rate; with a
real effect, the share confirmed is the power. `python tests/claims/test_error_rate.py`
prints the table docs/claims.md quotes.
"""

from __future__ import annotations

import numpy as np
import pytest

from dlrun.claims import quantities, stats
from dlrun.claims.measures import Stat, bias2, variance

SIMS = 400  # sweeps per form and size: a 5% rate is measured to within ±1.1% (one standard error)
TOLERANCE = 0.03  # Monte-Carlo slack: under 3 standard errors above 5%
GRID = np.linspace(0, 1, 20)
TRUTH = np.sin(2 * np.pi * GRID)


def stat(values: np.ndarray, seeds=None, statistic=None) -> Stat:
    seeds = tuple(range(len(values))) if seeds is None else tuple(seeds)
    return Stat(np.asarray(values, dtype=float), seeds, 0, statistic)


def decided(estimate: stats.Estimate, **bound) -> bool:
    parts = quantities.bound_parts(estimate, {"near": None, "above": None, "below": None, **bound})
    return stats.decide_parts(parts).p_confirm <= stats.ALPHA


def value(rng, n, effect):  # the mean of one setting above 0.5
    x = rng.normal(0.5 + effect, 0.1, n)
    return decided(quantities.combined([stat(x)], lambda a: a, "mean"), above=0.5)


def near(rng, n, effect):  # TOST: the truth at the edge of 0.5 ± 0.05; effect moves it in
    x = rng.normal(0.55 - effect, 0.02, n)
    return decided(quantities.combined([stat(x)], lambda a: a, "mean"), near=0.5, tol=0.05)


def welch(rng, n, effect):  # two settings on different seeds, unequal spreads and sizes
    a = stat(rng.normal(0.2 + effect, 0.05, n), seeds=range(n))
    b = stat(rng.normal(0.0, 0.15, n + 2), seeds=range(100, 102 + n))
    return decided(quantities.combined([a, b], quantities.minus, "difference"), above=0.2)


def paired(rng, n, effect):  # two settings on the same seeds: a shared seed effect
    shared = rng.normal(0, 0.3, n)
    a, b = (
        stat(shared + 0.2 + effect + rng.normal(0, 0.05, n)),
        stat(shared + rng.normal(0, 0.05, n)),
    )
    return decided(quantities.combined([a, b], quantities.minus, "difference"), above=0.2)


GAINS = (0.6, 0.3, 0.5, 0.3)  # (a - b) - (c - d) = 0.3 - 0.2: exactly the bound 0.1


def gains_paired(rng, n, effect):  # a gain against another, four settings on the same seeds
    shared = rng.normal(0, 0.3, n)
    samples = [shared + mu + rng.normal(0, 0.05, n) for mu in GAINS]
    samples[0] += effect
    return decided(stats.contrast(samples, [1, -1, -1, 1], paired=True), above=0.1)


def gains_welch(rng, n, effect):  # the same on different seeds, unequal spreads and sizes
    samples = [mu + rng.normal(0, 0.05 * (i + 1), n + i) for i, mu in enumerate(GAINS)]
    samples[0] += effect
    return decided(stats.contrast(samples, [1, -1, -1, 1]), above=0.1)


def ratio(rng, n, effect):  # over: mean(a) / mean(b) above 2
    a, b = (
        stat(rng.normal(2.0 + effect, 0.2, n)),
        stat(rng.normal(1.0, 0.1, n), seeds=range(9, 9 + n)),
    )
    return decided(quantities.combined([a, b], lambda x, y: x / y), above=2.0)


XS = [10.0, 100.0, 1000.0, 10000.0]


def slope(rng, n, effect):  # the log-log slope of the means above 0.5 (lognormal seeds)
    true = 0.5 + effect
    parts = [stat(3 * x**true * np.exp(rng.normal(0, 0.3, n) - 0.045)) for x in XS]
    fit = stats.log_slope(XS)
    estimate = quantities.combined(parts, lambda *m: fit(np.stack(m, axis=-1)))
    return decided(estimate, above=0.5)


def order(rng, n, effect):  # a > b > c by 0.1 each: the first step is exactly 0.1, the second 0.3
    a, b, c = (stat(rng.normal(mu, 0.05, n)) for mu in (0.4 + effect, 0.3, 0.0))
    steps = [
        quantities.combined([h, lo], quantities.minus, "difference") for h, lo in ((a, b), (b, c))
    ]
    return stats.decide_parts([(s, "above", 0.1) for s in steps]).p_confirm <= stats.ALPHA


def peak(rng, n, effect):  # five settings, flat (no peak) or the middle one higher by effect
    means = [0.5, 0.5, 0.5 + effect, 0.5, 0.5]
    parts = [stat(rng.normal(mu, 0.05, n)) for mu in means]
    decision = stats.peak(
        lambda i, j: quantities.combined([parts[i], parts[j]], quantities.minus, "difference"),
        [1, 2, 4, 8, 16],
        -np.inf,
        np.inf,
    )
    return decision.p_confirm <= stats.ALPHA


def bias_squared(rng, n, effect):  # bias² above 0.04: each seed's fit off by 0.2 (+ effect)
    rows = TRUTH + 0.2 + effect + rng.normal(0, 0.3, (n, len(GRID)))
    rows += rng.normal(0, 0.1, (n, 1))  # a seed moves its whole curve too
    estimate = quantities.combined([stat(rows, statistic=bias2(TRUTH))], lambda a: a)
    return decided(estimate, above=0.04 + 0.0075)  # + the seed shift's variance (0.1²): its bias²


def variance_of(rng, n, effect):  # variance above 0.09 = 0.3²: the seeds' spread per grid point
    rows = TRUTH + rng.normal(0, 0.3 + effect, (n, len(GRID)))
    estimate = quantities.combined([stat(rows, statistic=variance(TRUTH))], lambda a: a)
    return decided(estimate, above=0.09)


FORMS = {
    "mean (t)": (value, 0.15),
    "near (TOST)": (near, 0.05),
    "minus (Welch)": (welch, 0.2),
    "minus (paired t)": (paired, 0.1),
    "minus than (paired t)": (gains_paired, 0.15),
    "minus than (Welch)": (gains_welch, 0.3),
    "over (bootstrap)": (ratio, 0.4),
    "slope (bootstrap)": (slope, 0.15),
    "order (t per step)": (order, 0.1),
    "peak (Welch, Bonferroni)": (peak, 0.15),
    "bias² (bootstrap)": (bias_squared, 0.25),
    "variance (bootstrap)": (variance_of, 0.1),
}


def rate(simulate, n: int, effect: float, sims: int = SIMS, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    return float(np.mean([simulate(rng, n, effect) for _ in range(sims)]))


@pytest.mark.parametrize("name", FORMS)
# three seeds in the default suite; two (the fewest that can decide) and eight in the slow one
@pytest.mark.parametrize(
    "n", [3, pytest.param(2, marks=pytest.mark.slow), pytest.param(8, marks=pytest.mark.slow)]
)
def test_no_effect_is_confirmed_at_most_5_percent_of_the_time(name, n):
    simulate, _ = FORMS[name]
    assert rate(simulate, n, 0.0) <= stats.ALPHA + TOLERANCE


@pytest.mark.parametrize("name", FORMS)
def test_a_real_effect_is_confirmed_most_of_the_time_with_8_seeds(name):
    simulate, effect = FORMS[name]
    assert rate(simulate, 8, effect, sims=100) >= 0.8


def test_one_seed_confirms_nothing_even_with_a_large_effect():
    for simulate, effect in FORMS.values():
        assert rate(simulate, 1, 10 * effect, sims=20) == 0.0


if __name__ == "__main__":  # the table of docs/claims.md
    print("| form | false confirmations, n = 2, 3, 5, 8 | power at n = 3, 5, 8 (effect) |")
    print("| --- | --- | --- |")
    for name, (simulate, effect) in FORMS.items():
        nulls = ", ".join(f"{rate(simulate, n, 0.0, 4000):.1%}" for n in (2, 3, 5, 8))
        powers = ", ".join(f"{rate(simulate, n, effect, 1000, 1):.0%}" for n in (3, 5, 8))
        print(f"| {name} | {nulls} | {powers} ({effect:g}) |")
