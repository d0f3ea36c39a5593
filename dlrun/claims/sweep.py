"""An experiment's sweep for `dlrun check`: composed and validated, run in a process of its
own into a new sweep folder, its claims decided and printed."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from rich.console import Console

from dlrun.errors import ConfigError, UsageError

LOG = "check.log"


def validate(name: str, overrides: list[str]) -> dict:
    """The experiment's claims, composed with these overrides and well formed."""
    from dlrun.config.claims import check_claims
    from dlrun.config.compose import compose, parse_overrides
    from dlrun.config.hydra_errors import describe_hydra_error, is_hydra_error
    from dlrun.config.validate import check as check_ranges

    fixed = [o.input_line for o in parse_overrides(overrides) if not o.is_sweep_override()]
    try:
        cfg = compose([f"experiment={name}", *fixed])
        check_claims(cfg)
        check_ranges(cfg)
    except ConfigError as e:
        raise UsageError(f"experiment {name}: {e}") from None
    except Exception as e:
        if is_hydra_error(e):
            raise UsageError(f"experiment {name}: {describe_hydra_error(e)}") from None
        raise
    if not cfg.claims:
        raise UsageError(f"experiment {name} states no claims: nothing to check")
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg.claims, resolve=True)


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


def run_sweep(name: str, overrides: list[str], console: Console) -> tuple[Path, int, float]:
    """Train the experiment's sweep with these overrides: (its folder, exit code, seconds)."""
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
    return folder, code, seconds


def decide(name: str, folder: Path, console: Console, claims=None, seconds=None) -> bool | None:
    """Print the claims decided on the folder's runs; True when every one passed, None when
    none was decided (each is checked at the full size only): nothing failed, nothing shown."""
    from dlrun.claims.decide import SKIPPED, evaluate
    from dlrun.claims.render import print_claims, tally
    from dlrun.results.load import load_runs
    from dlrun.results.study import ReportError, make_study

    try:
        runs = load_runs([folder])
        results = evaluate(make_study(runs), claims)
    except ReportError as e:
        console.print(f"  no claims decided: {e}", markup=False)
        return False
    print_claims(results, console)
    if runs.skipped:  # still running, or no summary: in no setting's n
        reasons = "; ".join(dict.fromkeys(reason for _, reason in runs.skipped))
        console.print(f"  {len(runs.skipped)} run folders not read ({reasons})", markup=False)
    ok = bool(results) and all(r.passed for r in results)
    nothing = ok and all(r.verdict == SKIPPED for r in results)
    verdict = "every claim confirmed" if ok else "NOT every claim confirmed"
    if nothing:  # a ✅ here would stand for no evidence at all
        verdict = "no claim decided at this size"
    took = f" in {seconds:.0f} s" if seconds is not None else ""
    console.print(
        f"dlrun check {name}: {verdict} ({tally(results)}){took}; "
        f"dlrun report {folder} for the figures",
        markup=False,
    )
    return None if nothing else ok
