"""The package files a command runs, read from `import` statements: a rule that takes them as inputs
reruns when the code it runs changes (Snakemake's `mtime` rerun trigger on its inputs), and only
then, with no hand-kept list to fall out of step with the code.

The closure follows every `import` (also those inside functions). Another command module
(`nextvid.commands.*`) counts as its own file only: its imports serve its own subcommands (e.g.
`data` lists the subcommands of `data_convert`).
"""

from __future__ import annotations

import ast
import os
from pathlib import Path
from typing import Optional

PACKAGE = "nextvid"


def module_file(root: Path, dotted: str) -> Optional[Path]:
    """The source of module `dotted` under `root` (the directory holding the package), or None."""
    base = root / Path(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def package_imports(path: Path) -> set[str]:
    """The package modules a source file names in its absolute imports (`from a import b`: both `a`
    and `a.b`, since b may be a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return {m for m in found if m == PACKAGE or m.startswith(f"{PACKAGE}.")}


def code_closure(root: Path, *entries: str) -> list[str]:
    """The package files under `root` that the entry modules import, directly or not (with their
    packages' __init__), sorted, relative to the working directory where they lie inside it."""
    seen: dict[str, Path] = {}
    todo = list(entries)
    while todo:
        dotted = todo.pop()
        path = module_file(root, dotted)
        if path is None or dotted in seen:
            continue
        seen[dotted] = path
        if dotted in entries or not dotted.startswith(f"{PACKAGE}.commands."):
            todo += sorted(package_imports(path))
        parent = dotted.rpartition(".")[0]
        if parent:
            todo.append(parent)
    return sorted(relative(p) for p in seen.values())


def relative(path: Path) -> str:
    """Relative to the working directory where it lies inside it (shorter logs), else absolute."""
    cwd = Path.cwd()
    return os.path.relpath(path, cwd) if path.is_relative_to(cwd) else str(path)


def features_code(root: Path) -> list[str]:
    """`report features` encodes clips (minutes): its code is the feature extraction's and the
    command module's own file, so a change to tables or figures does not rerun it."""
    own = module_file(root, f"{PACKAGE}.commands.report")
    return sorted(set(code_closure(root, f"{PACKAGE}.probe.pooled_features")) | {relative(own)})
