"""Claims decided on a sweep's runs: the numbers against formulas (dlrun/claims/decide.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sp

from dlrun.claims.decide import CONFIRMED, INCONCLUSIVE, REFUTED, SKIPPED, UNMEASURED, evaluate
from dlrun.report.cli import main as report_main
from dlrun.results.load import load_runs
from dlrun.results.study import make_study

from synthetic_runs import classification_metrics, layer_rows, summary_from, write_run


def claim(says: str = "a claim", **fields) -> dict:
    base = {"says": says, "source": "", "metric": "test_acc", "of": {}, "quick": True}
    base.update({k: None for k in ("minus", "than", "over", "slope", "peak", "order")})
    base.update({k: None for k in ("above", "below", "near", "tol")})
    return {**base, **fields}


def sweep(tmp_path, values: dict[str, list[float]], claims: dict, key="init.name", **extra):
    """One run per (setting, seed) with the given test_acc; every run carries the claims."""
    for setting, accs in values.items():
        for seed, acc in enumerate(accs):
            metrics = classification_metrics(5)
            numbers = {
                "test_acc": float(acc),
                **{k: float(v[setting][seed]) for k, v in extra.items()},
            }
            write_run(
                tmp_path / "sweep" / f"{setting}_{seed}",
                {key: setting, "seed": seed, "claims": claims},
                metrics,
                summary_from(metrics, "completed", **numbers),
                layer_rows(5),
            )
    return {r.name: r for r in evaluate(make_study(load_runs([tmp_path / "sweep"])))}


ACCS = {"zeros": [0.10, 0.11, 0.09], "xavier": [0.55, 0.60, 0.58]}
T95 = sp.t.ppf(0.95, 2)  # the one-sided 95% t quantile for three seeds


def test_a_value_is_decided_on_its_one_sided_t_bounds(tmp_path):
    mean = np.mean(ACCS["xavier"])
    se = np.std(ACCS["xavier"], ddof=1) / math.sqrt(3)
    off = abs(mean - 0.57)
    claims = {
        "inside": claim(of={"init": "xavier"}, near=0.57, tol=float(off + T95 * se + 1e-4)),
        "straddles": claim(of={"init": "xavier"}, near=0.57, tol=float(off + T95 * se - 1e-4)),
        "outside": claim(of={"init": "xavier"}, near=0.57, tol=float(off - T95 * se - 1e-4)),
        "not_outside": claim(of={"init": "xavier"}, near=0.57, tol=float(off - T95 * se + 1e-4)),
    }
    results = {}
    for name, one in claims.items():  # one at a time: Holm's correction is the next test's
        results.update(sweep(tmp_path / name, ACCS, {name: one}))
    assert results["inside"].verdict == CONFIRMED
    assert results["straddles"].verdict == INCONCLUSIVE
    assert results["outside"].verdict == REFUTED
    assert results["not_outside"].verdict == INCONCLUSIVE
    assert "seeds per setting would likely decide it" in results["straddles"].measured
    stat = results["inside"].stats["init=xavier"]
    assert (stat.mean, stat.n, stat.seeds) == (pytest.approx(mean), 3, (0, 1, 2))
    assert stat.se == pytest.approx(se)
    assert f"{mean:.3g} ± {np.std(ACCS['xavier'], ddof=1):.2g} (n=3)" in results["inside"].measured


def test_the_claims_of_an_experiment_are_corrected_together(tmp_path):
    """Holm: two claims at p ≈ 0.03 each pass alone, and neither passes beside the other."""
    mean = np.mean(ACCS["xavier"])
    se = np.std(ACCS["xavier"], ddof=1) / math.sqrt(3)
    bound = float(mean - sp.t.ppf(0.97, 2) * se)  # p = 0.03 for "above bound"
    first = claim(of={"init": "xavier"}, above=bound)
    second = claim(of={"init": "xavier"}, above=bound - 1e-9)
    assert sweep(tmp_path / "one", ACCS, {"first": first})["first"].verdict == CONFIRMED
    both = sweep(tmp_path / "two", ACCS, {"first": first, "second": second})
    assert both["first"].verdict == both["second"].verdict == INCONCLUSIVE
    strong = claim(of={"init": "zeros"}, below=0.5)  # p ≈ 1e-4 takes the first, stricter step
    three = sweep(tmp_path / "three", ACCS, {"first": first, "strong": strong})
    assert three["strong"].verdict == CONFIRMED and three["first"].verdict == CONFIRMED


def test_settings_that_share_seeds_are_paired_and_others_compared_by_welch(tmp_path):
    a, b = np.array(ACCS["xavier"]), np.array(ACCS["zeros"])
    paired = sp.ttest_rel(a, b, alternative="greater")
    bound = float((a - b).mean() - T95 * (a - b).std(ddof=1) / math.sqrt(3))
    results = sweep(
        tmp_path,
        ACCS,
        {
            "ratio": claim(of={"init": "xavier"}, over={"init": "zeros"}, above=4.0),
            "order": claim(order=[{"init": "xavier"}, {"init": "zeros"}], above=0.4),
            "wrong_order": claim(order=[{"init": "zeros"}, {"init": "xavier"}]),
        },
    )
    learns = claim(of={"init": "xavier"}, minus={"init": "zeros"}, above=bound - 1e-4)
    (alone,) = sweep(tmp_path / "learns", ACCS, {"learns": learns}).values()
    assert alone.verdict == CONFIRMED and "paired t" in alone.measured
    assert f"= {a.mean() - b.mean():.3g}" in alone.measured and paired.pvalue < 1e-3
    (barely,) = sweep(
        tmp_path / "barely", ACCS, {"learns": {**learns, "above": bound + 1e-4}}
    ).values()
    assert barely.verdict == INCONCLUSIVE
    assert results["ratio"].verdict == CONFIRMED and "bootstrap" in results["ratio"].measured
    assert f"= {a.mean() / b.mean():.3g}" in results["ratio"].measured
    assert results["order"].verdict == CONFIRMED
    assert results["wrong_order"].verdict == REFUTED
    unpaired = {"xavier": ACCS["xavier"], "zeros": ACCS["zeros"][:2]}  # seeds 0, 1 against 0, 1, 2
    (welch,) = sweep(
        tmp_path / "welch",
        unpaired,
        {"d": claim(of={"init": "xavier"}, minus={"init": "zeros"}, above=0.3)},
    ).values()
    assert "Welch" in welch.measured


def test_one_gain_against_another_is_decided_by_seed(tmp_path):
    accs = {
        "small": [0.30, 0.32, 0.29],
        "small_aug": [0.45, 0.44, 0.47],
        "large": [0.50, 0.52, 0.53],
    }
    s, a, g = (np.array(accs[k]) for k in ("small", "small_aug", "large"))
    # the augmented small set is closer to the large set than to the small one:
    # (aug - small) - (large - aug), each seed's, a setting named twice weighted twice
    closer = claim(
        of={"init": "small_aug"},
        minus={"init": "small"},
        than={"of": {"init": "large"}, "minus": {"init": "small_aug"}},
        above=0.0,
    )
    per_seed = (a - s) - (g - a)
    reference = sp.ttest_1samp(per_seed, 0.0, alternative="greater")
    (result,) = sweep(tmp_path, accs, {"closer": closer}).values()
    assert f"= {per_seed.mean():.3g}" in result.measured and "paired t" in result.measured
    assert result.verdict == (CONFIRMED if reference.pvalue < 0.05 else INCONCLUSIVE)
    assert reference.pvalue < 0.05
    # the other way round is refuted: the large set is the farther one from the small set
    farther = {**closer, "above": None, "below": 0.0}
    (refuted,) = sweep(tmp_path / "other", accs, {"closer": farther}).values()
    assert refuted.verdict == REFUTED


def test_settings_that_give_the_same_runs_are_never_decided(tmp_path):
    # a control that removes the effect makes two settings one: their difference is 0 on
    # every seed, exactly the bound, and no number of seeds would move it
    same = [0.50, 0.60, 0.55]
    results = sweep(
        tmp_path,
        {"zeros": same, "xavier": same},
        {"gap": claim(of={"init": "xavier"}, minus={"init": "zeros"}, above=0.0)},
    )
    assert results["gap"].verdict == INCONCLUSIVE
    assert (
        "every seed gives exactly its bound: no number of seeds decides it"
        in results["gap"].measured
    )


def test_one_run_per_setting_confirms_nothing(tmp_path):
    results = sweep(
        tmp_path,
        {"zeros": [0.10], "xavier": [0.90]},
        {
            "value": claim(of={"init": "zeros"}, below=0.5),
            "gap": claim(of={"init": "xavier"}, minus={"init": "zeros"}, above=0.1),
        },
    )
    assert results["value"].verdict == results["gap"].verdict == INCONCLUSIVE
    assert "one seed has no spread" in results["value"].measured


def test_a_slope_is_fitted_on_log_axes_and_a_peak_must_be_inside(tmp_path):
    kappas = [10, 100, 1000, 10000]
    noise = [0.98, 1.0, 1.02]  # three seeds a few percent apart
    steps = {k: [3.0 * k**0.5 * f for f in noise] for k in kappas}  # sqrt(kappa)
    accuracy = {
        10: [0.60, 0.61, 0.59],
        100: [0.50, 0.51, 0.49],
        1000: [0.55, 0.56, 0.54],
        10000: [0.58, 0.57, 0.59],
    }  # error highest at 100
    results = sweep(
        tmp_path,
        accuracy,
        {
            "slope": claim(metric="steps_to_target", slope="data.condition", near=0.5, tol=0.01),
            "peak": claim(metric="test_error", peak="data.condition", above=50, below=500),
            "peak_elsewhere": claim(metric="test_error", peak="data.condition", above=500),
            "edge": claim(metric="steps_to_target", peak="data.condition", below=1e9),
        },
        key="data.condition",
        steps_to_target=steps,
    )
    assert results["slope"].verdict == CONFIRMED
    assert "= 0.5" in results["slope"].measured and "bootstrap" in results["slope"].measured
    assert results["peak"].verdict == CONFIRMED
    assert results["peak_elsewhere"].verdict == REFUTED
    assert results["edge"].verdict == REFUTED  # steps grow to the last value: no peak inside


def test_layer_measures_read_layers_csv_before_training(tmp_path):
    results = sweep(
        tmp_path,
        ACCS,
        {"std": claim(metric="act_std@features.fc2", of={"init": "zeros"}, near=0.25, tol=1e-9)},
    )
    assert results["std"].verdict == CONFIRMED  # layer_rows: 0.5 / 2 for the second layer


def test_what_cannot_be_measured_or_belongs_to_the_full_size_says_so(tmp_path):
    results = sweep(
        tmp_path,
        ACCS,
        {
            "typo": claim(of={"init": "zeroes"}, below=0.15),
            "two": claim(of={}, above=0.0),
            "full_only": claim(of={"init": "xavier"}, above=0.9, quick=False),
        },
    )
    assert results["typo"].verdict == UNMEASURED
    assert "init takes xavier, zeros" in results["typo"].measured
    assert results["two"].verdict == UNMEASURED and "matches 2 settings" in results["two"].measured
    assert results["full_only"].verdict == REFUTED  # these runs are full size: decided


def test_full_size_claims_are_skipped_at_the_quick_size(tmp_path):
    metrics = classification_metrics(3)
    write_run(
        tmp_path / "run",
        {"quick": True, "claims": {"full_only": claim(above=0.9, quick=False)}},
        metrics,
        summary_from(metrics, "completed", test_acc=0.5),
    )
    (result,) = evaluate(make_study(load_runs([tmp_path / "run"])))
    assert result.verdict == SKIPPED and result.passed


def test_the_report_opens_with_its_claims_and_draws_published_cells(tmp_path, capsys):
    source = "Greydanus & Kobak 2024"
    cells = {
        "cnn": claim(of={"init": "xavier"}, near=0.58, tol=0.08, source=source),
        "chance": claim(of={"init": "zeros"}, near=0.32, tol=0.02, source=source),
    }
    sweep(tmp_path, ACCS, cells)
    assert report_main([str(tmp_path / "sweep")]) == 0
    out = capsys.readouterr().out
    assert out.index("Claims (✅ 1 confirmed, ❌ 1 not confirmed)") < out.index("runs by")
    assert "❌ chance" in out and "(published 32%)" in page_text(tmp_path)
    page = page_text(tmp_path)
    assert page.index("<h2>Claims</h2>") < page.index("<h2>Findings</h2>")
    assert "57.7 ± 2.5% (published 58%)" in page  # mean and std of ACCS["xavier"], in percent
    assert (tmp_path / "sweep" / "report" / "published.png").is_file()


def test_a_report_without_claims_has_no_claims_section(tmp_path):
    sweep(tmp_path, ACCS, {})
    assert report_main([str(tmp_path / "sweep")]) == 0
    assert "Claims" not in page_text(tmp_path)


def page_text(tmp_path) -> str:
    return (tmp_path / "sweep" / "report" / "index.html").read_text()


def test_runs_made_before_their_experiment_stated_claims_get_its_claims(tmp_path):
    for setting, accs in ACCS.items():
        for seed, acc in enumerate(accs):
            metrics = classification_metrics(5)
            write_run(
                tmp_path / "old" / f"{setting}_{seed}",
                {"init.name": setting, "seed": seed, "name": "init_symmetry", "claims": {}},
                metrics,
                summary_from(metrics, "completed", test_acc=acc),
            )
    results = {r.name: r for r in evaluate(make_study(load_runs([tmp_path / "old"])))}
    assert results["zeros_stay_at_chance"].verdict == CONFIRMED  # experiments/init_symmetry.yaml
    assert results["xavier_learns"].verdict == UNMEASURED  # these runs have no init=constant


def test_a_report_says_which_claims_the_experiment_file_states_differently_now(tmp_path, capsys):
    from dlrun.claims.decide import experiment_claims, restated
    from dlrun.cli.main import main

    now = experiment_claims("init_symmetry")
    then = {**now, "zeros_stay_at_chance": {**now["zeros_stay_at_chance"], "tol": 0.2}}
    del then["xavier_learns"]  # a claim the file added since
    then["retired"] = {**now["random_init_breaks_symmetry"], "says": "a claim since dropped"}
    for claims, folder in ((now, "today"), (then, "before")):
        for seed, acc in enumerate(ACCS["zeros"]):
            metrics = classification_metrics(5)
            write_run(
                tmp_path / folder / f"zeros_{seed}",
                {"init.name": "zeros", "seed": seed, "name": "init_symmetry", "claims": claims},
                metrics,
                summary_from(metrics, "completed", test_acc=acc),
            )
    assert restated(make_study(load_runs([tmp_path / "today"]))) == {}
    changed = ["retired", "xavier_learns", "zeros_stay_at_chance"]
    assert restated(make_study(load_runs([tmp_path / "before"]))) == {"init_symmetry": changed}
    assert main(["report", str(tmp_path / "before")]) == 0
    out = capsys.readouterr().out
    assert f"it states {', '.join(changed)} differently now: dlrun check init_symmetry --on" in out


def test_failed_and_diverged_seeds_are_counted_beside_the_verdict(tmp_path):
    runs = tmp_path / "sweep"
    sweep(tmp_path, ACCS, {"chance": claim(of={"init": "zeros"}, below=0.5)})
    for seed, status in ((3, "diverged"), (4, "failed")):
        metrics = classification_metrics(5)
        write_run(
            runs / f"zeros_{seed}",
            {
                "init.name": "zeros",
                "seed": seed,
                "claims": {"chance": claim(of={"init": "zeros"}, below=0.5)},
            },
            metrics,
            summary_from(metrics, status, test_acc=0.9),
        )
    (result,) = evaluate(make_study(load_runs([runs])))
    assert result.verdict == CONFIRMED  # on the three finished seeds, the two others named
    assert "(n=3, 2 failed or diverged)" in result.measured
    assert result.stats["init=zeros"].seeds == (0, 1, 2)


def test_a_claim_holds_only_where_its_given_condition_is_confirmed_too(tmp_path):
    """zeros at chance says nothing where nothing trained: `given` asks for the evidence."""
    losses = {"zeros": [2.30, 2.30, 2.31], "xavier": [1.5, 1.6, 1.55]}
    at_chance = claim(of={"init": "zeros"}, near=0.1, tol=0.05)
    trained = {"of": {"init": "xavier"}, "metric": "train_loss", "below": 2.0}
    untrained = {**trained, "below": 1.0}
    results = sweep(
        tmp_path,
        ACCS,
        {"trained": {**at_chance, "given": trained}, "not": {**at_chance, "given": untrained}},
        train_loss=losses,
    )
    assert results["trained"].verdict == CONFIRMED
    assert "given train_loss of init=xavier: 1.55" in results["trained"].measured
    assert results["not"].verdict == REFUTED  # xavier's loss is clearly above 1.0
    assert "given train_loss of init=xavier below 1" in results["not"].line()
