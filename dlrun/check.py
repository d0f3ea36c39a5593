"""`dlrun check`: run an experiment as `dlrun train -m` would and decide its claims.

    dlrun check <experiment>... [quick=true] [key=value...]
    dlrun check --all [--quick] [key=value...]

Each experiment runs in its own process into a sweep folder of its own
(outputs/sweeps/<date>/<time>_<name>, the training output in check.log there),
then its claims are decided as `dlrun report` decides them. Exit 0 only when
every claim of every experiment is confirmed (claims meant for the full size
are skipped at the quick size); 1 otherwise; 2 for bad input, before anything runs.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from rich.console import Console

from dlrun.errors import ConfigError, UsageError

USAGE = """\
usage: dlrun check <experiment>... [quick=true] [key=value...]
       dlrun check --all [--quick] [key=value...]

Runs each experiment (its sweep, as `dlrun train -m experiment=<name>`) and checks
its claims: exit 0 only when every claim is confirmed. `dlrun list experiments`
lists the experiments; docs/claims.md says how claims are written and decided.
"""
LOG = "check.log"


def main(args: list[str]) -> int:
    if not args or {"-h", "--help"} & set(args):
        print(USAGE, end="")
        return 0
    from dlrun.experiments import experiment_files

    known = [p.stem for p in experiment_files()]
    flags = [a for a in args if a.startswith("-")]
    names = [a for a in args if not a.startswith("-") and "=" not in a]
    overrides = [a for a in args if not a.startswith("-") and "=" in a]
    unknown_flags = set(flags) - {"--all", "--quick"}
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
            raise UsageError(f"unknown experiment {name!r}; choose from: {', '.join(known)}")
    for name in names:
        validate(name, overrides)  # every bad input before the first run starts

    console = Console(highlight=False, soft_wrap=True)
    start, outcomes = time.perf_counter(), {}
    for name in names:
        outcomes[name] = check_one(name, overrides, console)
    if len(names) > 1:
        passed = [n for n, ok in outcomes.items() if ok]
        console.print(
            f"dlrun check: {len(passed)} of {len(names)} experiments confirmed every claim "
            f"in {time.perf_counter() - start:.0f} s"
            + (
                ""
                if len(passed) == len(names)
                else f"; not: {', '.join(n for n in names if n not in passed)}"
            )
        )
    return 0 if all(outcomes.values()) else 1


def validate(name: str, overrides: list[str]) -> None:
    """The experiment composes with these overrides and states claims that are well formed."""
    from dlrun.claims import check_claims
    from dlrun.compose import compose, describe_hydra_error, is_hydra_error, parse_overrides

    fixed = [o.input_line for o in parse_overrides(overrides) if not o.is_sweep_override()]
    try:
        cfg = compose([f"experiment={name}", *fixed])
        check_claims(cfg)
    except ConfigError as e:
        raise UsageError(f"experiment {name}: {e}") from None
    except Exception as e:
        if is_hydra_error(e):
            raise UsageError(f"experiment {name}: {describe_hydra_error(e)}") from None
        raise
    if not cfg.claims:
        raise UsageError(f"experiment {name} states no claims: nothing to check")


def new_sweep_folder(name: str) -> Path:
    """outputs/sweeps/<date>/<time>_<name>, created now (_1, _2... when taken)."""
    stem = (
        Path("outputs")
        / "sweeps"
        / f"{datetime.now():%Y-%m-%d}"
        / f"{datetime.now():%H-%M-%S}_{name}"
    )
    folder, n = stem, 0
    while True:
        try:
            folder.mkdir(parents=True)
            return folder
        except FileExistsError:
            n += 1
            folder = stem.with_name(f"{stem.name}_{n}")


def check_one(name: str, overrides: list[str], console: Console) -> bool:
    """Run one experiment's sweep, print its claims; True when every claim passed."""
    from dlrun.report.claims import evaluate, print_claims, tally
    from dlrun.report.load import load_runs
    from dlrun.report.study import ReportError, make_study

    folder = new_sweep_folder(name)
    command = ["-m", f"experiment={name}", *overrides, f"hydra.sweep.dir={folder}"]
    console.print(f"dlrun check {name}: dlrun train {' '.join(command)}", markup=False)
    start = time.perf_counter()
    with open(folder / LOG, "w") as log:
        code = subprocess.run(
            [sys.executable, "-m", "dlrun", "train", *command], stdout=log, stderr=subprocess.STDOUT
        ).returncode
    seconds = time.perf_counter() - start
    if code != 0:
        tail = (folder / LOG).read_text().strip().splitlines()[-5:]
        console.print(f"  training exited with {code} ({folder / LOG}):", markup=False)
        for line in tail:
            console.print(f"    {line}", markup=False)
    try:
        results = evaluate(make_study(load_runs([folder])))
    except ReportError as e:
        console.print(f"  no claims decided: {e}", markup=False)
        return False
    print_claims(results, console)
    ok = code == 0 and bool(results) and all(r.passed for r in results)
    verdict = "every claim confirmed" if ok else "NOT every claim confirmed"
    console.print(
        f"dlrun check {name}: {verdict} ({tally(results)}) in {seconds:.0f} s; "
        f"dlrun report {folder} for the figures",
        markup=False,
    )
    return ok
