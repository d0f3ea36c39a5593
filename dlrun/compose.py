"""Composition: Hydra's setup, the config a command line means, and Hydra's errors in one line.

The one home of the override grammar: every `key=value` dlrun reads (the
command line, an experiment's quick size, a transfer source's pretraining, the
sweep index's settings) goes through Hydra's own parser here, so any quoting
or group choice Hydra accepts works everywhere. With the CLI and the sweep
callback, the only module that imports Hydra.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from dlrun.errors import UsageError
from dlrun.hydra_errors import describe_hydra_error, is_hydra_error

EXCLUDE_KEYS = "hydra.job.config.override_dirname.exclude_keys"

# --- resolvers and Hydra's setup -----------------------------------------------


def _default_n_jobs() -> int:
    from dlrun.placement import default_n_jobs

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

    from dlrun import paths

    if not OmegaConf.has_resolver("dlrun_unique"):
        OmegaConf.register_new_resolver("dlrun_unique", paths.unique_dir, use_cache=True)
    if not OmegaConf.has_resolver("dlrun_slug"):
        OmegaConf.register_new_resolver("dlrun_slug", paths.slug)
    if not OmegaConf.has_resolver("dlrun_name"):
        OmegaConf.register_new_resolver("dlrun_name", paths.cut_name)
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
    """Register resolvers, the schema with every group choice, and the experiments (idempotent)."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    from dlrun.config import CHOICES, TrainConfig, choice_node
    from dlrun.experiments import experiment_files

    register_resolvers()
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    for group, choices in CHOICES.items():
        for choice in choices:
            cs.store(group=group, name=choice, node=choice_node(group, choice))
    for path in experiment_files(shared=True):
        node = OmegaConf.load(path)
        if path.stem.startswith("_"):  # a shared diff: a root config, not a choice of experiment=
            cs.store(name=path.stem, node=node, package="_global_")
        else:
            cs.store(group="experiment", name=path.stem, node=node, package="_global_")


def compose(overrides: Sequence[str] = ()) -> Any:
    """The config `dlrun train <overrides>` would run, without Hydra's own keys (tests, tools)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from dlrun.paths import conf_dir

    setup_hydra()
    with initialize_config_dir(version_base="1.3", config_dir=str(conf_dir()), job_name="dlrun"):
        return hydra_compose("train", overrides=list(overrides))


# --- the override grammar --------------------------------------------------------


def parse_overrides(overrides: Sequence[str]) -> list[Any]:
    """Hydra's Override objects for `key=value` strings; a bad one is a one-line UsageError."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except Exception as e:
        raise UsageError(describe_hydra_error(e)) from None
    for o in parsed:
        if not override_key(o).strip("/."):  # Hydra reads `=3` as a choice of the root group
            raise UsageError(f"cannot parse override {o.input_line!r}: no key before '='")
    return parsed


def override_key(override: Any) -> str:
    """The key as a config path: `optimizer`, `model.width`, `data/augment` (no +/~ prefix)."""
    return override.key_or_group


def override_values(overrides: Sequence[str]) -> dict[str, str]:
    """{'optimizer': 'adam', 'seed': '1'} from ['optimizer=adam', '+seed=1'], values as typed."""
    return {
        override_key(o): o.get_value_element_as_str()
        for o in parse_overrides(overrides)
        if o.value_type is not None  # `~key` deletes: no value
    }


# Hydra's flags that take a value (None: any value; else the choices it accepts).
_CFG = ("job", "hydra", "all")
_INFO = ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath")
VALUED_FLAGS: dict[str, tuple[str, ...] | None] = {
    "--cfg": _CFG, "-c": _CFG, "--info": _INFO, "-i": _INFO, "--package": None, "-p": None,
    "--config-dir": None, "-cd": None, "--config-path": None, "-cp": None,
    "--config-name": None, "-cn": None, "--experimental-rerun": None,
    "--shell-completion": None, "-sc": None,
}  # fmt: skip


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


# --- dlrun train's argv -------------------------------------------------------------


def train_argv(args: Sequence[str]) -> list[str]:
    """Hydra's argv for `dlrun train`: an experiment's quick size and, for -m, job folders
    named by what each job varies."""
    flags, overrides = split_argv(args)
    overrides = [*overrides, *quick_size(overrides)]
    parsed = parse_overrides(overrides)
    given = {override_key(o) for o in parsed}
    if {"-m", "--multirun"} & set(flags) and EXCLUDE_KEYS not in given:
        overrides += job_folder_names(parsed)
    return [*flags, *overrides]


def resume_request(args: Sequence[str]) -> tuple[str, dict[str, Any]] | None:
    """(folder, {config path: value}) for `dlrun train resume=<folder> [key=value...]`, else None.

    Group choices become their `name` key (`device=cpu` -> `device.name`), so
    dlrun.resume compares them with the folder's config.yaml.
    """
    from dlrun.config import CHOICES

    flags, overrides = split_argv(args)
    parsed = parse_overrides(overrides)
    folder = next((o.value() for o in parsed if override_key(o) == "resume"), None)
    if folder is None:
        return None
    if flags or any(o.is_sweep_override() or o.is_delete() for o in parsed):
        raise UsageError(
            f"resume={folder} continues one run: no flags, sweeps or ~deletions beside it "
            "(to resume a sweep, repeat it with hydra.sweep.dir=<its folder>)"
        )
    values = {}
    for o in parsed:
        key = override_key(o)
        values[f"{key.replace('/', '.')}.name" if key in CHOICES else key] = o.value()
    return str(folder), values


def check_fixed(args: Sequence[str]) -> None:
    """For -m: the settings every job shares, range-checked before the sweep folder exists."""
    from dlrun import validate
    from dlrun.errors import ConfigError

    parsed = parse_overrides(split_argv(args)[1])
    fixed = [
        o.input_line for o in parsed if not o.is_sweep_override() and not o.is_hydra_override()
    ]
    try:
        validate.check(compose(fixed))
    except ConfigError as e:
        raise UsageError(str(e)) from None
    except Exception as e:  # Hydra reports a bad choice or type in one line when it composes
        if not is_hydra_error(e):
            raise


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
    from dlrun.experiments import quick_overrides

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


def pretrain_source(cfg: Any, task_overrides: Sequence[str], train: Callable) -> None:
    """Train a transfer source first when `transfer.pretrain` says how and it has no checkpoint.

    The source's config is this run's command line composed again with the
    pretrain overrides after it, so `transfer.pretrain=[model=cnn1d]` picks a
    group choice exactly as on the command line.
    """
    if not cfg.transfer.source or not cfg.transfer.pretrain:
        return
    from dlrun.errors import TransferError
    from dlrun.transfer import ensure_source

    def source_config() -> Any:
        try:
            return compose([*task_overrides, *cfg.transfer.pretrain])
        except UsageError:
            raise
        except Exception as e:
            raise TransferError(f"transfer.pretrain: {describe_hydra_error(e)}") from None

    ensure_source(cfg, train, source_config)
