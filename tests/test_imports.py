"""The package's layering, read from its source (ast, nothing imported): no import circle among
nextvid's modules, the library never reaches up into the CLI (nextvid.commands), and every file stays
small enough to have one job.

Every import counts as an edge, at module level or inside a function: an import deferred into a
function still ties the two modules together (a circle hidden that way is still a circle). Only
imports under `if TYPE_CHECKING:` are left out, since they never run."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nextvid"
MAX_LINES = 350


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported_names(tree: ast.AST) -> list[str]:
    """Dotted names of every import in `tree`, outside `if TYPE_CHECKING:` blocks; for
    `from pkg import x`, `pkg.x` where x is a module, else `pkg`."""
    names: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                names.append(full if full in MODULES else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def _edges() -> dict[str, set[str]]:
    """module -> the nextvid modules it imports."""
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        graph[name] = {target for target in _imported_names(tree) if target in MODULES and target != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_the_analysis_sees_a_circle_and_a_deferred_import():
    """The checks below can fail: a circle through a function-level import is found, and one under
    TYPE_CHECKING is not an edge."""
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "from nextvid.config import Config\n"
        "if TYPE_CHECKING:\n    from nextvid import launch\n"
        "def f():\n    from nextvid import presets\n"
    )
    assert _imported_names(tree) == ["typing", "nextvid.config", "nextvid.presets"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles():
    cycles = _cycles(_edges())
    assert not cycles, "import circles among nextvid modules:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_library_does_not_import_the_cli():
    """nextvid.commands is the CLI layer: only the entry point and the commands themselves import it."""
    offenders = sorted(
        f"{name} imports {target}"
        for name, targets in _edges().items()
        if name != "nextvid.cli" and not name.startswith("nextvid.commands")
        for target in targets
        if target == "nextvid.commands" or target.startswith("nextvid.commands.")
    )
    assert not offenders, "library modules import the CLI layer:\n" + "\n".join(offenders)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_stay_small(name):
    rel = MODULES[name].relative_to(PACKAGE.parent).as_posix()
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{rel}: {lines} lines (at most {MAX_LINES}: split it by job)"
