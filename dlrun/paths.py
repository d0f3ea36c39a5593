"""Where things live on disk: dlrun's YAML (inside the package or beside it) and new run folders."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
NAME_BYTES = 200  # a run folder's name part; `<time>_<name>_<n>` stays under 255 bytes


def _find(name: str) -> Path:
    for base in (PACKAGE / "_data", PACKAGE.parent):
        if (base / name).is_dir():
            return base / name
    raise FileNotFoundError(f"dlrun's {name}/ folder is missing from {PACKAGE}")


def conf_dir() -> Path:
    return _find("conf")


def experiments_dir() -> Path:
    return _find("experiments")


# --- new folders: made unique, and removed again when the run is refused ---------------

_created: dict[str, list[Path]] = {}  # folder -> the folders its creation made, deepest first


def unique_dir(path: str) -> str:
    """The first of path, path_1, path_2... that does not exist yet, created now."""
    candidate, n = Path(path), 0
    while True:
        made = [p for p in (candidate, *candidate.parents) if not p.exists()]
        try:
            candidate.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            n += 1
            candidate = Path(f"{path}_{n}")
            continue
        except FileNotFoundError:  # a parent vanished under a concurrent cleanup: again
            continue
        _created[os.path.abspath(candidate)] = [Path(os.path.abspath(p)) for p in made]
        return str(candidate)


def remove_created(folder: str | Path) -> None:
    """Remove a folder made by unique_dir, and the parents it made if they are empty now.

    A run refused after Hydra made its folder (bad data) leaves nothing behind,
    not even an empty date folder; folders that existed before are kept.
    """
    made = _created.pop(os.path.abspath(folder), None)
    if made is None:
        return
    shutil.rmtree(folder, ignore_errors=True)
    for parent in made[1:]:
        try:
            parent.rmdir()
        except OSError:  # another run uses it now
            return


def remove_refused(run_dir: Path) -> None:
    """A refused run leaves nothing: the folder Hydra made for it, and any parents it made."""
    from dlrun.folders.runs import HYDRA

    remove_created(run_dir)
    if run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= {HYDRA}:
        shutil.rmtree(run_dir, ignore_errors=True)  # a hydra.run.dir of the user's: Hydra's files


def yaml_words(overrides: str) -> str:
    """`quick=true seed=0` as typed: Hydra's sweepers spell booleans and nulls as Python
    does (`quick=True`, `x=None`); dlrun's lines and folder names use YAML's words."""
    return re.sub(
        r"(?<=[=\[,])(True|False|None)(?=$|[\s,\]])",
        lambda m: "null" if m[1] == "None" else m[1].lower(),
        str(overrides),
    )


def short_numbers(text: str) -> str:
    """Decimals to 4 significant digits: Optuna's lr=0.0012345678901234 as lr=0.001235."""
    return re.sub(
        r"(?<![\w.])-?\d+\.\d+(?:[eE][-+]?\d+)?", lambda m: f"{float(m[0]):.4g}", str(text)
    )


def slug(text: str, limit: int = 80) -> str:
    """A filesystem-safe, short folder name for a job's overrides, in YAML's words.

    Decimals keep 4 significant digits (Optuna's 0.0012345678901234 -> 0.001235):
    the job number, not the digits, keeps folders apart.
    """
    text = short_numbers(yaml_words(text))
    text = re.sub(r"[^A-Za-z0-9._=,+-]+", "-", text).strip("-")
    return text[:limit] or "default"


def cut_name(name: str) -> str:
    """`name=` as a folder name: at most NAME_BYTES bytes (whole characters), no separators."""
    name = re.sub(r"[/\\\x00]", "-", str(name))  # validate.py refuses these; never a path here
    return name.encode()[:NAME_BYTES].decode(errors="ignore") or "run"
