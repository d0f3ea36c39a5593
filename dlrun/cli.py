"""The command line: the only place that touches Hydra (the sweep callback aside).

`dlrun train` is a Hydra app; `dlrun list`, `report` and `gradcheck` are plain
subcommands. Bad input ends with one line on stderr and exit code 2. Nothing
here imports torch until a subcommand needs it, so `dlrun --help` is instant.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

USAGE = """\
usage: dlrun <command> [args]

commands:
  train [overrides]        train a model; -m runs a sweep (Hydra multirun)
  report PATH... [opts]    plots and tables for run folders and sweeps
  list [experiments]       config groups, their choices, and the experiments
  gradcheck [overrides]    autograd against finite differences on the configured model

examples:
  dlrun train optimizer=adam init=xavier
  dlrun train -m optimizer=sgd,momentum,adam seed=0,1,2
  dlrun report outputs/sweeps/<date>/<time>_<name>
  dlrun train --help       every config key, with its default
"""


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit code 2."""


def fail(message: str, code: int = 2) -> int:
    print(f"dlrun: error: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0
    if argv[0] == "--version":
        from dlrun import __version__

        print(f"dlrun {__version__}")
        return 0
    if argv[0] in ("-sc", "--shell-completion"):
        # Hydra's completion script calls `dlrun -sc query=bash` with the whole
        # line in COMP_LINE: drop the `train` word so Hydra sees only overrides.
        line = os.environ.get("COMP_LINE", "")
        os.environ["COMP_LINE"] = re.sub(r"^(\S+)\s+train\b", r"\1", line)
        argv = ["train", *argv]
    command, args = argv[0], argv[1:]
    commands = {
        "train": train_main,
        "list": list_main,
        "report": report_main,
        "gradcheck": gradcheck_main,
    }
    if command not in commands:
        print(USAGE, end="", file=sys.stderr)
        return fail(f"unknown command {command!r}; choose from {', '.join(commands)}")
    try:
        return commands[command](args)
    except UsageError as e:
        return fail(str(e))
    except KeyboardInterrupt:
        return fail("interrupted", 130)


# --- Hydra setup --------------------------------------------------------------


def _unique_dir(path: str) -> str:
    """The first of path, path_1, path_2... that does not exist yet, created now."""
    candidate, n = Path(path), 0
    while True:
        try:
            candidate.mkdir(parents=True, exist_ok=False)
            return str(candidate)
        except FileExistsError:
            n += 1
            candidate = Path(f"{path}_{n}")


def _slug(text: str, limit: int = 80) -> str:
    """A filesystem-safe, short folder name for a job's overrides."""
    text = re.sub(r"[^A-Za-z0-9._=,+-]+", "-", str(text)).strip("-")
    return text[:limit] or "default"


def _default_n_jobs() -> int:
    from dlrun.sweeps import default_n_jobs

    return default_n_jobs()


def register_resolvers() -> None:
    """dlrun's resolvers (idempotent).

    Launcher workers (joblib, submitit) resolve `hydra.sweep.subdir` themselves,
    so dlrun.sweeps calls this at import: unpickling the sweep callback in a
    worker registers them before Hydra needs them. `dlrun_unique` is cached:
    every later resolution (and the copies Hydra sends to workers) sees the
    folder created the first time.
    """
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("dlrun_unique"):
        OmegaConf.register_new_resolver("dlrun_unique", _unique_dir, use_cache=True)
    if not OmegaConf.has_resolver("dlrun_slug"):
        OmegaConf.register_new_resolver("dlrun_slug", _slug)
    if not OmegaConf.has_resolver("dlrun_n_jobs"):
        OmegaConf.register_new_resolver("dlrun_n_jobs", _default_n_jobs, use_cache=True)
    if not OmegaConf.has_resolver("dlrun_is_set"):
        # experiments/early_stopping.yaml: restore the best weights only when stopping early
        OmegaConf.register_new_resolver("dlrun_is_set", lambda value: value is not None)
    if not OmegaConf.has_resolver("dlrun_textbook_lr"):
        # experiments/optimizers_kappa.yaml: step sizes tuned from the quadratic's curvature
        from dlrun.quadratic import textbook_lr, textbook_momentum

        OmegaConf.register_new_resolver("dlrun_textbook_lr", textbook_lr)
        OmegaConf.register_new_resolver("dlrun_textbook_momentum", textbook_momentum)


def setup_hydra() -> None:
    """Register resolvers, the schema and the experiments (idempotent)."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    from dlrun.config import register_configs
    from dlrun.paths import experiments_dir

    register_resolvers()
    register_configs()
    cs = ConfigStore.instance()
    for path in sorted(experiments_dir().glob("*.yaml")):
        cs.store(group="experiment", name=path.stem, node=OmegaConf.load(path), package="_global_")


def compose(overrides: list[str] | tuple[str, ...] = ()) -> Any:
    """The config `dlrun train <overrides>` would run, without Hydra's own keys (tests, tools)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from dlrun.paths import conf_dir

    setup_hydra()
    with initialize_config_dir(version_base="1.3", config_dir=str(conf_dir()), job_name="dlrun"):
        return hydra_compose("train", overrides=list(overrides))


def describe_hydra_error(exc: BaseException) -> str:
    """One line for a Hydra or OmegaConf composition error, naming the bad value."""
    from hydra.errors import MissingConfigException

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, MissingConfigException) and exc.missing_cfg_file:
            group, _, choice = str(exc.missing_cfg_file).rpartition("/")
            options = ", ".join(exc.options or [])
            if group:
                return f"unknown {group} {choice!r}; choose from: {options}"
            return f"config {choice!r} not found"
        if type(exc).__name__ == "OverrideParseException" and getattr(exc, "override", None):
            lines = [line for line in str(exc).splitlines() if line.strip()]
            detail = [line for line in lines if not line.startswith(("Error parsing", "See "))]
            return f"cannot parse override {exc.override!r}: {(detail or lines)[0]}"
        full_key = getattr(exc, "full_key", None)
        if full_key and type(exc).__name__ in (
            "ValidationError",
            "ConfigKeyError",
            "ConfigAttributeError",
            "ConfigTypeError",
        ):
            message = str(exc).split("\n")[0]
            message = re.sub(r"\s*full_key:.*", "", message)
            return f"{full_key}: {message}"
        if exc.__cause__ is None and exc.__context__ is None:
            break
        exc = exc.__cause__ or exc.__context__
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    lines = [
        line
        for line in lines
        if not line.startswith(("Config search path", "provider=", "Set the environment"))
    ]
    return " ".join(lines[:3]) or type(exc).__name__


# --- dlrun train --------------------------------------------------------------


_outcome: dict[str, Exception] = {}  # a single run's failure, raised after Hydra returns


def _task(cfg) -> float | None:
    """The Hydra task: one run into Hydra's output folder; returns the monitored metric.

    Errors never propagate into Hydra (it would print its own banner): a single
    run stores them for `train_main`, a sweep job records them in its run
    folder (dlrun.sweeps.run_job) and the sweep moves on.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from dlrun.config import ConfigError
    from dlrun.train import run

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    if hydra_cfg.mode == RunMode.MULTIRUN:
        from dlrun.sweeps import run_job

        launcher = {
            key: OmegaConf.select(hydra_cfg.launcher, key)
            for key in ("_target_", "n_jobs", "cpus_per_task")
        }
        return run_job(cfg, run_dir, hydra_cfg.job.num, launcher)
    try:
        summary = run(cfg, run_dir)
    except ConfigError as e:
        if not cfg.resume:
            shutil.rmtree(run_dir, ignore_errors=True)  # nothing of this run was trained
        _outcome["error"] = UsageError(str(e))
        return None
    except Exception as e:
        _outcome["error"] = RunFailed(f"{type(e).__name__}: {e} (run folder {run_dir})")
        return None
    monitor = summary["monitor"]
    return summary.get("best_" + monitor)


class RunFailed(Exception):
    """Training raised; the run folder keeps what was saved and says `failed`."""


def _train_argv(args: list[str]) -> list[str]:
    """Hydra's argv for `dlrun train`: an experiment's quick size; a resumed run's own folder."""
    from dlrun.experiments import with_quick_size

    args = with_quick_size(args)
    resume = [a.split("=", 1)[1] for a in args if a.startswith("resume=")]
    if resume and not any(a.startswith("hydra.run.dir=") for a in args):
        folder = Path(resume[-1])
        if not (folder / "checkpoints" / "last.pt").is_file():
            raise UsageError(f"resume={resume[-1]}: no run folder with checkpoints/last.pt there")
        args = [*args, f"hydra.run.dir={folder}"]
    return args


def train_main(args: list[str]) -> int:
    import hydra

    from dlrun import sweeps
    from dlrun.paths import conf_dir

    setup_hydra()
    args = _sweep_argv(_train_argv(args))
    os.environ["HYDRA_FULL_ERROR"] = "1"  # exceptions reach us; we print one line
    app = hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="train")(_task)
    saved_argv = sys.argv
    sys.argv = ["dlrun", *args]  # the name completion scripts register
    _outcome.clear()
    try:
        app()
        error = _outcome.pop("error", None)
        if isinstance(error, UsageError):
            raise error
        if error is not None:
            return fail(str(error), 1)
    except UsageError:
        raise
    except SystemExit as e:
        return int(e.code or 0) if not isinstance(e.code, str) else fail(e.code, 2)
    except KeyboardInterrupt:
        sweeps.take_outcome(interrupted=True)  # a sweep's index and table keep the jobs so far
        raise
    except Exception as e:  # composition: unknown choice, wrong type, bad override syntax
        from dlrun.config import ConfigError

        sweep = sweeps.take_outcome()
        if isinstance(e, ConfigError):
            raise UsageError(str(e)) from None
        if _is_hydra_error(e):
            raise UsageError(describe_hydra_error(e)) from None
        if sweep is not None:  # the launcher broke (a worker was killed): the index has the rest
            first_line = (str(e).strip().splitlines() or [""])[0]
            return fail(f"sweep stopped by {type(e).__name__}: {first_line} {sweep.message}", 1)
        if _raised_by_hydra_or_a_plugin(e):  # -m with --cfg; hydra/launcher=slurm without srun
            first_line = (str(e).strip().splitlines() or [""])[0]
            raise UsageError(f"{type(e).__name__}: {first_line}") from None
        raise
    finally:
        sys.argv = saved_argv
    sweep = sweeps.take_outcome()
    if sweep is not None and sweep.failed:
        return fail(sweep.message, 1)
    return 0


EXCLUDE_KEYS = "hydra.job.config.override_dirname.exclude_keys"


def _sweep_argv(args: list[str]) -> list[str]:
    """For -m, leave the overrides every job shares out of the job folders' names.

    A job folder is then `<job number>_<what this job varies>`, e.g.
    `3_optimizer=adam,seed=1`: short, and found again when the same sweep is
    re-run into its folder (resume).
    """
    if not {"-m", "--multirun"} & set(args) or any(a.startswith(EXCLUDE_KEYS) for a in args):
        return args
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    from dlrun.paths import conf_dir

    parser = OverridesParser.create()
    fixed = []
    for arg in args:
        if arg.startswith("-") or "=" not in arg:
            continue  # flags such as -m, --cfg job
        try:
            override = parser.parse_override(arg)
        except Exception:
            continue  # bad syntax: Hydra reports it in one line
        if not override.is_sweep_override() and not override.is_hydra_override():
            fixed.append(override.key_or_group)
    if not fixed:
        return args
    defaults = OmegaConf.load(
        conf_dir() / "train.yaml"
    ).hydra.job.config.override_dirname.exclude_keys
    keys = ",".join(f"'{key}'" for key in dict.fromkeys([*defaults, *fixed]))
    return [*args, f"{EXCLUDE_KEYS}=[{keys}]"]


def _is_hydra_error(e: BaseException) -> bool:
    module = type(e).__module__
    return module.startswith(("hydra", "omegaconf")) or type(e).__name__ == "OverrideParseException"


def _raised_by_hydra_or_a_plugin(e: BaseException) -> bool:
    """A plain error (ValueError, RuntimeError) raised inside Hydra or a launcher's library."""
    import traceback

    frames = traceback.extract_tb(e.__traceback__)
    parts = Path(frames[-1].filename).parts if frames else ()
    return any(part in ("hydra", "hydra_plugins", "submitit", "joblib", "optuna") for part in parts)


# --- dlrun list ---------------------------------------------------------------


def list_main(args: list[str]) -> int:
    from rich.console import Console
    from rich.table import Table

    from dlrun.config import CHOICES
    from dlrun.experiments import list_experiments

    console = Console()
    if args and args[0] not in ("experiments", "groups"):
        raise UsageError(f"dlrun list {args[0]!r}: choose `dlrun list` or `dlrun list experiments`")
    if not args or args[0] == "groups":
        table = Table(title="config groups (dlrun train <group>=<choice>)")
        for column in ("group", "choice", "what it is"):
            table.add_column(column)
        for group, choices in CHOICES.items():
            for i, (choice, (description, _)) in enumerate(choices.items()):
                table.add_row(group if i == 0 else "", choice, description)
            table.add_section()
        console.print(table)
    table = Table(title="experiments (dlrun train -m experiment=<name>)")
    for column in ("experiment", "what it shows"):
        table.add_column(column)
    for name, purpose in list_experiments():
        table.add_row(name, purpose)
    console.print(table)
    return 0


# --- other subcommands --------------------------------------------------------


def report_main(args: list[str]) -> int:
    from dlrun.report.cli import main as report

    return report(args)


def gradcheck_main(args: list[str]) -> int:
    from dlrun.gradcheck import main as gradcheck

    return gradcheck(args)
