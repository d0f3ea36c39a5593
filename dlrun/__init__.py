"""dlrun: a command-line runner for deep-learning experiments.

`from dlrun import load_runs` reads run folders into pandas (docs/python.md).
It is imported on first use, so `dlrun --help` never loads pandas or torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_runs", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from dlrun.folders.runs import dlrun_version

        return dlrun_version()
    if name == "load_runs":
        from dlrun.results.load import load_runs

        return load_runs
    raise AttributeError(f"module 'dlrun' has no attribute {name!r}")
