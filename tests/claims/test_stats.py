"""The statistics of a verdict against scipy and their definitions (dlrun/claims/stats.py)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sp

from dlrun.claims import stats

RNG = np.random.default_rng(7)
A = RNG.normal(1.0, 0.5, size=6)
B = RNG.normal(0.4, 1.5, size=4)


def test_a_mean_is_scipys_one_sample_t_test():
    estimate = stats.mean_of(A)
    for bound in (0.5, 1.0, 1.4):
        assert estimate.p_above(bound) == pytest.approx(
            sp.ttest_1samp(A, bound, alternative="greater").pvalue, rel=1e-10
        )
        assert estimate.p_below(bound) == pytest.approx(
            sp.ttest_1samp(A, bound, alternative="less").pvalue, rel=1e-10
        )
    low = sp.ttest_1samp(A, 0.0, alternative="greater").confidence_interval(0.95).low
    high = sp.ttest_1samp(A, 0.0, alternative="less").confidence_interval(0.95).high
    assert estimate.bounds() == (pytest.approx(low), pytest.approx(high))


def test_two_settings_are_welch_or_paired_by_seed():
    welch = stats.difference(A, B)
    reference = sp.ttest_ind(A, B, equal_var=False, alternative="greater")
    assert welch.p_above(0.0) == pytest.approx(reference.pvalue, rel=1e-10)
    assert welch.df == pytest.approx(reference.df)
    paired = stats.difference(A[:4], B, paired=True)
    assert paired.p_above(0.2) == pytest.approx(
        sp.ttest_rel(A[:4] - 0.2, B, alternative="greater").pvalue, rel=1e-10
    )


def test_a_difference_of_differences_is_a_t_on_each_seeds_contrast_or_welchs():
    a, b, c, d = (
        np.array(x) for x in ([5.0, 6, 7, 5], [1.0, 2, 2, 1], [3.0, 3, 4, 2], [1.0, 1, 2, 0])
    )
    paired = stats.contrast([a, b, c, d], [1, -1, -1, 1], paired=True)
    reference = sp.ttest_1samp((a - b) - (c - d), 0.5, alternative="greater")
    assert paired.p_above(0.5) == pytest.approx(reference.pvalue, rel=1e-10)
    assert paired.value == pytest.approx(((a - b) - (c - d)).mean()) and paired.df == 3
    # two settings, weights 1 and -1: Welch's test itself
    two = stats.contrast([A, B], [1, -1])
    assert (two.value, two.se, two.df) == pytest.approx(
        (stats.difference(A, B).value, stats.difference(A, B).se, stats.difference(A, B).df)
    )
    # unpaired: the variance of a weighted sum of independent means
    unpaired = stats.contrast([a, b[:3], c], [2, -1, -1])
    variances = [4 * a.var(ddof=1) / 4, b[:3].var(ddof=1) / 3, c.var(ddof=1) / 4]
    assert unpaired.se == pytest.approx(np.sqrt(sum(variances)))
    assert unpaired.value == pytest.approx(2 * a.mean() - b[:3].mean() - c.mean())


def test_one_seed_decides_nothing_and_no_spread_decides_on_the_value():
    one = stats.mean_of([0.9])
    assert not one.decidable and one.p_above(0.0) == one.p_below(2.0) == 1.0
    assert stats.difference([0.9], [0.1, 0.2]).p_above(0.0) == 1.0
    same = stats.mean_of([0.3, 0.3, 0.3])
    assert (same.p_above(0.2), same.p_above(0.3), same.p_below(0.4)) == (0.0, 1.0, 0.0)


def test_the_bootstrap_standard_error_of_a_mean_is_the_t_standard_error():
    estimate = stats.bootstrap(lambda a: a.mean(axis=-1), [A], draws=20000)
    assert estimate.value == pytest.approx(A.mean())
    assert estimate.se == pytest.approx(A.std(ddof=1) / math.sqrt(len(A)), rel=0.03)
    assert estimate.df == len(A) - 1
    again = stats.bootstrap(lambda a: a.mean(axis=-1), [A], draws=20000)
    assert again == estimate  # a fixed RNG seed: the same runs, the same verdict


def test_a_paired_bootstrap_draws_the_same_seeds_for_every_setting():
    shared = RNG.normal(0, 5.0, size=8)  # a seed effect both settings share
    a, b = shared + 1.0 + RNG.normal(0, 0.1, 8), shared + RNG.normal(0, 0.1, 8)
    diff = lambda x, y: x.mean(axis=-1) - y.mean(axis=-1)  # noqa: E731
    paired = stats.bootstrap(diff, [a, b], paired=True)
    assert paired.se == pytest.approx(stats.mean_of(a - b).se, rel=0.1)
    assert stats.bootstrap(diff, [a, b]).se > 10 * paired.se  # unpaired: the seed effect stays


def test_log_slope_is_the_least_squares_slope_on_log_axes():
    xs = [10, 100, 1000, 5000]
    means = np.array([3.0, 40.0, 380.0, 2100.0])
    fitted = np.polyfit(np.log(xs), np.log(means), 1)[0]
    assert stats.log_slope(xs)(means) == pytest.approx(fitted)
    assert math.isnan(stats.log_slope(xs)(np.array([1.0, -1.0, 2.0, 3.0])))


def test_holm_is_the_closed_test_of_bonferroni():
    """Holm rejects H_i exactly when every intersection of hypotheses holding i is
    rejected by Bonferroni (Holm 1979, as a shortcut of Marcus et al.'s closed testing)."""
    rng = np.random.default_rng(3)
    for _ in range(200):
        p = list(rng.uniform(0, 0.06, size=rng.integers(1, 6)))
        m = len(p)
        closed = [
            all(
                min(p[j] for j in subset) <= stats.ALPHA / len(subset)
                for k in range(1, m + 1)
                for subset in itertools.combinations(range(m), k)
                if i in subset
            )
            for i in range(m)
        ]
        assert stats.holm(p) == closed


def test_near_is_two_one_sided_tests():
    estimate = stats.mean_of(A)
    decision = stats.decide_parts([(estimate, "above", 0.6), (estimate, "below", 1.4)])
    tost = max(
        sp.ttest_1samp(A, 0.6, alternative="greater").pvalue,
        sp.ttest_1samp(A, 1.4, alternative="less").pvalue,
    )
    assert decision.p_confirm == pytest.approx(tost, rel=1e-10)
    assert decision.p_refute == pytest.approx(
        min(
            sp.ttest_1samp(A, 0.6, alternative="less").pvalue,
            sp.ttest_1samp(A, 1.4, alternative="greater").pvalue,
        ),
        rel=1e-10,
    )


def test_the_seeds_that_would_decide_come_from_the_observed_spread():
    estimate = stats.mean_of(A)
    bound = A.mean() - 0.3
    n = stats.seeds_to_decide(estimate, bound)
    spread = A.std(ddof=1)

    def reach(k: int) -> float:
        return (sp.t.ppf(0.95, k - 1) + sp.t.ppf(0.8, k - 1)) * spread / math.sqrt(k)

    assert reach(n) <= 0.3 < reach(n - 1)
    assert stats.seeds_to_decide(stats.mean_of([1.0]), 0.0) is None
    assert stats.seeds_to_decide(estimate, A.mean()) == stats.MAX_SEEDS + 1


def test_the_seeds_that_would_decide_follow_holms_level_not_one_claims():
    # 3 seeds whose mean clears the bound by about 2 standard errors: a claim alone would
    # be sized near 3 seeds, but one of 13 claims must pass at 0.05 / 13
    values = [0.93, 0.91, 0.895]
    estimate = stats.mean_of(values)
    decision = stats.decide_parts([(estimate, "above", 0.86)])
    assert decision.seeds == stats.seeds_to_decide(estimate, 0.86)
    corrected = stats.seeds_at(decision, 0.05 / 13)
    assert corrected == stats.seeds_to_decide(estimate, 0.86, 0.05 / 13) > decision.seeds
    assert stats.seeds_at(decision, 0.05) == decision.seeds
    # a condition and its claim together keep both tests: the larger need decides
    given = stats.decide_parts([(stats.mean_of([0.5, 0.52, 0.51]), "above", 0.3)])
    joint = stats.both(decision, given)
    assert stats.seeds_at(joint, 0.05 / 13) == corrected
    # a claim that fails keeps its (uncorrected) seeds to refute it
    failing = stats.decide_parts([(estimate, "above", 0.95)])
    assert stats.seeds_at(failing, 0.05 / 13) == failing.seeds


def test_a_peak_needs_an_inside_setting_above_every_other():
    rng = np.random.default_rng(1)
    means = [0.2, 0.5, 0.9, 0.4, 0.1]
    samples = [m + rng.normal(0, 0.02, 4) for m in means]

    def minus(i, j):
        return stats.difference(samples[i], samples[j])

    xs = [1, 2, 4, 8, 16]
    assert stats.peak(minus, xs, 2.5, 6).p_confirm < 0.01  # x=4 is the peak
    assert stats.peak(minus, xs, 5, 100).p_refute < 0.01  # 8 is not: 4 beats it
    assert stats.peak(minus, xs, 10, 100) == stats.Decision(1.0, 0.0)  # only an end is left
