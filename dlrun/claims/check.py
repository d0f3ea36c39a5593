"""`dlrun check`: run an experiment as `dlrun train -m` would and decide its claims.

    dlrun check <experiment>... [quick=true] [key=value...]
    dlrun check --all [--quick] [key=value...]
    dlrun check <experiment> --on <sweep folder>

Each experiment runs in its own process into a sweep folder of its own
(outputs/sweeps/<date>/<time>_<name>, the training output in check.log there),
then its claims are decided as `dlrun report` decides them; `--on` decides the
experiment file's claims as they are now on runs made before, and only on runs
that experiment made (each run folder records it: exit 2 for any other). Exit 0 only when
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
       dlrun check <experiment> --on <sweep folder>

Runs each experiment (its sweep, as `dlrun train -m experiment=<name>`) and checks
its claims: exit 0 only when every claim is confirmed. With --on, decides the
experiment's claims, as its file states them now, on a sweep that already ran. `dlrun list experiments`
lists the experiments; docs/claims.md says how claims are written and decided.
"""
LOG = "check.log"


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
    claims = {name: validate(name, overrides) for name in names}  # bad input: before any run
    console = Console(highlight=False, soft_wrap=True)
    if folder is not None:
        if len(names) != 1 or not folder.is_dir():
            raise UsageError("dlrun check --on: one experiment and an existing sweep folder")
        refuse_others(names[0], folder)
        return 0 if decide(names[0], folder, console, claims[names[0]]) else 1

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


def validate(name: str, overrides: list[str]) -> dict:
    """The experiment's claims, composed with these overrides and well formed."""
    from dlrun.config.claims import check_claims
    from dlrun.config.compose import compose, parse_overrides
    from dlrun.config.hydra_errors import describe_hydra_error, is_hydra_error

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
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg.claims, resolve=True)


def refuse_others(name: str, folder: Path) -> None:
    """--on decides an experiment's claims only on runs that experiment made (UsageError if not)."""
    from dlrun.results.load import find_run_dirs

    runs = find_run_dirs(folder)
    if not runs:
        raise UsageError(f"dlrun check --on {folder}: no run folders there")
    for run in runs:
        made_by = experiment_of(run)
        if made_by != name:
            raise UsageError(
                f"dlrun check {name} --on {folder}: {run} was made by "
                + (f"experiment {made_by}" if made_by else "no experiment")
                + f", not {name}; check runs against their own experiment"
            )


def experiment_of(run: Path) -> str | None:
    """The experiment a run folder was made by: its recorded `experiment=` override
    (.hydra/overrides.yaml), else its config's name. Both are untrusted: regular
    files, bounded, plain YAML."""
    import yaml

    from dlrun.folders import runs as run_folder

    def read(path: Path):
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_RECORD:
            return None
        try:
            return yaml.load(path.read_text(), Loader=yaml.CSafeLoader)
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return None

    overrides = read(run / run_folder.HYDRA / "overrides.yaml")
    if isinstance(overrides, list):
        from dlrun.config.compose import override_values

        try:
            recorded = override_values([str(o) for o in overrides])
        except UsageError:  # not Hydra's overrides: the config's name decides
            recorded = {}
        if recorded.get("experiment"):
            return recorded["experiment"]
    config = read(run / run_folder.CONFIG)
    name = config.get("name") if isinstance(config, dict) else None
    return str(name) if name is not None else None


MAX_RECORD = 1 << 20  # bytes: a config or overrides file is never larger


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
    return decide(name, folder, console, seconds=seconds) and code == 0


def decide(name: str, folder: Path, console: Console, claims=None, seconds=None) -> bool:
    """Print the claims decided on the folder's runs; True when every one passed."""
    from dlrun.claims.decide import evaluate
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
    verdict = "every claim confirmed" if ok else "NOT every claim confirmed"
    took = f" in {seconds:.0f} s" if seconds is not None else ""
    console.print(
        f"dlrun check {name}: {verdict} ({tally(results)}){took}; "
        f"dlrun report {folder} for the figures",
        markup=False,
    )
    return ok
