"""Hydra's and OmegaConf's errors as one line, naming the bad key or value (the CLI's edge).

dlrun.compose, dlrun.cli and dlrun.gradcheck turn composition errors into
these lines; like them, this module is part of Hydra's edge.
"""

from __future__ import annotations

import re
from pathlib import Path


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
