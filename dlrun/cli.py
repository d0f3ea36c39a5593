"""The command line: `dlrun <command>` dispatched to its function, errors as one line.

`dlrun train` is a Hydra app (composition: dlrun.compose); `dlrun list`,
`report` and `gradcheck` are plain subcommands. Bad input ends with one line on
stderr and exit code 2. Nothing here imports torch until a subcommand needs
it, so `dlrun --help` is instant.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

from dlrun.errors import ConfigError, RunFailed, UsageError

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


# --- dlrun train --------------------------------------------------------------


_outcome: dict[str, Exception] = {}  # a single run's failure, raised after Hydra returns


def train_task(cfg) -> float | None:
    """The Hydra task: one run into Hydra's output folder; returns the monitored metric.

    Errors never propagate into Hydra (it would print its own banner): a single
    run stores them for `train_main`, a sweep job records them in its run
    folder (dlrun.sweeps.run_job) and the sweep moves on.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from dlrun import runs
    from dlrun.compose import pretrain_source
    from dlrun.runner import run

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    task_overrides = list(hydra_cfg.overrides.task)
    if hydra_cfg.mode == RunMode.MULTIRUN:
        from dlrun.sweeps import run_job

        launcher = {
            key: OmegaConf.select(hydra_cfg.launcher, key)
            for key in ("_target_", "n_jobs", "cpus_per_task")
        }
        return run_job(cfg, run_dir, hydra_cfg.job.num, launcher, task_overrides)
    try:
        pretrain_source(cfg, task_overrides, run)
        summary = run(cfg, run_dir)
    except ConfigError as e:
        if not cfg.resume:
            shutil.rmtree(run_dir, ignore_errors=True)  # nothing of this run was trained
        _outcome["error"] = UsageError(str(e))
        return None
    except Exception as e:
        _outcome["error"] = RunFailed(f"{type(e).__name__}: {e} (run folder {run_dir})")
        return None
    return summary.get(runs.best_key(summary["monitor"]))


def train_main(args: list[str]) -> int:
    import hydra

    from dlrun import compose, sweeps
    from dlrun.argv import train_argv
    from dlrun.paths import conf_dir

    compose.setup_hydra()
    compose.compose_once()
    args = train_argv(args)
    os.environ["HYDRA_FULL_ERROR"] = "1"  # exceptions reach us; we print one line
    app = hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="train")(
        train_task
    )
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
        sweep = sweeps.take_outcome()
        if isinstance(e, ConfigError):
            raise UsageError(str(e)) from None
        if compose.is_hydra_error(e):
            raise UsageError(compose.describe_hydra_error(e)) from None
        first_line = (str(e).strip().splitlines() or [""])[0]
        if sweep is not None:  # the launcher broke (a worker was killed): the index has the rest
            return fail(f"sweep stopped by {type(e).__name__}: {first_line} {sweep.message}", 1)
        if compose.raised_by_hydra_or_a_plugin(e):  # -m with --cfg; slurm launcher without srun
            raise UsageError(f"{type(e).__name__}: {first_line}") from None
        raise
    finally:
        sys.argv = saved_argv
    sweep = sweeps.take_outcome()
    if sweep is not None and sweep.failed:
        return fail(sweep.message, 1)
    return 0


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
