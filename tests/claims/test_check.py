"""`dlrun check`: run an experiment's sweep and decide its claims; the exit code says (dlrun/claims/check.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlrun.cli.main import main


# slow: a real sweep (15 s); every experiment's `dlrun check` runs in the slow suite too
@pytest.mark.slow
def test_check_runs_the_sweep_and_exits_0_only_when_every_claim_holds(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    assert main(["check", "optimizers_kappa", "quick=true", "trainer.progress=false"]) == 0
    out = capsys.readouterr().out
    assert "✅ gd_needs_kappa_steps" in out and "every claim confirmed (✅ 3 confirmed)" in out
    (folder,) = Path("outputs/sweeps").glob("*/*_optimizers_kappa")
    assert (folder / "check.log").is_file() and len(list(folder.glob("*/summary.json"))) == 6

    # the same runs, a stricter claim: decided again without training, and refuted
    strict = "claims.momentum_is_faster.above=1000"
    assert main(["check", "optimizers_kappa", "--on", str(folder), strict]) == 1
    out = capsys.readouterr().out
    assert "❌ momentum_is_faster" in out and "expected above 1000 → not confirmed" in out
    assert len(list(Path("outputs/sweeps").glob("*/*"))) == 1  # nothing new ran


def test_check_on_refuses_runs_another_experiment_made(tmp_path, capsys):
    from synthetic_runs import classification_metrics, summary_from, write_run

    metrics = classification_metrics(3)
    for job, experiment in enumerate(["init_symmetry", "deep_init"]):
        run = write_run(
            tmp_path / "sweep" / f"{job}_job",
            {"init.name": "zeros", "seed": job, "name": "init_symmetry"},
            metrics,
            summary_from(metrics, "completed", test_acc=0.1),
        )
        (run / ".hydra").mkdir()
        (run / ".hydra" / "overrides.yaml").write_text(f"- seed={job}\n- experiment={experiment}\n")
    assert main(["check", "init_symmetry", "--on", str(tmp_path / "sweep")]) == 2
    err = capsys.readouterr().err
    assert "1_job was made by experiment deep_init, not init_symmetry" in err
    assert len(err.strip().splitlines()) == 1
    (tmp_path / "sweep" / "1_job" / ".hydra" / "overrides.yaml").write_text(
        "- experiment=init_symmetry\n"
    )
    # its own runs: decided (two seeds with the same accuracy; the other claims lack settings)
    assert main(["check", "init_symmetry", "--on", str(tmp_path / "sweep")]) == 1
    assert "✅ zeros_stay_at_chance" in capsys.readouterr().out
