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
    assert (folder / "check.log").is_file() and len(
        list(folder.glob("*/summary.json"))
    ) == 12  # 3 kappas, 2 optimizers, 2 seeds

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
    # its own runs: decided (they lack the other inits, so the claims are not measured)
    assert main(["check", "init_symmetry", "--on", str(tmp_path / "sweep")]) == 1
    assert "⚠ zeros_stay_at_chance" in capsys.readouterr().out


def test_a_claim_confirmed_under_its_own_control_fails_the_controls(tmp_path, capsys, monkeypatch):
    """--controls runs each control's sweep and fails where a claim survives it."""
    from dlrun.claims import controls

    from synthetic_runs import classification_metrics, summary_from, write_run

    ran = []

    def fake_sweep(name, overrides, console):  # the control's runs: xavier learns regardless
        folder = tmp_path / f"control{len(ran)}"
        ran.append(overrides)
        for seed, (zeros, xavier) in enumerate([(0.1, 0.5), (0.11, 0.52), (0.09, 0.55)]):
            for init, acc in (("zeros", zeros), ("xavier", xavier)):
                metrics = classification_metrics(3)
                write_run(
                    folder / f"{init}_{seed}",
                    {"init.name": init, "seed": seed, "name": name},
                    metrics,
                    summary_from(metrics, "completed", test_acc=acc),
                )
        return folder, 0, 1.0

    monkeypatch.setattr(controls, "run_sweep", fake_sweep)
    base = {"says": "x", "metric": "test_acc", "of": {"init": "xavier"}}
    claims = {
        "learns": {
            **base,
            "minus": {"init": "zeros"},
            "above": 0.2,
            "control": ["optimizer.lr=1e-9"],
        },
        "at_chance": {**base, "of": {"init": "zeros"}, "above": 0.5, "control": ["seed=5"]},
        "uncontrolled": {**base, "above": 0.1},
    }
    from rich.console import Console

    assert not controls.check_controls("init_symmetry", ["quick=true"], claims, Console())
    out = capsys.readouterr().out
    assert ran == [["quick=true", "optimizer.lr=1e-9"], ["quick=true", "seed=5"]]
    assert "control optimizer.lr=1e-9: SURVIVED by learns" in out
    assert "control seed=5: no claim confirmed" in out
    assert "no control named: uncontrolled" in out


def test_a_control_that_does_not_compose_is_refused_before_any_run(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = "claims.xavier_learns.control=[optimizer.lr=oops]"
    assert main(["check", "init_symmetry", "--controls", bad]) == 2
    assert "optimizer.lr" in capsys.readouterr().err
    assert not Path("outputs").exists()


# slow: two real sweeps at the quick size (about 40 s)
@pytest.mark.slow
def test_init_symmetry_holds_its_controls_and_its_claims(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fast = ["--quick", "trainer.progress=false", "trainer.threads=1"]
    assert main(["check", "init_symmetry", *fast]) == 0
    assert main(["check", "init_symmetry", "--controls", *fast]) == 0
    out = capsys.readouterr().out
    assert "control optimizer.lr=1e-9: no claim confirmed" in out


def test_an_experiment_that_decides_nothing_at_its_size_says_so(tmp_path, capsys, monkeypatch):
    # bottleneck's claims are all checked at the full size only: a ✅ for its quick
    # size would stand for no evidence at all
    monkeypatch.chdir(tmp_path)
    assert main(["check", "bottleneck", "quick=true", "trainer.progress=false"]) == 0
    lines = capsys.readouterr().out.splitlines()
    line = [x for x in lines if x.startswith("dlrun check bottleneck:")][-1]  # the verdict
    assert line.startswith("dlrun check bottleneck: no claim decided at this size (– 3 skipped)")


def test_check_all_counts_experiments_that_decided_nothing_apart(tmp_path, capsys, monkeypatch):
    from dlrun.claims import check

    outcomes = {"bottleneck": None, "transfer": False}  # the others: every claim confirmed
    monkeypatch.setattr(
        check, "check_one", lambda name, overrides, console: outcomes.get(name, True)
    )
    monkeypatch.chdir(tmp_path)
    assert main(["check", "--all", "--quick"]) == 1  # transfer failed
    line = capsys.readouterr().out.strip().splitlines()[-1]
    n = len(check.experiment_files()) if hasattr(check, "experiment_files") else None
    assert line.startswith("dlrun check: ") and "experiments confirmed every claim" in line
    assert ", 1 decided nothing at this size (bottleneck) in " in line and line.endswith(
        "; not: transfer"
    )
    if n is not None:
        assert line.startswith(f"dlrun check: {n - 2} of {n} experiments")
    outcomes["transfer"] = True
    assert main(["check", "--all", "--quick"]) == 0  # deciding nothing fails nothing
