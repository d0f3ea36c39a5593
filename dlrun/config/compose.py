"""Composition: Hydra's setup, the config a command line means, and Hydra's errors in one line.

The one home of the override grammar: every `key=value` dlrun reads (the
command line, an experiment's quick size, a transfer source's pretraining, the
sweep index's settings) goes through Hydra's own parser here, so any quoting
or group choice Hydra accepts works everywhere. With the CLI and the sweep
callback, the only module that imports Hydra. dlrun.cli.argv shapes `dlrun
train`'s command line with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dlrun.config.hydra_errors import describe_hydra_error
from dlrun.errors import ConfigError, UsageError

# --- resolvers and Hydra's setup -----------------------------------------------


_registered: list[bool] = []  # setup_hydra has run in this process


def setup_hydra() -> None:
    """Register resolvers, the schema with every group choice, and the experiments (once).

    Choices and experiments are stored as plain dicts, typed by the schema's
    fields when Hydra merges them: a structured node per choice would cost a
    few milliseconds each, and start-up pays for all of them.
    """
    from dlrun.config.resolvers import register_resolvers

    register_resolvers()
    if _registered:
        return

    import yaml
    from hydra.core.config_store import ConfigStore

    from dlrun.config.choices import CHOICES, choice_node
    from dlrun.config.experiments import experiment_files
    from dlrun.config.schema import TrainConfig

    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    for group, choices in CHOICES.items():
        for choice in choices:
            cs.store(group=group, name=choice, node=choice_node(group, choice))
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser: 20x faster
    for path in experiment_files(shared=True):
        try:
            node = yaml.load(path.read_text(), Loader=loader) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            where = getattr(e, "problem_mark", None)
            at = f" (line {where.line + 1})" if where is not None else ""
            why = getattr(e, "problem", None) or getattr(e, "strerror", None) or type(e).__name__
            raise UsageError(
                f"{path}: not a readable YAML file{at}: {why}; fix it or remove it"
            ) from None
        if not isinstance(node, dict):
            raise UsageError(
                f"{path}: an experiment file is a YAML mapping (key: value), not {type(node).__name__}"
            )
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
    from hydra.core.global_hydra import GlobalHydra

    from dlrun.paths import conf_dir

    setup_hydra()
    if GlobalHydra.instance().is_initialized():
        # inside `dlrun train` (a sweep job pretraining its transfer source): Hydra is
        # already set up on dlrun's conf/, and cannot be initialised twice
        return hydra_compose("train", overrides=list(overrides))
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


# --- the user's own classes ---------------------------------------------------------


def instantiate(node: Any, **offered: Any) -> Any:
    """`node._target_` called by hydra.utils.instantiate with the node's other keys, and
    those of `offered` (input_shape, n_outputs...) that its signature accepts.

    The library's one use of Hydra (model=custom, data=custom), here at the edge;
    any failure is a ConfigError of one line naming the target.
    """
    import inspect

    from hydra.utils import instantiate as hydra_instantiate

    target = node.get("_target_")
    factory = locate(str(target))
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: offer nothing
        parameters = []
    takes_any = any(p.kind == p.VAR_KEYWORD for p in parameters)
    names = {p.name for p in parameters}
    given = {key: value for key, value in offered.items() if takes_any or key in names}
    try:
        return hydra_instantiate(node, **given)
    except Exception as e:
        cause = e.__cause__ or e
        raise ConfigError(
            f"_target_={target}: {type(cause).__name__}: {_first_line(cause)}"
        ) from None


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def locate(target: str) -> Any:
    """The object at a dotted path (`mypkg.nets.MyNet`), importing its modules.

    Hydra's own lookup logs its failure through Hydra's logger and words it in
    three lines; here a failure is one ConfigError with its cause and the fix.
    """
    from importlib import import_module
    from types import ModuleType

    from dlrun.config.keys import choice_suggestion

    where = f"_target_={target}: cannot import it"
    parts = target.split(".")
    if not all(parts):
        raise ConfigError(f"{where}: not a dotted path like mypkg.nets.MyNet")
    obj: Any = None
    for i, part in enumerate(parts):
        name = ".".join(parts[: i + 1])
        if obj is not None and hasattr(obj, part):
            obj = getattr(obj, part)
            continue
        if obj is None or isinstance(obj, ModuleType):
            try:
                obj = import_module(name)
                continue
            except ModuleNotFoundError as e:
                if e.name != name:  # the module was found, and imports one that is missing
                    raise ConfigError(
                        f"{where}: importing {name} needs {e.name!r}, not installed here"
                    ) from None
                if obj is None:
                    raise ConfigError(
                        f"{where}: no module named {name!r} (install it, or run dlrun from the "
                        f"folder that holds {name}/, or add that folder to PYTHONPATH)"
                    ) from None
            except Exception as e:  # the module itself raised while it was imported
                raise ConfigError(
                    f"{where}: importing {name} raised {type(e).__name__}: {_first_line(e)}"
                ) from None
        parent = ".".join(parts[:i])
        names = [n for n in dir(obj) if not n.startswith("_")]
        meant = choice_suggestion(part, names).replace("mean ", f"mean {parent}.")
        raise ConfigError(f"{where}: {parent} has no {part!r}{meant}")
    return obj
