"""`dlrun train`'s command line: Hydra's flags anywhere, a quick size, a resume request, job folders.

Hydra's own argument parser wants its flags before the overrides; users type
them anywhere (`dlrun train optimizer=sgd,adam -m`). The argv built here is
what Hydra then parses; every override in it is read through dlrun.config.compose.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dlrun.config.compose import compose, override_key, parse_overrides
from dlrun.config.hydra_errors import experiment_without_m, sweep_without_m
from dlrun.errors import UsageError

EXCLUDE_KEYS = "hydra.job.config.override_dirname.exclude_keys"

# Hydra's flags that take a value (None: any value; else the choices it accepts).
_CFG = ("job", "hydra", "all")
_INFO = ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath")
VALUED_FLAGS: dict[str, tuple[str, ...] | None] = {
    "--cfg": _CFG, "-c": _CFG, "--info": _INFO, "-i": _INFO, "--package": None, "-p": None,
    "--config-dir": None, "-cd": None, "--config-path": None, "-cp": None,
    "--config-name": None, "-cn": None, "--experimental-rerun": None,
    "--shell-completion": None, "-sc": None,
}  # fmt: skip


# flags that print the config or Hydra's view of it and run nothing
INSPECT_FLAGS = {"--cfg", "-c", "--info", "-i", "-sc", "--shell-completion"}


def split_argv(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """(Hydra's flags with their values, overrides): flags may come anywhere on the line.

    An override never starts with `-` (`+key`, `~key`, `++key` do not), so
    anything that does is a flag.
    """
    flags: list[str] = []
    overrides: list[str] = []
    args = list(args)
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("-"):
            overrides.append(arg)
        else:
            flags.append(arg)
            if arg in VALUED_FLAGS and i + 1 < len(args):
                choices = VALUED_FLAGS[arg]
                if choices is None or args[i + 1] in choices:
                    flags.append(args[i + 1])
                    i += 1
        i += 1
    return flags, overrides


def train_argv(args: Sequence[str]) -> list[str]:
    """Hydra's argv for `dlrun train`: an experiment's quick size and, for -m, job folders
    named by what each job varies. (`resume=` never reaches Hydra: resume_request.)"""
    flags, overrides = split_argv(args)
    multirun = bool({"-m", "--multirun"} & set(flags))
    if not multirun and not {"-sc", "--shell-completion"} & set(flags):
        swept = [o for o in parse_overrides(overrides) if o.is_sweep_override()]
        if swept:  # Hydra would say "Ambiguous value" and never mention -m
            raise UsageError(sweep_without_m(swept[0].input_line))
    added_keys(overrides)
    overrides = [*overrides, *quick_size(overrides)]
    parsed = parse_overrides(overrides)
    if not multirun and not INSPECT_FLAGS & set(flags):
        unswept_experiment(parsed)
    given = {override_key(o) for o in parsed}
    if multirun and EXCLUDE_KEYS not in given:
        overrides += job_folder_names(parsed)
    return [*flags, *overrides]


def added_keys(overrides: Sequence[str]) -> None:
    """Refuse `+key=` / `++key=` for a key nothing reads (`+trainer.epoch=3`), in one line."""
    from dlrun.config.keys import added_key_problem

    for o in parse_overrides(overrides):
        if (o.is_add() or o.is_force_add()) and not o.is_hydra_override():
            problem = added_key_problem(override_key(o))
            if problem:
                raise UsageError(problem)


def unswept_experiment(parsed: list[Any]) -> None:
    """Refuse `experiment=X` without -m while X sweeps keys the command line leaves open.

    Without -m Hydra ignores the experiment's `hydra.sweeper.params` and would run
    one job with the defaults of every swept key: no sweep, no claims, no word.
    With every swept key given (`experiment=deep_init init=he seed=1`) the
    command names one job of the experiment, and runs it.
    """
    from dlrun.config.experiments import sweep_params

    chosen = [o for o in parsed if override_key(o) == "experiment" and o.value()]
    if not chosen:
        return
    name = str(chosen[-1].value())
    given = {override_key(o) for o in parsed if not o.is_sweep_override()}
    swept = {k: v for k, v in sweep_params(name).items() if k not in given}
    # a quick size may sweep too (model.width=4,16,64): still a sweep
    swept |= {
        override_key(o): o.input_line[len(o.get_key_element()) + 1 :]
        for o in parsed
        if o.is_sweep_override()
    }
    if swept:
        raise UsageError(experiment_without_m(name, swept))


def resume_request(args: Sequence[str]) -> tuple[str, dict[str, Any]] | None:
    """(folder, {config path: value}) for `dlrun train resume=<folder> [key=value...]`, else None.

    Group choices become their `name` key (`device=cpu` -> `device.name`), so
    dlrun.run.resume compares them with the folder's config.yaml.
    """
    from dlrun.config.choices import CHOICES

    flags, overrides = split_argv(args)
    # The folder as typed: job folders are named `3_optimizer=adam,seed=1`, which
    # Hydra's grammar would read as a sweep or fail on. A quoted value Hydra unquotes.
    typed = [a for a in overrides if a.startswith("resume=") and a[7:8] not in ("'", '"')]
    overrides = [a for a in overrides if a not in typed]
    parsed = parse_overrides(overrides)
    folder = typed[-1][7:] if typed else None
    folder = next((o.value() for o in parsed if override_key(o) == "resume"), folder)
    if folder is None:
        return None
    parsed = [o for o in parsed if override_key(o) != "resume"]
    if flags or any(o.is_sweep_override() or o.is_delete() for o in parsed):
        raise UsageError(
            f"resume={folder} continues one run: no flags, sweeps or ~deletions beside it "
            "(to resume a sweep, repeat it with hydra.sweep.dir=<its folder>)"
        )
    values: dict[str, Any] = {"resume": folder}
    for o in parsed:
        key = override_key(o)
        values[f"{key.replace('/', '.')}.name" if key in CHOICES else key] = o.value()
    return str(folder), values


def check_fixed(args: Sequence[str]) -> None:
    """For -m: the settings every job shares, range-checked before the sweep folder exists."""
    from dlrun.config import validate
    from dlrun.config.hydra_errors import describe_hydra_error, is_hydra_error
    from dlrun.errors import ConfigError

    parsed = parse_overrides(split_argv(args)[1])
    fixed = [
        o.input_line for o in parsed if not o.is_sweep_override() and not o.is_hydra_override()
    ]
    try:
        validate.check(compose([*fixed, *first_values(parsed)]))
    except ConfigError as e:
        raise UsageError(str(e)) from None
    except Exception as e:  # a bad choice or type: the one line Hydra's own compose would give
        if not is_hydra_error(e):
            raise
        raise UsageError(describe_hydra_error(e)) from None


def first_values(parsed: Sequence[Any]) -> list[str]:
    """The first job's value of each swept key (`data.shufle=true,false` -> `data.shufle=true`):
    a key, choice or value no job can use is refused before the sweep folder exists."""
    first = []
    for o in parsed:
        if not o.is_sweep_override() or o.is_hydra_override():
            continue
        try:
            value = next(iter(o.sweep_string_iterator()), None)
        except Exception:  # glob(*), interval(...): Hydra's loader or the sweeper expands them
            continue
        if value is not None:
            first.append(f"{o.get_key_element()}={value}")
    return first


def quick_size(overrides: Sequence[str]) -> list[str]:
    """An experiment's quick-size overrides when the composed config says `quick: true`.

    The user's own keys win over the quick size's. Only an `experiment=` choice
    has a quick size, so other command lines are not composed here.
    """
    parsed = parse_overrides(overrides)
    chosen = [o for o in parsed if override_key(o) == "experiment" and o.value()]
    if not chosen:
        return []
    fixed = [
        o.input_line for o in parsed if not o.is_sweep_override() and not o.is_hydra_override()
    ]
    try:
        quick = compose(fixed).quick
    except Exception:
        return []  # a bad override: Hydra reports it in one line when the run composes
    if not quick:
        return []
    from dlrun.config.experiments import quick_overrides

    given = {override_key(o) for o in parsed}
    extra = parse_overrides(quick_overrides(str(chosen[-1].value())))
    return [o.input_line for o in extra if override_key(o) not in given]


def job_folder_names(parsed: list[Any]) -> list[str]:
    """For -m, leave the overrides every job shares out of the job folders' names.

    A job folder is then `<job number>_<what this job varies>`, e.g.
    `3_optimizer=adam,seed=1`: short, and found again when the same sweep is
    re-run into its folder (resume).
    """
    from omegaconf import OmegaConf

    from dlrun.paths import conf_dir

    fixed = [
        override_key(o) for o in parsed if not o.is_sweep_override() and not o.is_hydra_override()
    ]
    if not fixed:
        return []
    defaults = OmegaConf.load(conf_dir() / "train.yaml").hydra.job.config.override_dirname
    keys = ",".join(f"'{key}'" for key in dict.fromkeys([*defaults.exclude_keys, *fixed]))
    return [f"{EXCLUDE_KEYS}=[{keys}]"]
