"""`dlrun check`: run an experiment as `dlrun train -m` would and decide its claims.

    dlrun check <experiment>... [quick=true] [key=value...]
    dlrun check --all [--quick] [key=value...]
    dlrun check <experiment> --on <sweep folder>
    dlrun check <experiment>... --controls [--quick] [key=value...]

Each experiment runs in its own process into a sweep folder of its own
(outputs/sweeps/<date>/<time>_<name>, the training output in check.log there),
then its claims are decided as `dlrun report` decides them; `--on` decides the
experiment file's claims as they are now on runs made before, and only on runs
that experiment made (each run folder records it: exit 2 for any other). Exit 0 only when
every claim of every experiment is confirmed (claims meant for the full size
are skipped at the quick size); 1 otherwise; 2 for bad input, before anything runs.
With --controls, each claim's negative control runs instead (dlrun.claims.controls):
exit 0 only when no claim is confirmed under its own control.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from dlrun.claims.provenance import refuse_others
from dlrun.claims.sweep import decide, run_sweep, validate
from dlrun.errors import UsageError

USAGE = """\
usage: dlrun check <experiment>... [quick=true] [key=value...]
       dlrun check --all [--quick] [key=value...]
       dlrun check <experiment> --on <sweep folder>
       dlrun check <experiment>... --controls [--quick] [key=value...]

Runs each experiment (its sweep, as `dlrun train -m experiment=<name>`) and checks
its claims: exit 0 only when every claim is confirmed. With --on, decides the
experiment's claims, as its file states them now, on a sweep that already ran (only
runs that experiment made). With --controls, runs each claim's negative control (its
`control:` overrides) and exits 0 only when no claim is confirmed there. `dlrun list experiments`
lists the experiments; docs/claims.md says how claims are written and decided.
"""


def main(args: list[str]) -> int:
    if not args or {"-h", "--help"} & set(args):
        print(USAGE, end="")
        return 0
    from dlrun.config.experiments import experiment_files

    known = [p.stem for p in experiment_files()]
    folder = None
    if "--on" in args:
        at = args.index("--on")
        if at + 1 >= len(args):
            raise UsageError("dlrun check --on: give the sweep folder to check")
        folder, args = Path(args[at + 1]), args[:at] + args[at + 2 :]
    flags = [a for a in args if a.startswith("-")]
    names = [a for a in args if not a.startswith("-") and "=" not in a]
    overrides = [a for a in args if not a.startswith("-") and "=" in a]
    unknown_flags = set(flags) - {"--all", "--quick", "--controls"}
    if unknown_flags:
        raise UsageError(
            f"dlrun check: unknown option {sorted(unknown_flags)[0]}; see dlrun check --help"
        )
    if "--quick" in flags:
        overrides.append("quick=true")
    if "--all" in flags:
        names = known
    if not names:
        raise UsageError("dlrun check: name an experiment (dlrun list experiments) or give --all")
    for name in names:
        if name not in known:
            from dlrun.config.keys import choice_suggestion

            meant = choice_suggestion(name, known)
            raise UsageError(
                f"unknown experiment {name!r}{meant} (choose from: {', '.join(known)})"
            )
    claims = {name: validate(name, overrides) for name in names}  # bad input: before any run
    controls = "--controls" in flags
    if controls:
        from dlrun.claims.controls import check_controls, validate_controls

        for name in names:
            validate_controls(name, overrides, claims[name])
    console = Console(highlight=False, soft_wrap=True)
    if folder is not None:
        if len(names) != 1 or not folder.is_dir() or controls:
            raise UsageError(
                "dlrun check --on: one experiment and an existing sweep folder (no --controls)"
            )
        refuse_others(names[0], folder)
        return 1 if decide(names[0], folder, console, claims[names[0]]) is False else 0

    start, outcomes = time.perf_counter(), {}
    for name in names:
        if controls:
            outcomes[name] = check_controls(name, overrides, claims[name], console)
        else:
            outcomes[name] = check_one(name, overrides, console)
    if len(names) > 1:
        passed = [n for n, ok in outcomes.items() if ok]
        idle = [n for n, ok in outcomes.items() if ok is None]  # every claim full-size only
        what = "held every control" if controls else "confirmed every claim"
        failed = [n for n in names if n not in passed and n not in idle]
        console.print(
            f"dlrun check: {len(passed)} of {len(names)} experiments {what}"
            + (f", {len(idle)} decided nothing at this size ({', '.join(idle)})" if idle else "")
            + f" in {time.perf_counter() - start:.0f} s"
            + (f"; not: {', '.join(failed)}" if failed else "")
        )
    return 1 if any(ok is False for ok in outcomes.values()) else 0


def check_one(name: str, overrides: list[str], console: Console) -> bool | None:
    """Run one experiment's sweep, print its claims; True when every claim passed (None:
    none was decided at this size)."""
    folder, code, seconds = run_sweep(name, overrides, console)
    outcome = decide(name, folder, console, seconds=seconds)
    return outcome if code == 0 else False
