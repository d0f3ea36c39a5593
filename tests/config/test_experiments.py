"""The experiment library: every file composes; the quick sizes show the lecture's claims (slow)."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from dlrun.config.claims import check_claims
from dlrun.config.compose import parse_overrides
from dlrun.config.experiments import header, list_experiments, quick_overrides
from dlrun.paths import experiments_dir

NAMES = [name for name, _ in list_experiments()]
LECTURE_CLAIMS = {
    "mnist1d_table",
    "init_symmetry",
    "deep_init",
    "tanh_init",
    "optimizers",
    "optimizers_kappa",
    "oscillation",
    "lr_decay",
    "regularization",
    "early_stopping",
    "augmentation",
    "bottleneck",
    "transfer",
    "bias_variance",
    "double_descent",
    "exploding_gradients",
}


def test_the_library_holds_every_claim():
    assert set(NAMES) == LECTURE_CLAIMS


@pytest.mark.parametrize("name", sorted(LECTURE_CLAIMS))
def test_every_experiment_composes_with_its_header(make_cfg, name):
    path = experiments_dir() / f"{name}.yaml"
    fields = header(path)
    assert path.read_text().startswith(f"# dlrun train -m experiment={name}")
    for key in ("shows", "expected", "quick", "runtime"):
        assert fields.get(key), f"{name}.yaml has no '# {key}:' line"
    cfg = make_cfg(f"experiment={name}", quick=False)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["name"] == name
    # the quick size composes too (sweep values are checked by Hydra at launch)
    parsed = parse_overrides(quick_overrides(name))
    singles = [o.input_line for o in parsed if not o.is_sweep_override()]
    OmegaConf.to_container(make_cfg(f"experiment={name}", *singles, quick=False), resolve=True)
    claims_name_settings_the_sweep_runs(cfg, name)


def sweep_values(name: str, quick: bool) -> dict[str, set[str]]:
    """Every value each swept key takes in the experiment's sweep (its quick size's, if quick)."""
    params = OmegaConf.load(experiments_dir() / f"{name}.yaml").hydra.sweeper.params
    lines = [f"{key}={value}" for key, value in params.items()]
    lines += quick_overrides(name) if quick else []
    values: dict[str, set[str]] = {}
    for o in parse_overrides(lines):
        key = o.key_or_group.replace("/", ".")
        if o.is_sweep_override():
            values[key] = {str(v) for v in o.sweep_string_iterator()}
        else:
            values[key] = {o.get_value_element_as_str()}
    return values


def selectors(claim) -> list[dict]:
    return [s for s in (claim.of, claim.minus, claim.over, *(claim.order or [])) if s]


def claims_name_settings_the_sweep_runs(cfg, name: str) -> None:
    """Well-formed claims, two or more, whose settings the sweep (and its quick size) runs."""
    check_claims(cfg)
    assert len(cfg.claims) >= 2, f"{name} states fewer than two claims"
    for size in (False, True):
        swept = sweep_values(name, quick=size)
        for claim_name, claim in cfg.claims.items():
            if size and not claim.quick:
                continue
            for selector in selectors(claim):
                for key, value in selector.items():
                    if key in swept:  # a key the sweep fixes must match the composed config
                        text = (
                            "null"
                            if value is None
                            else str(value).lower()
                            if isinstance(value, bool)
                            else str(value)
                        )
                        assert any(
                            v.lower() == text.lower() or float_equal(v, value) for v in swept[key]
                        ), (
                            f"{name}: claim {claim_name} wants {key}={value}; "
                            f"the {'quick' if size else 'full'} sweep runs {sorted(swept[key])}"
                        )


def float_equal(text: str, value) -> bool:
    try:
        return math.isclose(float(text), float(value))
    except (TypeError, ValueError):
        return False


# --- the quick sizes, run as a user checks them: every claim confirmed --------------


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NAMES))
def test_the_quick_size_confirms_every_claim(tmp_path, name):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    args = [
        "-m",
        "dlrun",
        "check",
        name,
        "quick=true",
        "trainer.progress=false",
        "trainer.threads=1",
    ]
    out = subprocess.run(
        [sys.executable, *args], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    claims = OmegaConf.load(experiments_dir() / f"{name}.yaml").claims
    if any(claim.get("quick", True) for claim in claims.values()):
        assert "every claim confirmed" in out.stdout
    else:  # every claim needs the full size (bottleneck, mnist1d_table)
        assert f"no claim decided at this size (– {len(claims)} skipped)" in out.stdout


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NAMES))
def test_no_claim_survives_its_negative_control_at_the_quick_size(tmp_path, name):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    args = ["-m", "dlrun", "check", name, "--controls", "--quick", "trainer.progress=false"]
    out = subprocess.run(
        [sys.executable, *args, "trainer.threads=1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "every claim refuted or inconclusive under its control" in out.stdout
