"""The command line: `dlrun <command>` dispatched to its function, errors as one line.

`dlrun train` is a Hydra app (composition: dlrun.config.compose); `dlrun list`,
`report`, `gradcheck` and `check` are plain subcommands. Bad input ends with one line on
stderr and exit code 2. Nothing here imports torch until a subcommand needs
it, so `dlrun --help` is instant.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dlrun.errors import ConfigError, Interrupted, RunFailed, UsageError

USAGE = """\
usage: dlrun <command> [args]

commands:
  train [overrides]        train a model; -m runs a sweep (Hydra multirun)
  report [PATH...] [opts]  plots and tables for run folders and sweeps (default: the newest)
  runs [PATH] [--sweeps]   the runs (or sweeps) under PATH (default: outputs), newest first
  export KIND PATH...      copy run folders to tensorboard event files or an mlflow store
  list [WHAT]              config groups and choices, launchers and sweepers, experiments
  gradcheck [overrides]    autograd against finite differences on the configured model
  check <experiment>       run an experiment and check its claims (--all [--quick]: every one)

examples:
  dlrun train optimizer=adam init=xavier
  dlrun train -m optimizer=sgd,momentum,adam seed=0,1,2
  dlrun report             the newest sweep (or run) under outputs/
  dlrun check init_symmetry quick=true
  dlrun train --help       every config key, with its default and what it means
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
    commands = {"train": train_main} | {
        name: delegated(module) for name, module in ELSEWHERE.items()
    }
    if argv[0] in ("-sc", "--shell-completion"):
        from dlrun.cli.completion import complete

        return complete(argv, list(commands), train_main)
    command, args = argv[0], argv[1:]
    if command not in commands:
        from dlrun.config.keys import choice_suggestion

        meant = choice_suggestion(command, list(commands))
        return fail(
            f"unknown command {command!r}{meant} (commands: {', '.join(commands)}; dlrun --help)"
        )
    try:
        return commands[command](args)
    except UsageError as e:
        return fail(str(e))
    except RunFailed as e:  # a full disk, a run that raised: the folder says `failed`
        return fail(str(e), 1)
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM (dlrun.run.signals): 130 or 143
        print(f"dlrun: {e or 'interrupted'}", file=sys.stderr)
        return getattr(e, "exit_code", 130)
    except BrokenPipeError:  # `dlrun runs | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell pipeline reports it


# --- dlrun train --------------------------------------------------------------


_outcome: dict[str, Exception] = {}  # a single run's failure, raised after Hydra returns


def train_task(cfg) -> float | None:
    """The Hydra task: one run into Hydra's output folder; returns the monitored metric.

    Errors never propagate into Hydra (it would print its own banner): a single
    run stores them for `train_main`, a sweep job records them in its run
    folder (dlrun.sweeps.job.run_job) and the sweep moves on.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from dlrun.folders import runs
    from dlrun.paths import remove_refused
    from dlrun.run.runner import run
    from dlrun.toolbox.transfer import pretrain_source

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    task_overrides = list(hydra_cfg.overrides.task)
    if hydra_cfg.mode == RunMode.MULTIRUN:
        from dlrun.sweeps.job import run_job

        launcher = {
            key: OmegaConf.select(hydra_cfg.launcher, key)
            for key in ("_target_", "n_jobs", "cpus_per_task")
        }
        return run_job(cfg, run_dir, hydra_cfg.job.num, launcher, task_overrides)
    try:
        pretrain_source(cfg, task_overrides, run)
        summary = run(cfg, run_dir)
    except (ConfigError, UsageError) as e:
        remove_refused(run_dir)  # nothing of it is left, not even an empty date folder
        _outcome["error"] = UsageError(str(e))
        return None
    except RunFailed as e:  # a full disk: the message names the file
        _outcome["error"] = e
        return None
    except Exception as e:
        _outcome["error"] = RunFailed(f"{type(e).__name__}: {e} (run folder {run_dir})")
        return None
    return summary.get(runs.best_key(summary["monitor"]))


def resume_main(folder: str, overrides: dict) -> int:
    """`dlrun train resume=<folder> [key=value...]`: dlrun.run.resume, without Hydra's app."""
    from dlrun.run.resume import resume_run

    try:
        resume_run(folder, overrides)
    except ConfigError as e:
        raise UsageError(str(e)) from None
    except Exception as e:  # a run that raised: one line, as from train_task
        raise e if isinstance(e, RunFailed) else RunFailed(f"{type(e).__name__}: {e}") from None
    return 0


def train_main(args: list[str]) -> int:
    import hydra

    from dlrun.cli.argv import check_fixed, resume_request, split_argv, train_argv
    from dlrun.config import compose, hydra_errors
    from dlrun.paths import conf_dir
    from dlrun.sweeps import job as sweeps

    request = resume_request(args)
    if request is not None:
        return resume_main(*request)
    compose.setup_hydra()
    flags, overrides = split_argv(args)
    if {"-h", "--help"} & set(flags):
        return train_help(overrides)
    compose.compose_once()
    if {"-m", "--multirun"} & set(args):
        check_fixed(args)  # nothing of a sweep is written before its shared settings pass
    else:
        refuse_a_run_folder(overrides)
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
    except KeyboardInterrupt as e:
        sweep = sweeps.take_outcome(interrupted=True)  # the index and table keep the jobs so far
        if sweep is None:
            raise
        name, code = getattr(e, "signal_name", "SIGINT"), getattr(e, "exit_code", 130)
        raise Interrupted(name, code, f"{name}: the sweep stopped; {sweep.message}") from None
    except sweeps.SweepRefused as e:
        raise UsageError(str(e)) from None
    except Exception as e:  # composition: unknown choice, wrong type, bad override syntax
        sweep = sweeps.take_outcome()
        if isinstance(e, ConfigError):
            raise UsageError(str(e)) from None
        if hydra_errors.is_hydra_error(e):  # before OSError: MissingConfigException is one
            raise UsageError(hydra_errors.describe_hydra_error(e)) from None
        if isinstance(e, OSError):  # Hydra could not write its files (.hydra/, a sweep folder)
            return fail(f"cannot write {e.filename or 'the output folder'}: {e.strerror or e}", 1)
        first_line = (str(e).strip().splitlines() or [""])[0]
        if sweep is not None:  # the launcher broke (a worker was killed): the index has the rest
            return fail(f"sweep stopped by {type(e).__name__}: {first_line} {sweep.message}", 1)
        if hydra_errors.raised_by_hydra_or_a_plugin(
            e
        ):  # -m with --cfg; slurm launcher without srun
            raise UsageError(f"{type(e).__name__}: {first_line}") from None
        raise
    finally:
        sys.argv = saved_argv
    sweep = sweeps.take_outcome()
    if sweep is not None and sweep.failed:
        return fail(sweep.message, 1)
    return 0


def refuse_a_run_folder(overrides: list[str]) -> None:
    """A new run never goes into a folder that holds one (`hydra.run.dir=<a run>`): it would be lost.

    Checked before Hydra writes `.hydra/` there, so the folder is left as it was. A
    folder whose run saved no epoch (killed at start-up, refused) holds nothing to lose.
    """
    import shlex

    from dlrun.config.compose import override_key, parse_overrides
    from dlrun.folders import runs

    given = [o for o in parse_overrides(overrides) if override_key(o) == "hydra.run.dir"]
    folder = Path(str(given[-1].value())) if given else None
    if folder is None or "${" in str(folder) or not folder.is_dir():
        return  # dlrun's own folder names are new each time
    status = (runs.read_summary(folder) or {}).get("status", "no summary")
    if status not in runs.FINISHED and not os.path.lexists(runs.last_checkpoint(folder)):
        return
    raise UsageError(
        f"hydra.run.dir={folder} holds a run ({status}); continue it with: dlrun train "
        f"resume={shlex.quote(str(folder))} (and trainer.epochs= to train longer), or give "
        "a new folder (without hydra.run.dir, dlrun makes one under outputs/runs/)"
    )


def train_help(overrides: list[str]) -> int:
    """Every key of the config these overrides compose, with its default and description."""
    from omegaconf import OmegaConf

    from dlrun.cli.schema_help import page
    from dlrun.config import compose, hydra_errors
    from dlrun.config.choices import CHOICES
    from dlrun.config.experiments import list_experiments
    from dlrun.paths import conf_dir

    try:
        cfg = compose.compose(overrides)
    except Exception as e:
        if hydra_errors.is_hydra_error(e):
            raise UsageError(hydra_errors.describe_hydra_error(e)) from None
        raise
    text = OmegaConf.load(conf_dir() / "train.yaml").hydra.help
    groups = {group: list(choices) for group, choices in CHOICES.items()}
    groups["experiment"] = [name for name, _ in list_experiments()]
    print(page(cfg, text.header, groups, text.footer), end="")
    return 0


# --- other subcommands --------------------------------------------------------


# commands whose code is a module of its own, imported only when typed
ELSEWHERE = {
    "report": "dlrun.report.cli",
    "runs": "dlrun.results.listing",
    "export": "dlrun.trackers.export",
    "list": "dlrun.cli.catalog",
    "gradcheck": "dlrun.toolbox.gradcheck",
    "check": "dlrun.claims.check",
}


def delegated(module: str):
    def command(args: list[str]) -> int:
        import importlib

        return importlib.import_module(module).main(args)

    return command
