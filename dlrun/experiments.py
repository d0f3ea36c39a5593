"""The experiment library: YAML diffs in experiments/, each headed by its command and claim."""

from __future__ import annotations

from pathlib import Path

from dlrun.paths import experiments_dir


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
    return [(p.stem, header(p).get("shows", "")) for p in sorted(experiments_dir().glob("*.yaml"))]
