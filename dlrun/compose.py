"""Composition: Hydra's setup, the config a command line means, and Hydra's errors in one line.

The one home of the override grammar: every `key=value` dlrun reads (the
command line, an experiment's quick size, a transfer source's pretraining, the
sweep index's settings) goes through Hydra's own parser here, so any quoting
or group choice Hydra accepts works everywhere. With the CLI and the sweep
callback, the only module that imports Hydra. dlrun.argv shapes `dlrun
train`'s command line with it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dlrun.errors import UsageError

# --- resolvers and Hydra's setup -----------------------------------------------


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


_registered: list[bool] = []  # setup_hydra has run in this process


def setup_hydra() -> None:
    """Register resolvers, the schema with every group choice, and the experiments (once).

    Choices and experiments are stored as plain dicts, typed by the schema's
    fields when Hydra merges them: a structured node per choice would cost a
    few milliseconds each, and start-up pays for all of them.
    """
    register_resolvers()
    if _registered:
        return
    import dataclasses

    import yaml
    from hydra.core.config_store import ConfigStore

    from dlrun.config import CHOICES, TrainConfig, choice_node
    from dlrun.experiments import experiment_files

    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    for group, choices in CHOICES.items():
        for choice in choices:
            cs.store(group=group, name=choice, node=dataclasses.asdict(choice_node(group, choice)))
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser: 20x faster
    for path in experiment_files(shared=True):
        node = yaml.load(path.read_text(), Loader=loader) or {}
        if path.stem.startswith("_"):  # a shared diff: a root config, not a choice of experiment=
            cs.store(name=path.stem, node=node, package="_global_")
        else:
            cs.store(group="experiment", name=path.stem, node=node, package="_global_")
    _registered.append(True)


def compose_once() -> None:
    """Make `hydra.main` compose the config once, not twice.

    Before running, Hydra composes the whole config only to read `hydra.mode`
    (Hydra._internal.hydra.Hydra.get_mode), then composes it again to run: a
    few hundred milliseconds of every `dlrun train`. dlrun's configs never
    set `hydra.mode`, so it can only come from the command line, where Hydra's
    parser reads it; None lets `-m` decide, as Hydra does when it is unset.
    """
    from hydra._internal.hydra import Hydra
    from hydra.types import RunMode

    def get_mode(self: Any, config_name: str | None, overrides: list[str]) -> Any:
        modes = [o.value() for o in parse_overrides(overrides) if override_key(o) == "hydra.mode"]
        return RunMode[str(modes[-1])] if modes and modes[-1] is not None else None

    Hydra.get_mode = get_mode


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
        return OverridesParser.create().parse_overrides(list(overrides))
    except Exception as e:
        raise UsageError(describe_hydra_error(e)) from None


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


# --- Hydra's errors in one line -----------------------------------------------------


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
            hint = ""
            if re.search(r"=\[[^\]\"']*=", exc.override):  # key=[a=b]: `=` inside a list
                hint = ' (quote list items that hold "=": key=["a=b","c=d"])'
            return f"cannot parse override {exc.override!r}: {(detail or lines)[0]}{hint}"
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


def is_hydra_error(e: BaseException) -> bool:
    module = type(e).__module__
    return module.startswith(("hydra", "omegaconf")) or type(e).__name__ == "OverrideParseException"


def raised_by_hydra_or_a_plugin(e: BaseException) -> bool:
    """A plain error (ValueError, RuntimeError) raised inside Hydra or a launcher's library."""
    import traceback

    frames = traceback.extract_tb(e.__traceback__)
    parts = Path(frames[-1].filename).parts if frames else ()
    return any(part in ("hydra", "hydra_plugins", "submitit", "joblib", "optuna") for part in parts)
