"""Findings: the sentences at the top of a report (dlrun/report/findings.py)."""

from __future__ import annotations

from dlrun.report.findings import findings
from dlrun.results.load import load_runs
from dlrun.results.study import make_study

from synthetic_runs import (
    classification_metrics,
    summary_from,
    write_run,
)


def test_findings_name_overfitting_diverged_and_edge(tmp_path):
    """lr sweep, 2 seeds: one overfitting run, one diverged run, the best lr the largest one."""
    rates = [1e-4, 1e-3, 1e-2]
    for i, (lr, seed) in enumerate((lr, s) for lr in rates for s in range(2)):
        overfit = {"overfit_from": 8, "overfit_slope": 0.05} if (lr, seed) == (1e-3, 1) else {}
        metrics = classification_metrics(25, **overfit)
        summary = summary_from(metrics, "completed", test_acc=0.5 + 20 * lr + 0.001 * seed)
        write_run(
            tmp_path / f"{i}_lr={lr},seed={seed}",
            {"optimizer.lr": lr, "seed": seed},
            metrics,
            summary,
        )
    metrics = classification_metrics(25, diverge_at=4)
    write_run(
        tmp_path / "6_lr=1.0,seed=0",
        {"optimizer.lr": 1.0, "seed": 0},
        metrics,
        summary_from(metrics, "diverged"),
    )

    text = "\n".join(findings(make_study(load_runs([tmp_path]))))
    assert "Best of 3 settings: optimizer.lr=0.01" in text
    assert (
        "Run 3_lr=0.001,seed=1 (optimizer.lr=0.001) overfit: validation loss bottomed out at epoch 8"
        in text
    )
    assert "Run 6_lr=1.0,seed=0 (optimizer.lr=1) diverged at epoch 4 (training loss nan)" in text
    assert (
        "at optimizer.lr=0.01, the largest value searched (0.0001 to 0.01): widen the range above 0.01"
        in text
    )
    # no other run overfits, and seed spreads (0.0007) are far below the lr differences
    assert text.count("overfit") == 1 and "seed spread" not in text


def test_findings_flag_differences_smaller_than_seed_spread(tmp_path):
    for i, (init, seed) in enumerate((n, s) for n in ("he", "xavier") for s in range(3)):
        metrics = classification_metrics(5)
        summary = summary_from(
            metrics, "completed", test_acc=0.80 + (0.005 if init == "he" else 0.0) + 0.05 * seed
        )
        write_run(tmp_path / f"{i}", {"init.name": init, "seed": seed}, metrics, summary)
    text = "\n".join(findings(make_study(load_runs([tmp_path]))))
    assert (
        "init=he and init=xavier differ by 0.005 in test accuracy, less than their seed spread"
        in text
    )


def test_findings_and_the_table_round_a_setting_alike(tmp_path):
    from dlrun.report.tables import settings_frame

    for seed, acc in enumerate((0.4024, 0.4138, 0.4252)):  # mean 0.4138, std 0.0114
        metrics = classification_metrics(10)
        write_run(
            tmp_path / f"{seed}",
            {"seed": seed},
            metrics,
            summary_from(metrics, "completed", test_acc=acc),
        )
    study = make_study(load_runs([tmp_path]))
    cell = settings_frame(study)["test accuracy"].iloc[0]
    assert cell == "0.414 ± 0.011"  # the std to two digits, the mean to the same decimal
    assert f"test accuracy {cell} (n=3)" in findings(study)[0]


def test_a_finding_says_when_every_run_was_still_improving(tmp_path):
    for seed in range(2):
        metrics = classification_metrics(10)  # falling to the end: the best epoch is the last
        write_run(tmp_path / f"{seed}", {"seed": seed}, metrics, summary_from(metrics, "completed"))
    text = "\n".join(findings(make_study(load_runs([tmp_path]))))
    assert "Every run's (2 runs) best epoch was its last" in text and "trainer.epochs" in text
    metrics = classification_metrics(10, overfit_from=5)
    write_run(tmp_path / "2", {"seed": 2}, metrics, summary_from(metrics, "completed"))
    assert "best epoch was its last" not in "\n".join(findings(make_study(load_runs([tmp_path]))))
