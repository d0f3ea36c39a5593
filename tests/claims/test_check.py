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
