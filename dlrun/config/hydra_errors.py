"""Hydra's and OmegaConf's errors as one line, with "did you mean" from the schema.

Errors are recognised by their class names, so this module imports no Hydra
(dlrun.config.compose and the CLI call it; the library never needs it).
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

KEY_ERRORS = ("ValidationError", "ConfigKeyError", "ConfigAttributeError", "ConfigTypeError")


def did_you_mean(key: str, keys: list[str] | None = None) -> list[str]:
    """Up to three known keys a mistyped one probably meant: `lr` -> optimizer.lr.

    Keys with the same last part come first (a bare `lr`, `epochs`), then keys
    close in spelling as a whole (`trainer.epoch`), then close last parts.
    """
    if keys is None:
        from dlrun.config.choices import all_keys

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


def _ambiguous(text: str) -> str | None:
    """Hydra's "Ambiguous value for argument 'k=a,b'": a sweep typed without -m."""
    match = re.search(r"Ambiguous value for argument '([^']*)'", text)
    if not match:
        return None
    return sweep_without_m(match.group(1))


def sweep_without_m(override: str) -> str:
    return (
        f"{override} is a sweep: add -m to run one job per value "
        "(a list value is written key=[a,b], a string with commas key='a,b')"
    )


def experiment_without_m(experiment: str, swept: dict[str, str]) -> str:
    """`experiment=X` without -m: the experiment is a sweep; say so as comma lists are told."""
    values = " ".join(f"{key}={value}" for key, value in swept.items())
    keys = [f"{key}=" for key in swept]
    fix = keys[0] if len(keys) == 1 else f"{', '.join(keys[:-1])} and {keys[-1]}"
    return (
        f"experiment={experiment} is a sweep ({values}): add -m to run it, "
        f"or fix {fix} to train one of its jobs"
    )


def describe_hydra_error(exc: BaseException) -> str:
    """One line for a Hydra or OmegaConf composition error, naming the bad value."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        name = type(exc).__name__
        if name == "MissingConfigException" and getattr(exc, "missing_cfg_file", None):
            group, _, choice = str(exc.missing_cfg_file).rpartition("/")
            options = ", ".join(exc.options or [])
            if group:
                return f"unknown {group} {choice!r}; choose from: {options}"
            return f"config {choice!r} not found"
        if name == "OverrideParseException" and getattr(exc, "override", None):
            lines = [line for line in str(exc).splitlines() if line.strip()]
            detail = [line for line in lines if not line.startswith(("Error parsing", "See "))]
            hint = ""
            if re.search(r"=\[[^\]\"']*=", exc.override):  # key=[a=b]: `=` inside a list
                hint = ' (quote list items that hold "=": key=["a=b","c=d"])'
            return f"cannot parse override {exc.override!r}: {(detail or lines)[0]}{hint}"
        ambiguous = _ambiguous(str(exc))
        if ambiguous:
            return ambiguous
        full_key = getattr(exc, "full_key", None)
        if full_key and name in KEY_ERRORS:
            message = str(exc).split("\n")[0]
            message = re.sub(r"\s*full_key:.*", "", message)
            extra = ""
            if re.match(r"Key '.*' (not in|is not in struct)", message):
                extra = suggestion(full_key)
                if not extra and full_key.startswith(("model.", "data.")):
                    extra = f" (a key of your own class or function: +{full_key}=...)"
            return f"{full_key}: {message}{extra}"
        missing = re.match(
            r"Could not override '([^']+)'\. No match in the defaults list", str(exc)
        )
        if missing:  # a mistyped group: `optimzer=adam`
            return f"{missing.group(1)}: no such config group or key{suggestion(missing.group(1))}"
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
