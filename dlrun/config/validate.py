"""Every key's range, checked before anything is written: one rule per key, one line per problem.

Hydra checks types and group choices at composition; this module checks
values. RULES holds one check per schema key (tests/test_validate.py keeps it
complete): a function of the value that returns None, or the reason the value
is wrong. A new key adds one line, e.g. `"trainer.log_every": at_least(1)`.
Rules between keys follow the table. What only the data can tell (a column, a
class count, a split size) is checked where the data is read (dlrun.data.tensors,
dlrun.data.datasets), still before the run folder is written. No torch at import.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf.errors import MissingMandatoryValue

from dlrun.config.choices import CHOICES
from dlrun.errors import ConfigError
from dlrun.folders.runs import monitorable

Check = Callable[[Any], "str | None"]


# --- checks -------------------------------------------------------------------------


def at_least(low: float) -> Check:
    return lambda v: None if v >= low else f"must be at least {low}"


def positive(v: float) -> str | None:
    return None if v > 0 else "must be positive"


def in_range(low: float, high: float, *, open_low: bool = False, open_high: bool = False) -> Check:
    """low <= v <= high, with either end open: in_range(0, 1, open_high=True) is [0, 1)."""
    text = f"{'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"

    def check(v: float) -> str | None:
        above = v > low if open_low else v >= low
        below = v < high if open_high else v <= high
        return None if above and below else f"must be in {text}"

    return check


def optional(check: Check, null: str = "off") -> Check:
    """None is allowed and means `null`; anything else must pass `check`."""
    return lambda v: None if v is None else _with(check(v), f"(or null: {null})" if null else "")


def one_of(*choices: str) -> Check:
    return lambda v: None if v in choices else f"is not one of {', '.join(choices)}"


def each(check: Check, length: int | None = None) -> Check:
    def check_all(values: list) -> str | None:
        if length is not None and len(values) != length:
            return f"must hold {length} values"
        problems = [p for p in map(check, values) if p]
        return f"values {problems[0]}" if problems else None

    return check_all


def choice_of(group: str) -> Check:
    return one_of(*CHOICES[group])


def device_name(v: str) -> str | None:
    ok = v in CHOICES["device"] or re.fullmatch(r"cuda:\d+", v)
    return None if ok else f"is not one of {', '.join(CHOICES['device'])} or cuda:<index>"


def choice_in(module: str, name: str) -> Check:
    """one_of the names a module keeps beside the code that uses them (imported when checked:
    dlrun.toolbox.models and dlrun.run.speed import torch)."""

    def check(v: str) -> str | None:
        import importlib

        return one_of(*getattr(importlib.import_module(module), name))(str(v))

    return check


def folder_name(v: str) -> str | None:
    """A single path component: the run folder's name, never a path outside outputs/."""
    if not v.strip() or v in (".", "..") or re.search(r"[/\\\x00]", v):
        return "must be a plain folder name: no '/', '\\', '..' or empty name"
    return None


def classes(v: list) -> str | None:
    if len(set(v)) < 2:
        return "must name at least 2 classes (a classifier needs two)"
    return None if min(v) >= 0 else "must be labels >= 0"


def monitor(v: str) -> str | None:
    return one_of(*dict.fromkeys(monitorable("classification") + monitorable("regression")))(v)


def _with(problem: str | None, note: str) -> str | None:
    return f"{problem} {note}".strip() if problem else None


TYPED = None  # a key whose type (checked by Hydra) is its whole range: a bool, free text

PROBABILITY = in_range(0, 1)
FRACTION = in_range(0, 1, open_low=True, open_high=True)
DECAY = in_range(0, 1, open_high=True)  # momentum-like: 1 would never forget

RULES: dict[str, Check | None] = {
    "model.name": choice_of("model"),
    "model.width": at_least(1),
    "model.depth": at_least(0),
    "model.activation": choice_in("dlrun.toolbox.models", "ACTIVATIONS"),
    "model.dropout": in_range(0, 1, open_high=True),
    "model.bottleneck": optional(at_least(1), "no bottleneck"),
    "model.kernel_size": at_least(1),
    "model.first_kernel_size": optional(at_least(1), "model.kernel_size"),
    "model.batch_norm": TYPED,
    "model.residual": TYPED,  # checked below with model.name
    "model.bidirectional": TYPED,
    "init.name": choice_of("init"),
    "init.std": at_least(0),
    "init.value": TYPED,  # any finite number
    "init.gain": optional(positive, "the activation's gain"),
    "optimizer.name": choice_of("optimizer"),
    "optimizer.lr": positive,
    "optimizer.weight_decay": at_least(0),
    "optimizer.momentum": DECAY,
    "optimizer.nesterov": TYPED,
    "optimizer.betas": each(DECAY, length=2),
    "optimizer.eps": positive,
    "optimizer.alpha": DECAY,
    "optimizer.rho": DECAY,
    "optimizer.dampening": PROBABILITY,
    "schedule.name": choice_of("schedule"),
    "schedule.warmup_epochs": at_least(0),
    "schedule.step_size": at_least(1),
    "schedule.gamma": in_range(0, 1, open_low=True),
    "schedule.min_lr": at_least(0),
    "data.name": choice_of("data"),
    "data.path": TYPED,  # checked below with data.name
    "data.target": TYPED,  # a column name: checked when the table is read
    "data.task": optional(one_of("classification", "regression"), "inferred"),
    "data.n_samples": at_least(1),
    "data.test_fraction": FRACTION,
    "data.val_fraction": in_range(0, 1, open_high=True),  # 0: no validation split
    "data.n_train": optional(at_least(1), "all"),
    "data.classes": optional(classes, ""),
    "data.label_noise": PROBABILITY,
    "data.shuffle_positions": TYPED,
    "data.noise": at_least(0),
    "data.data_seed": optional(at_least(0), "the run seed"),
    "data.condition": at_least(1),
    "data.dim": at_least(1),
    "data.augment.name": choice_of("data/augment"),
    "data.augment.shift": at_least(0),
    "data.augment.noise": at_least(0),
    "data.augment.scale": in_range(0, 1, open_high=True),
    "data.augment.rotate": in_range(0, 180),
    "data.augment.flip": TYPED,
    "device.name": device_name,
    "trainer.epochs": at_least(1),
    "trainer.steps": optional(at_least(1), "trainer.epochs"),
    "trainer.batch_size": at_least(1),
    "trainer.shuffle": TYPED,
    "trainer.deterministic": TYPED,
    "trainer.threads": optional(at_least(1), "the CPUs that are free"),
    "trainer.eval_batch_size": at_least(1),
    "trainer.max_grad_norm": optional(positive, "no clipping"),
    "trainer.layer_stats": TYPED,
    "trainer.progress": TYPED,
    "trainer.target_loss": optional(at_least(0), "none"),
    "trainer.divergence_loss": positive,
    "trainer.checkpoint_every_s": at_least(0),
    "trainer.precision": choice_in("dlrun.run.speed", "PRECISIONS"),
    "trainer.compile": TYPED,
    "trainer.compile_mode": choice_in("dlrun.run.speed", "COMPILE_MODES"),
    "trainer.early_stopping.patience": optional(at_least(1), "off"),
    "trainer.early_stopping.min_delta": at_least(0),
    "trainer.early_stopping.monitor": monitor,
    "trainer.early_stopping.restore_best": TYPED,
    "transfer.source": TYPED,  # checked when it is loaded
    "transfer.freeze": TYPED,
    "transfer.reset_head": TYPED,
    "transfer.pretrain": TYPED,  # composed like a command line
    "logger.tensorboard": TYPED,
    "logger.mlflow": TYPED,
    "logger.tracking_uri": TYPED,  # MLflow checks its own URIs
    "logger.experiment": lambda v: None if str(v).strip() else "must not be empty",
    "seed": lambda v: None if 0 <= v < 2**63 else "must be in [0, 2^63)",
    "name": folder_name,
    "resume": TYPED,  # checked by dlrun.run.resume
    "quick": TYPED,
    "claims": TYPED,  # checked by dlrun.config.claims when a report or `dlrun check` decides them
}
MAY_BE_INFINITE = {"trainer.divergence_loss"}  # inf: never call a run diverged
# model=custom, data=custom (and the user's YAML choices built on them): the name is a label
OWN_NAMES = {"model.name": "model._target_", "data.name": "data._target_"}


def _cross_rules(cfg: Any) -> list[tuple[str, str]]:
    """(key, problem) for rules between keys."""
    problems = []
    t, s, o, d = cfg.trainer, cfg.schedule, cfg.optimizer, cfg.data
    if s.warmup_epochs and s.warmup_epochs >= t.epochs:
        problems.append(
            ("schedule.warmup_epochs", f"must be shorter than the run (trainer.epochs={t.epochs})")
        )
    if s.min_lr > o.lr:
        problems.append(("schedule.min_lr", f"must not exceed optimizer.lr={o.lr}"))
    if getattr(cfg.model, "residual", False) and cfg.model.name not in ("mlp", "resmlp"):
        problems.append(("model.residual", f"is for mlp only, not model={cfg.model.name}"))
    if o.nesterov and (o.momentum <= 0 or o.dampening != 0):
        problems.append(("optimizer.nesterov", "needs optimizer.momentum > 0 and dampening 0"))
    if d.name in ("table", "npz"):
        if not d.path:
            problems.append(("data.path", f"is needed for data={d.name}: data.path=<file>"))
        elif not Path(d.path).expanduser().is_file():
            problems.append(("data.path", "is not a file"))
    return problems


def problems(cfg: Any) -> list[str]:
    """Every problem of `cfg` (a composed config, or the same as plain dicts), one line each."""
    if isinstance(cfg, dict):
        from omegaconf import OmegaConf

        cfg = OmegaConf.create(cfg)
    found = []
    for key, check in RULES.items():
        value = _select(cfg, key)
        if value is _ABSENT or (key in OWN_NAMES and _select(cfg, OWN_NAMES[key]) is not _ABSENT):
            continue
        problem = _finite(key, value) or (check(value) if check is not None else None)
        if problem:
            found.append(f"{_named(key, value)} {problem}")
    if not found:
        found += [f"{_named(key, _select(cfg, key))} {p}" for key, p in _cross_rules(cfg)]
    return found


def check(cfg: Any) -> None:
    """Raise ConfigError with the first problem of `cfg` (one line), if any."""
    from dlrun.config.keys import check_types

    check_types(cfg)  # model and data may be plain nodes: their types first, then the ranges
    found = problems(cfg)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise ConfigError(found[0] + more)


def _finite(key: str, value: Any) -> str | None:
    numbers = value if isinstance(value, (list, tuple)) else [value]
    for v in numbers:
        if isinstance(v, float) and (
            math.isnan(v) or (math.isinf(v) and key not in MAY_BE_INFINITE)
        ):
            return "must be a finite number"
    return None


_ABSENT = object()


def _select(cfg: Any, key: str) -> Any:
    node = cfg
    for part in key.split("."):
        try:
            node = getattr(node, part)
        except (AttributeError, KeyError, MissingMandatoryValue):  # `???`: reported where used
            return _ABSENT
    if type(node).__name__ == "ListConfig":
        node = list(node)
    return node


def _named(key: str, value: Any) -> str:
    return key if value is None else f"{key}={_show(value)}"


def _show(value: Any) -> str:
    text = str(list(value) if isinstance(value, (list, tuple)) else value)
    return text if len(text) <= 60 else text[:57] + "..."
