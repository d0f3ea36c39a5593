"""A sweep as it starts: the keys it varies, how many jobs it plans, the search's direction.

SweepIndex.on_multirun_start (dlrun.sweeps.job) calls these in the driver,
before any job runs.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf, read_write

from dlrun.config.compose import parse_overrides
from dlrun.folders import runs
from dlrun.sweeps.count import count_jobs


def swept_keys(overrides: list[str], params: dict[str, Any] | None = None) -> list[str]:
    """The keys a sweep varies: sweeps on the command line and in hydra.sweeper.params."""
    # params first: a fixed value on the command line replaces a swept one, as in Optuna's sweeper
    lines = [*(f"{key}={value}" for key, value in (params or {}).items()), *overrides]
    try:
        parsed = parse_overrides(lines)
    except Exception:
        return []
    keys: dict[str, None] = {}
    for override in parsed:
        if override.is_hydra_override():
            continue
        if override.is_sweep_override():
            keys[override.key_or_group] = None
        else:
            keys.pop(override.key_or_group, None)
    return list(keys)


def planned_jobs(config: DictConfig) -> int | None:
    """How many jobs the sweep runs: the basic sweeper's (dlrun.sweeps.count's rule), Optuna's
    n_trials; None for others."""
    target = str(OmegaConf.select(config, "hydra.sweeper._target_") or "")
    trials = OmegaConf.select(config, "hydra.sweeper.n_trials")
    if "optuna" in target.lower() and isinstance(trials, int):
        return trials  # Optuna picks each trial's values as it goes, but runs n_trials of them
    if not target.endswith("BasicSweeper"):
        return None  # other sweepers decide as they go
    params = OmegaConf.select(config, "hydra.sweeper.params")
    params = OmegaConf.to_container(params) if params is not None else None
    return count_jobs(list(config.hydra.overrides.task), params, trials=None)


def follow_monitor(config: DictConfig) -> None:
    """Point an Optuna sweeper the way the monitored metric improves (val_acc up, val_loss down).

    Hydra builds the sweeper from this config right after on_multirun_start,
    so this covers a plain `hydra/sweeper=optuna` too.
    """
    sweeper = config.hydra.sweeper
    if "direction" not in sweeper or OmegaConf.is_list(sweeper.direction):
        return  # not Optuna, or several objectives: the user's choice
    monitor = config.trainer.early_stopping.monitor
    wanted = "maximize" if runs.higher_is_better(monitor) else "minimize"
    if getattr(sweeper.direction, "name", str(sweeper.direction)) != wanted:
        with read_write(sweeper):
            sweeper.direction = wanted
        print(f"dlrun: hydra.sweeper.direction={wanted}, as for {monitor}")
