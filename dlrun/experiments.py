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


def quick_overrides(name: str) -> list[str]:
    """The overrides of an experiment's quick size: its `# quick:` header line."""
    path = experiments_dir() / f"{name}.yaml"
    return header(path).get("quick", "").split() if path.is_file() else []


def with_quick_size(args: list[str]) -> list[str]:
    """`experiment=X quick=true` -> args plus X's quick overrides (the user's own keys win)."""
    if not any(a in ("quick=true", "quick=True") for a in args):
        return args
    names = [a.split("=", 1)[1] for a in args if a.startswith("experiment=")]
    if not names:
        return args
    given = {a.split("=", 1)[0].lstrip("+~") for a in args if "=" in a}
    extra = [o for o in quick_overrides(names[-1]) if o.split("=", 1)[0] not in given]
    return [*args, *extra]
