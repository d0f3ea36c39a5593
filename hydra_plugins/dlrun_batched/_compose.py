"""Each job's config, composed by Hydra once and then derived: the batched launcher's composition.

Hydra composes every job of a sweep from scratch (`load_sweep_config`: the
defaults tree, every config file, the merge), about 0.2 s of CPU per job, and
does it twice: the sweeper composes the whole batch to validate it, then the
launcher composes each job again to run it. The batched launcher runs in the
sweeper's process, so its config loader (`ComposingLoader`) composes each job
once, keeps it, and hands the launcher a copy.
Jobs of a grid sweep differ only in plain values (`seed=3`), applied after the
defaults tree anyway. So a job whose overrides differ from the first job's only
in such values (the same keys in the same order; none a config group, a Hydra
key, an addition or a deletion) is the first job's config with those values set
by Hydra's own override code, and its override list and `override_dirname`
set as Hydra sets them. The first derived job is also composed in full and the
two compared; on any difference every job is composed in full.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import OverrideType, ValueType
from omegaconf import DictConfig, OmegaConf, open_dict, read_write


class ComposingLoader:
    """Hydra's config loader with load_sweep_config through a Composer, each job composed once."""

    def __init__(self, loader: Any):
        self._loader = loader
        self._composers: dict[int, Composer] = {}  # one per master config (sweep)
        self._jobs: dict[tuple[int, tuple[str, ...]], DictConfig] = {}

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> Any:
        key = (id(master_config), tuple(sweep_overrides))
        if key not in self._jobs:
            composer = self._composers.get(id(master_config))
            if composer is None:
                composer = self._composers[id(master_config)] = Composer(
                    self._loader, master_config
                )
            self._jobs[key] = composer(sweep_overrides)
        return copy.deepcopy(self._jobs[key])  # the caller sets the job's number on its own

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # pickle's and copy's probes: not Hydra's loader's
            raise AttributeError(name)
        return getattr(self._loader, name)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (a SLURM task's launcher) without the jobs composed here: each task composes
        its own few again, rather than every task carrying the whole sweep's configs."""
        return {"_loader": self._loader, "_composers": {}, "_jobs": {}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


class Composer:
    def __init__(self, loader: Any, master: DictConfig):
        self.loader, self.master = loader, master
        self.parser = OverridesParser.create()
        self.first: tuple[list[Any], DictConfig] | None = None
        self.trusted: bool | None = None  # None: no derived job checked yet
        self.derived = 0  # jobs composed the short way, for the test

    def __call__(self, overrides: Sequence[str]) -> DictConfig:
        overrides = list(overrides)
        if self.first is None:
            config = self._full(overrides)
            # a copy: the launcher sets the job's number and folder on the one it gets
            self.first = (self.parser.parse_overrides(overrides), copy.deepcopy(config))
            return config
        if self.trusted is False:
            return self._full(overrides)
        derived = self._derive(overrides)
        if derived is None:
            return self._full(overrides)
        if self.trusted is None:
            full = self._full(overrides)
            self.trusted = OmegaConf.to_container(derived) == OmegaConf.to_container(full)
            return full
        self.derived += 1
        return derived

    def _full(self, overrides: list[str]) -> DictConfig:
        return self.loader.load_sweep_config(self.master, overrides)

    def _derive(self, overrides: list[str]) -> DictConfig | None:
        assert self.first is not None
        first_parsed, first_config = self.first
        parsed = self.parser.parse_overrides(overrides)
        if len(parsed) != len(first_parsed):
            return None
        groups = set(first_config.hydra.runtime.choices)
        changed = []
        for mine, theirs in zip(parsed, first_parsed):
            if mine.key_or_group != theirs.key_or_group:
                return None
            if mine.input_line != theirs.input_line:
                if not (_plain(mine, groups) and _plain(theirs, groups)):
                    return None
                changed.append(mine)
        config = copy.deepcopy(first_config)
        ConfigLoaderImpl._apply_overrides_to_config(changed, config)  # Hydra's own semantics
        task = [o for o in parsed if not o.is_hydra_override()]
        job = config.hydra.job
        with read_write(config.hydra), open_dict(config.hydra):
            config.hydra.overrides.task = [o.input_line for o in task]
            job.override_dirname = get_overrides_dirname(
                overrides=task,
                kv_sep=job.config.override_dirname.kv_sep,
                item_sep=job.config.override_dirname.item_sep,
                exclude_keys=job.config.override_dirname.exclude_keys,
            )
        return config


def _plain(override: Any, groups: set[str]) -> bool:
    """`key=value` on an existing key that is not a config group: set after the defaults tree."""
    return (
        override.type == OverrideType.CHANGE
        and override.value_type == ValueType.ELEMENT
        and override.package is None
        and not override.is_hydra_override()
        and override.key_or_group not in groups
    )
