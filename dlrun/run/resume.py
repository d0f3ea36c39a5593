"""Resume a run from its own folder: its config.yaml, its last.pt, into the same folder.

`dlrun train resume=<folder> [key=value...]` calls `resume_run`, and so can a
cluster job that is requeued: no Hydra, no command line needed. The run goes
on exactly as its folder says; the command line may change only what does not
change the experiment (RESUMABLE). config.yaml is never rewritten: each resume
is recorded in summary.json (`resumes`), and later resumes apply the earlier
ones' changes first, so a requeued job continues as the run was last resumed.

A run folder may come from someone else: its config.yaml and summary.json
are read as plain YAML and JSON (dlrun.folders.safe), a value holding an
interpolation (`${...}`) is refused wherever it is (a value from a folder is
data, never an expression), and code it names for instantiation
(`_target_`...) runs only if the user types the same key and value on the
command line now.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dlrun.config import validate
from dlrun.config.schema import TrainConfig
from dlrun.errors import ConfigError
from dlrun.folders import runs, safe

# What a resume may change: how long, how patiently, where and how visibly it trains.
RESUMABLE = (
    "trainer.epochs",
    "trainer.early_stopping.patience",
    "trainer.threads",
    "trainer.progress",
    "trainer.checkpoint_every_s",
    "device.name",
)
INSTANTIATION_KEYS = ("_target_", "_partial_", "_args_", "_recursive_", "_convert_")
# What a resume writes into the folder: checked first, never through a link.
WRITTEN = (
    runs.SUMMARY, runs.METRICS, runs.LAYERS, runs.RUN_LOG, runs.LOCK, runs.CHECKPOINTS,
    runs.PREDICTIONS, runs.CONFIG,
)  # fmt: skip


def resume_run(folder: str | Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Continue the run in `folder` to its end; `overrides`: {'trainer.epochs': 300, ...}."""
    from dlrun.run.runner import run

    folder = Path(folder)
    overrides = {k: v for k, v in (overrides or {}).items() if k != "resume"}
    cfg = folder_config(folder, overrides)
    changed = {key: value for key, value in overrides.items() if key in RESUMABLE}
    said = ", ".join(f"{key}={value}" for key, value in changed.items())
    print(f"dlrun: resuming {folder}" + (f" with {said}" if said else ""))
    return run(cfg, folder, resume_overrides=changed)


def folder_config(folder: Path, overrides: dict[str, Any]) -> DictConfig:
    """The config a resume of `folder` runs: config.yaml, earlier resumes' changes, `overrides`."""
    where = f"resume={folder}"
    if "${" in str(folder):
        raise ConfigError(f"{where}: a folder name with '${{' would be read as an interpolation")
    if not os.path.lexists(folder / runs.CONFIG):
        raise ConfigError(f"{where}: not a run folder (no {runs.CONFIG})")
    if not os.path.lexists(runs.last_checkpoint(folder)):
        raise ConfigError(
            f"{where}: nothing to resume: no {runs.CHECKPOINTS}/{runs.LAST} "
            "(the run ended before its first epoch did)"
        )
    raw = read_plain_yaml(folder / runs.CONFIG, where)
    refuse_code(raw, overrides, where)
    cfg = as_schema(raw, where)
    for earlier in previous_changes(folder, where):
        apply(cfg, earlier, where)
    safe.check_writable(folder, WRITTEN, (runs.CHECKPOINTS,))  # never through a link
    safe.check_writable(folder / runs.CHECKPOINTS, (runs.LAST, runs.BEST))
    for key, value in overrides.items():
        if key not in RESUMABLE and not same(cfg, key, value):
            raise ConfigError(
                f"{where}: {key} would change the experiment ({runs.CONFIG} has "
                f"{OmegaConf.select(cfg, key)}); a resume may change only {', '.join(RESUMABLE)}"
            )
    from dlrun.toolbox.optim import SPANS_THE_RUN

    epochs = overrides.get("trainer.epochs", cfg.trainer.epochs)
    if epochs != cfg.trainer.epochs and cfg.schedule.name in SPANS_THE_RUN:
        raise ConfigError(
            f"{where}: trainer.epochs: schedule={cfg.schedule.name} spreads its decay over "
            "the run's length, so a resume cannot change it"
        )
    apply(cfg, {k: v for k, v in overrides.items() if k in RESUMABLE}, where)
    cfg.resume = str(folder)
    validate.check(cfg)
    return cfg


def read_plain_yaml(path: Path, where: str) -> dict[str, Any]:
    try:
        raw = safe.read_yaml(path, root=path.parent)
    except FileNotFoundError:
        raise ConfigError(f"{where}: not a run folder (no {path.name})") from None
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: {path.name} is not a mapping of config keys")
    refuse_interpolation(raw, path.name, where)
    return raw


def refuse_interpolation(raw: Any, name: str, where: str) -> None:
    """A folder's values are data: one that OmegaConf would resolve (`${oc.env:...}`) is refused."""
    for key, value in _leaves(raw):
        if isinstance(value, str) and "${" in value:
            raise ConfigError(
                f"{where}: {name} {key}={value[:80]!r} is an interpolation; "
                "a run folder holds plain values"
            )


def refuse_code(raw: dict[str, Any], overrides: dict[str, Any], where: str) -> None:
    """Instantiation keys of a folder's config run code: only what the user typed now."""
    for key, value in _leaves(raw):
        if key.rsplit(".", 1)[-1] in INSTANTIATION_KEYS and overrides.get(key) != value:
            raise ConfigError(
                f"{where}: {runs.CONFIG} names code to run ({key}={value}); "
                f"type {key}={value} on the command line if you trust it"
            )


def as_schema(raw: dict[str, Any], where: str) -> DictConfig:
    """`raw` checked against the schema: every key known, every value of its type."""
    schema = OmegaConf.structured(TrainConfig)
    with_defaults = OmegaConf.masked_copy(schema, [k for k in schema if k != "defaults"])
    OmegaConf.set_struct(with_defaults, True)  # a key the schema lacks is an error
    try:
        cfg = OmegaConf.merge(with_defaults, raw)
    except Exception as e:  # omegaconf's ValidationError, ConfigKeyError...
        key = getattr(e, "full_key", "") or "?"
        message = str(e).splitlines()[0]
        raise ConfigError(f"{where}: {runs.CONFIG} {key}: {message}") from None
    return cfg


def previous_changes(folder: Path, where: str = "") -> list[dict[str, Any]]:
    """The changes of the run's earlier resumes, oldest first (summary.json `resumes`).

    Plain values of RESUMABLE keys only; anything else in the file is ignored,
    and an interpolation is refused, never resolved.
    """
    where = where or f"resume={folder}"
    try:
        summary = runs.read_summary(folder, strict=True) or {}
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    history = summary.get("resumes")
    if not isinstance(history, list):
        return []
    changes = [r.get("overrides") for r in history if isinstance(r, dict)]
    kept = [
        {k: v for k, v in c.items() if k in RESUMABLE and not isinstance(v, (dict, list))}
        for c in changes
        if isinstance(c, dict)
    ]
    refuse_interpolation(kept, f"{runs.SUMMARY} resumes", where)
    return kept


def apply(cfg: DictConfig, changes: dict[str, Any], where: str) -> None:
    for key, value in changes.items():
        try:
            OmegaConf.update(cfg, key, value, merge=False)
        except Exception as e:
            raise ConfigError(f"{where}: {key}={value}: {str(e).splitlines()[0]}") from None


def same(cfg: DictConfig, key: str, value: Any) -> bool:
    """Whether typing key=value leaves the folder's config as it is."""
    current = OmegaConf.select(cfg, key, default=_MISSING)
    if current is _MISSING:
        return False
    if OmegaConf.is_config(current):
        current = OmegaConf.to_container(current)
    return current == value


_MISSING = object()


def _leaves(node: Any, prefix: str = ""):
    """(dotted key, value) of every leaf of plain nested dicts and lists."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}{key}.")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _leaves(value, f"{prefix}{i}.")
    else:
        yield prefix.rstrip("."), node
