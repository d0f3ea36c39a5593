"""Where a run came from: dlrun's version and commit, Python's, torch's and numpy's, the host.

summary.json carries these (docs/run-folder.md), so a number in a report can
be traced to the code that made it.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path
from typing import Any


def git_commit() -> str | None:
    """The commit of the dlrun source tree, if it is a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=here,
        capture_output=True,
        text=True,
        timeout=5,
    ).stdout.strip()
    return out.stdout.strip() + ("-dirty" if dirty else "")


def dlrun_version() -> str:
    """The installed distribution's version (pyproject.toml holds the one literal)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dlrun")
    except PackageNotFoundError:  # run from a source tree that pip never installed
        return "unknown"


def provenance() -> dict[str, Any]:
    import numpy
    import torch

    return {
        "versions": {
            "dlrun": dlrun_version(),
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "numpy": numpy.__version__,
        },
        "git_commit": git_commit(),
        "host": platform.node(),
    }
