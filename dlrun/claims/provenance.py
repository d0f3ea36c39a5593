"""Which experiment made a run folder: `dlrun check --on` decides a claim only on its own runs."""

from __future__ import annotations

from pathlib import Path

from dlrun.errors import UsageError


def refuse_others(name: str, folder: Path) -> None:
    """--on decides an experiment's claims only on runs that experiment made (UsageError if not)."""
    from dlrun.results.load import find_run_dirs

    runs = find_run_dirs(folder)
    if not runs:
        raise UsageError(f"dlrun check --on {folder}: no run folders there")
    for run in runs:
        made_by = experiment_of(run)
        if made_by != name:
            raise UsageError(
                f"dlrun check {name} --on {folder}: {run} was made by "
                + (f"experiment {made_by}" if made_by else "no experiment")
                + f", not {name}; check runs against their own experiment"
            )


def experiment_of(run: Path) -> str | None:
    """The experiment a run folder was made by: its recorded `experiment=` override
    (.hydra/overrides.yaml), else its config's name. Both are untrusted: regular
    files, bounded, plain YAML."""
    import yaml

    from dlrun.folders import runs as run_folder

    def read(path: Path):
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_RECORD:
            return None
        try:
            return yaml.load(path.read_text(), Loader=yaml.CSafeLoader)
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return None

    overrides = read(run / run_folder.HYDRA / "overrides.yaml")
    if isinstance(overrides, list):
        from dlrun.config.compose import override_values

        try:
            recorded = override_values([str(o) for o in overrides])
        except UsageError:  # not Hydra's overrides: the config's name decides
            recorded = {}
        if recorded.get("experiment"):
            return recorded["experiment"]
    config = read(run / run_folder.CONFIG)
    name = config.get("name") if isinstance(config, dict) else None
    return str(name) if name is not None else None


MAX_RECORD = 1 << 20  # bytes: a config or overrides file is never larger
