"""The package's shape: imports flow one way, Hydra stays at the edge, modules stay small."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "dlrun"
# The composition module, the command line and the sweep callback: Hydra's edge.
HYDRA_MODULES = {"dlrun.compose", "dlrun.cli", "dlrun.sweeps"}
MAX_LINES = 320  # "a module over ~300 lines is asking to be split by meaning"


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
            # `from dlrun import runs` imports the module dlrun.runs
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {
        name: {m for m in imports(path) if m in modules and m != name and m != "dlrun"}
        for name, path in modules.items()
    }


def test_no_import_cycles_in_the_package():
    edges = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, cycles
    assert "dlrun.cli" in edges and edges["dlrun.runner"]  # the walk saw the package


def test_hydra_is_imported_only_at_the_edge():
    for path in PACKAGE.rglob("*.py"):
        name = module_name(path)
        uses_hydra = any(re.match(r"hydra(\.|$)", m) for m in imports(path))
        assert not uses_hydra or name in HYDRA_MODULES, f"{name} imports Hydra"


def test_modules_stay_small():
    sizes = {module_name(p): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert not {name: n for name, n in sizes.items() if n > MAX_LINES}


def test_no_hand_split_of_overrides_outside_composition():
    # `key=value` strings are read by Hydra's parser (dlrun.compose), never split by hand.
    pattern = re.compile(r"""\.(split|partition)\(\s*["']=["']""")
    for path in PACKAGE.rglob("*.py"):
        if module_name(path) != "dlrun.compose":
            assert not pattern.search(path.read_text()), path
