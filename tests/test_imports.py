"""The package's layering, read from its source (ast, nothing imported): no import circle among
nextvid's modules, the library never reaches up into the CLI (nextvid.commands), nextvid.report
computes nothing (it reads result files and draws), and every file stays small enough to have one job.

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


# report/ reads result files (npz, json, png) and draws: what builds models, encodes clips or trains
# lives in the compute packages, so a report never waits on a model and runs without torch.
COMPUTE = ("torch", "nextvid.models", "nextvid.probe", "nextvid.train")


def _is_compute(name: str) -> bool:
    return any(name == c or name.startswith(f"{c}.") for c in COMPUTE)


def _compute_imports(roots: list[str], imports: dict[str, list[str]]) -> list[str]:
    """`module imports X` for each compute import X of a root module or of any module the roots import,
    directly or not; `imports` maps each nextvid module to the dotted names it imports."""
    seen, todo, found = set(), list(roots), []
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        found += [f"{name} imports {target}" for target in imports[name] if _is_compute(target)]
        todo += sorted(target for target in imports[name] if target in imports)
    return sorted(set(found))


def test_the_compute_check_sees_an_indirect_torch_import():
    """The check below can fail: a report module reaching torch through another nextvid module is
    found; a module the report does not import is not its business."""
    imports = {
        "nextvid.report.a": ["numpy", "nextvid.b"],
        "nextvid.b": ["torch.nn", "nextvid.probe.fit"],
        "nextvid.probe.fit": [],
        "nextvid.c": ["torch"],
    }
    assert _compute_imports(["nextvid.report.a"], imports) == [
        "nextvid.b imports nextvid.probe.fit",
        "nextvid.b imports torch.nn",
    ]


def test_report_computes_nothing():
    imports = {name: _imported_names(ast.parse(path.read_text(), str(path))) for name, path in MODULES.items()}
    roots = [name for name in MODULES if name == "nextvid.report" or name.startswith("nextvid.report.")]
    offenders = _compute_imports(roots, imports)
    assert not offenders, "nextvid.report must only read result files and draw:\n" + "\n".join(offenders)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_stay_small(name):
    rel = MODULES[name].relative_to(PACKAGE.parent).as_posix()
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{rel}: {lines} lines (at most {MAX_LINES}: split it by job)"
