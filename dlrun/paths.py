"""Where dlrun's YAML lives: inside the package (wheel) or beside it (source tree)."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    for base in (PACKAGE / "_data", PACKAGE.parent):
        if (base / name).is_dir():
            return base / name
    raise FileNotFoundError(f"dlrun's {name}/ folder is missing from {PACKAGE}")


def conf_dir() -> Path:
    return _find("conf")


def experiments_dir() -> Path:
    return _find("experiments")
