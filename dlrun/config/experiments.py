"""The experiment library: YAML diffs in experiments/, each headed by its command and claim.

Files whose name starts with `_` are shared diffs that experiments include
(`defaults: [/_base]`), not experiments of their own.
"""

from __future__ import annotations

from pathlib import Path

from dlrun.paths import experiments_dir


def experiment_files(shared: bool = False) -> list[Path]:
    """The experiment files, sorted; with `shared`, the shared diffs they include too."""
    paths = sorted(experiments_dir().glob("*.yaml"))
    return [p for p in paths if shared or not p.stem.startswith("_")]


def header(path: Path) -> dict[str, str]:
    """The `# key: value` lines of an experiment's leading comment block."""
    fields: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        key, sep, value = line.lstrip("# ").partition(":")
        if sep and key.strip().isidentifier():
            fields.setdefault(key.strip().lower(), value.strip())
    return fields


def list_experiments() -> list[tuple[str, str]]:
    """(name, one-line purpose) for every experiment file."""
    return [(p.stem, header(p).get("shows", "")) for p in experiment_files()]


def quick_overrides(name: str) -> list[str]:
    """The overrides of an experiment's quick size (`quick=true`): its `# quick:` header line."""
    path = experiments_dir() / f"{name}.yaml"
    return header(path).get("quick", "").split() if path.is_file() else []


def sweep_params(name: str) -> dict[str, str]:
    """The experiment's sweep as its file states it: {key: values}, e.g. {'seed': '0,1'}."""
    import yaml

    path = experiments_dir() / f"{name}.yaml"
    if not path.is_file():
        return {}
    try:
        node = yaml.safe_load(path.read_text()) or {}
        params = node["hydra"]["sweeper"]["params"] or {}
    except (KeyError, TypeError, yaml.YAMLError):
        return {}
    return {str(key): str(value) for key, value in params.items()}
