"""The package's shape: layers you can see, Hydra at the edge, small modules.

That imports point down the layers and form no cycle is import-linter's
contract in pyproject.toml, checked by `lint-imports` in .ci/run.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "dlrun"
# The composition module, the command line and the sweep callback: Hydra's edge.
HYDRA_MODULES = {"dlrun.config.compose", "dlrun.cli.main", "dlrun.sweeps.job"}
MAX_LINES = 300  # "a module over ~300 lines is asking to be split by meaning"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module this file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            # `from dlrun import runs` imports the module dlrun.folders.runs
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def layers_contract() -> list[str]:
    """The layers of pyproject.toml's import-linter contract, top first."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())
    (contract,) = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    return contract["layers"]


def test_the_layers_contract_covers_every_subpackage_and_module():
    # lint-imports (.ci/run) checks that imports point down the layers; a part of
    # the package left out of the list would be checked by nothing.
    parts = {
        f"dlrun.{p.stem if p.is_file() else p.name}"
        for p in PACKAGE.iterdir()
        if (p.is_dir() and (p / "__init__.py").exists())
        or (p.suffix == ".py" and p.stem not in ("__init__", "__main__"))
    }
    assert set(layers_contract()) == parts


def test_a_newcomer_sees_the_layers_from_ls():
    top = [p.stem for p in PACKAGE.glob("*.py")]
    assert len(top) <= 8, top  # the rest lives in subpackages named by layer
    for package in PACKAGE.iterdir():
        if (package / "__init__.py").exists():
            doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text()))
            assert doc and "May import" in doc, (
                f"{package.name}/__init__.py says what it may import"
            )


def test_hydra_is_imported_only_at_the_edge():
    for path in PACKAGE.rglob("*.py"):
        name = module_name(path)
        uses_hydra = any(re.match(r"hydra(\.|$)", m) for m in imports(path))
        assert not uses_hydra or name in HYDRA_MODULES, f"{name} imports Hydra"


def test_modules_stay_small():
    sizes = {module_name(p): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert not {name: n for name, n in sizes.items() if n > MAX_LINES}


def test_no_hand_split_of_overrides_outside_composition():
    # `key=value` strings are read by Hydra's parser (dlrun.config.compose), never split by hand.
    pattern = re.compile(r"""\.(split|partition)\(\s*["']=["']""")
    for path in PACKAGE.rglob("*.py"):
        if module_name(path) != "dlrun.config.compose":
            assert not pattern.search(path.read_text()), path


def test_the_architecture_map_names_real_modules_and_functions():
    # docs/architecture.md walks `dlrun train` through `layer.module.function`
    # names; each must still exist when the code moves.
    import importlib

    text = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    layers = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    named = set(re.findall(r"`((?:[a-z_]+)(?:\.[A-Za-z_]+)+)`", text))
    dotted = sorted(n for n in named if n.split(".")[0] in layers)
    assert len(dotted) > 20  # the walk-throughs are there
    missing = []
    for name in dotted:
        parts = f"dlrun.{name}".split(".")
        for cut in range(len(parts), 1, -1):
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            try:
                for attr in parts[cut:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                missing.append(name)
            break
        else:
            missing.append(name)
    assert not missing, missing
