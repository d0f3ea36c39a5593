"""Hydra's and OmegaConf's errors as one line, with "did you mean" from the schema.

Errors are recognised by their class names, so this module imports no Hydra
(dlrun.config.compose and the CLI call it; the library never needs it).
"""

from __future__ import annotations

import re
from pathlib import Path

from dlrun.config.keys import choice_suggestion, no_such_key, suggestion

KEY_ERRORS = ("ValidationError", "ConfigKeyError", "ConfigAttributeError", "ConfigTypeError")


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
                meant = choice_suggestion(choice, list(exc.options or []))
            return f"unknown {group} {choice!r}{meant} (choose from: {options})"
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
            if re.match(r"Key '.*' (not in|is not in struct)", message):
                return no_such_key(full_key)
            return f"{full_key}: {message}"
        exists = re.match(r"Could not append to config\. An item is already at '([^']+)'", str(exc))
        if exists:  # `+seed=3`: + adds a key the config does not have
            key = exists.group(1)
            return f"+{key}: {key} is a key already; set it with {key}=... (+ adds a new key)"
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
