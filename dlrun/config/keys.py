"""Every key a user can type, and what a mistyped one meant, in the user's words.

The key paths come from the schema (dlrun.config.schema) and the choices'
dataclasses (dlrun.config.choices); messages name the key path and the choice,
never a dataclass (`trainer.epoch: no such key; did you mean trainer.epochs?`).
No Hydra and no torch here.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import fields, is_dataclass
from typing import Any

from dlrun.config.choices import CHOICES, OPEN, SCHEMAS, schema_of
from dlrun.config.claims import ClaimConfig
from dlrun.config.schema import TrainConfig


def all_keys() -> list[str]:
    """Every dotted key a user can type, over all choices: `optimizer.lr`, `model._target_`..."""

    def walk(cls: type, prefix: str) -> list[str]:
        keys = []
        for f in fields(cls):
            node = f.default_factory() if callable(f.default_factory) else f.default
            if is_dataclass(node):
                keys += walk(type(node), f"{prefix}{f.name}.")
            elif f.name != "defaults":
                keys.append(f"{prefix}{f.name}")
        return keys

    keys = walk(TrainConfig, "")
    for group, choices in CHOICES.items():
        keys.append(group)
        prefix = group.replace("/", ".") + "."
        classes = {SCHEMAS[group], *(v for _, v in choices.values() if isinstance(v, type))}
        for cls in classes:
            keys += walk(cls, prefix)
    keys = [k for k in keys if k not in SCHEMAS or k in CHOICES]  # groups, not their empty fields
    return list(dict.fromkeys(keys))


def did_you_mean(key: str, keys: list[str] | None = None) -> list[str]:
    """Up to three known keys a mistyped one probably meant: `lr` -> optimizer.lr.

    Keys with the same last part come first (a bare `lr`, `epochs`), then keys
    close in spelling as a whole (`trainer.epoch`), then close last parts.
    """
    if keys is None:
        keys = all_keys()
    leaf = key.rsplit(".", 1)[-1]
    depth = key.count(".")
    same_leaf = [k for k in keys if k.rsplit(".", 1)[-1] == leaf and k != key]
    close = _closest(key, [k for k in keys if k.count(".") == depth])
    by_leaf = _closest(leaf, [k.rsplit(".", 1)[-1] for k in keys if k.count(".") == depth])
    close_leaf = [k for k in keys if k.count(".") == depth and k.rsplit(".", 1)[-1] in by_leaf]
    return list(dict.fromkeys([*same_leaf, *close, *close_leaf]))[:3]


def _closest(word: str, candidates: list[str], cutoff: float = 0.75) -> list[str]:
    """The candidates spelled most like `word`: the best and any nearly as good."""
    scored = {c: difflib.SequenceMatcher(None, word, c).ratio() for c in set(candidates)}
    best = max(scored.values(), default=0.0)
    return sorted(
        (c for c, r in scored.items() if r >= cutoff and r >= best - 0.05),
        key=lambda c: -scored[c],
    )


def suggestion(key: str) -> str:
    found = did_you_mean(key)
    return f"; did you mean {' or '.join(found)}?" if found else ""


def no_such_key(key: str) -> str:
    """A key the chosen config does not have, in the user's words: the key path, what was meant.

    Never the schema's class name (`Key 'epoch' not in 'TrainerConfig'`): a key
    some other choice has says which; a claim's field is looked up among a
    claim's fields; a model or data key may be the user's own class's (`+key`).
    """
    parts = key.split(".")
    if parts[0] == "claims" and len(parts) == 3:
        meant = _closest(parts[2], [f.name for f in fields(ClaimConfig)], cutoff=0.6)
        prefix = ".".join(parts[:2])
        return f"{key}: a claim has no such field" + (
            f"; did you mean {prefix}.{meant[0]}?" if meant else ""
        )
    owners = choices_with(key)
    if key in all_keys() and owners:
        group, having = owners[0], owners[1:]
        open_ones = [f"{group}={c}" for c in CHOICES[group] if (group, c) in OPEN]
        if open_ones and len(having) + len(open_ones) == len(CHOICES[group]):
            # every built-in choice has it: the one in use is the user's own class
            return (
                f"{key}: not a key of {' or '.join(open_ones)}; +{key}=... if your class takes it"
            )
        verb = "has" if len(having) == 1 else "have"
        return f"{key}: not a key of this {group}; only {', '.join(having)} {verb} it"
    extra = suggestion(key)
    if not extra and key.startswith(("model.", "data.")):
        extra = f" (a key of your own class or function: +{key}=... with {parts[0]}=custom)"
    return f"{key}: no such key{extra}"


def choices_with(key: str) -> list[str]:
    """[group, 'group=choice'...]: the group a key belongs to and the choices whose node has it."""
    for group in sorted(CHOICES, key=len, reverse=True):  # data/augment before data
        prefix = group.replace("/", ".") + "."
        if not key.startswith(prefix) or "." in key[len(prefix) :]:
            continue
        leaf = key[len(prefix) :]
        having = []
        for choice, (_, values) in CHOICES[group].items():
            cls = values if isinstance(values, type) else SCHEMAS[group]
            if is_dataclass(cls) and leaf in {f.name for f in fields(cls)}:
                having.append(f"{group}={choice}")
        return [group, *having] if having else []
    return []


def choice_suggestion(choice: str, options: list[str]) -> str:
    """`; did you mean adam?` for `optimizer=adm`, or nothing when no option is close."""
    close = _closest(choice, options, cutoff=0.6)
    return f"; did you mean {' or '.join(close[:2])}?" if close else ""


def added_key_problem(key: str) -> str | None:
    """Why `+key=value` adds a key nothing reads, or None.

    Hydra's `+` adds any key, so `+trainer.epoch=3` would run with the
    default epochs and a stray key. Only the user's own class or function
    reads keys the schema does not have: under model. and data. (whose
    choices check their keys themselves: check_types below).
    """
    if key.startswith(("model.", "data.", "hydra.", "claims.")) or key in all_keys():
        return None
    return (
        f"{no_such_key(key)} (+ adds keys only for your own class or function: "
        "+model.<key> with model=custom, +data.<key> with data=custom)"
    )


def check_types(cfg: Any) -> None:
    """The composed model and data nodes against their choice's dataclass, before anything runs.

    TrainConfig types them as Any, so that model=custom and the user's YAML
    choices can carry keys of their own; a built-in choice still gets its
    types checked here: `model.width=abc` is one line, not a crash mid-setup.
    """
    from omegaconf import OmegaConf

    from dlrun.errors import ConfigError

    for group in ("model", "data"):
        node = cfg.get(group) if hasattr(cfg, "get") else None
        schema = schema_of(group, node.get("name")) if node is not None else None
        if schema is None or node.get("_target_") is not None:
            continue
        try:
            OmegaConf.merge(OmegaConf.structured(schema), node)
        except Exception as e:  # OmegaConf's ValidationError and friends: the key and one line
            message = str(e).strip().splitlines()[0]
            key = getattr(e, "full_key", None)
            if key and re.match(r"Key '.*' (not in|is not in struct)", message):
                raise ConfigError(no_such_key(f"{group}.{key}")) from None
            raise ConfigError(
                f"{group}.{key}: {message}" if key else f"{group}: {message}"
            ) from None
