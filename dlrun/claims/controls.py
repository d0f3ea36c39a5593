"""`dlrun check <experiment> --controls`: each claim's negative control, run and decided.

A claim's `control` lists the overrides that remove its effect (no training,
the effect's knob at its neutral value, shuffled labels). The experiment's
sweep runs once per distinct control, with its overrides; the claims that name
it are decided on those runs. A control passes when none of its claims is
confirmed there: a claim confirmed under its own control cannot fail, so its
✅ was no evidence.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console

from dlrun.claims.sweep import run_sweep, validate

NO_CONTROL = "no control named"


def controls_of(claims: dict[str, Any]) -> dict[tuple[str, ...], list[str]]:
    """{control overrides: the claims that name them}; claims without one under ()."""
    grouped: dict[tuple[str, ...], list[str]] = {}
    for name, claim in claims.items():
        grouped.setdefault(tuple(claim.get("control") or ()), []).append(name)
    return grouped


def validate_controls(name: str, overrides: list[str], claims: dict[str, Any]) -> None:
    """Every control composes with the experiment (a bad one: one line, before any run)."""
    for control in controls_of(claims):
        if control:
            validate(name, [*overrides, *control])


def check_controls(name: str, overrides: list[str], claims: dict, console: Console) -> bool:
    """Run each control; True when no claim is confirmed under its own control."""
    from dlrun.claims.decide import CONFIRMED, evaluate
    from dlrun.claims.render import print_claims
    from dlrun.results.load import load_runs
    from dlrun.results.study import ReportError, make_study

    grouped = controls_of(claims)
    missing = grouped.pop((), [])
    failed = list(missing)
    for control, names in grouped.items():
        folder, code, _ = run_sweep(name, [*overrides, *control], console)
        try:
            study = make_study(load_runs([folder]))
        except ReportError as e:  # nothing trained: nothing can be confirmed
            console.print(f"  control {' '.join(control)}: no runs decided ({e})", markup=False)
            continue
        results = evaluate(study, {n: claims[n] for n in names})
        print_claims(results, console)
        survived = [r.name for r in results if r.verdict == CONFIRMED]
        failed += survived if code == 0 else names  # a control that did not run shows nothing
        console.print(
            f"  control {' '.join(control)}: "
            + (f"SURVIVED by {', '.join(survived)}" if survived else "no claim confirmed")
            + ("" if code == 0 else f" (training exited with {code})"),
            markup=False,
        )
    if missing:
        console.print(f"  {NO_CONTROL}: {', '.join(missing)}", markup=False)
    verdict = (
        "every claim refuted or inconclusive under its control"
        if not failed
        else (f"NOT every control holds: {', '.join(failed)}")
    )
    console.print(f"dlrun check {name} --controls: {verdict}", markup=False)
    return not failed
