"""No config key is a no-op: every field of the pretraining config (all nested dataclasses) and of
the probe protocol is read somewhere in the package or the workflow, outside the validation that
only checks it. A key that nothing reads (a switch that does nothing) fails here by its dotted name."""

from __future__ import annotations

import ast
import dataclasses
import re
import typing
from pathlib import Path

from nextvid.config import Config
from nextvid.probe.protocol import ProbeProtocol

ROOT = Path(__file__).resolve().parents[1]


def fields(cls: type, prefix: str = "") -> dict[str, str]:
    """{dotted key: field name} for every field of `cls`, nested dataclasses (and tuples of them) included."""
    out = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        out[key] = f.name
        inner = [hints[f.name], *typing.get_args(hints[f.name])]
        for tp in inner:
            if dataclasses.is_dataclass(tp):
                out.update(fields(tp, key + "."))
    return out


class Reads(ast.NodeVisitor):
    """Names read as attributes (`x.name`), by getattr with a literal, or by getattr over a loop of
    literals (`for key in ("partition", ...): getattr(lc, key)`); validation functions are skipped."""

    def __init__(self):
        self.names: set[str] = set()

    def visit_FunctionDef(self, node):
        if not node.name.lstrip("_").startswith(("validate", "require")):
            self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Attribute(self, node):
        if isinstance(node.ctx, ast.Load):
            self.names.add(node.attr)
        self.generic_visit(node)

    def visit_Call(self, node):
        if isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr") and len(node.args) >= 2:
            if isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
                self.names.add(node.args[1].value)
        self.generic_visit(node)

    def visit_For(self, node):
        if isinstance(node.target, ast.Name) and isinstance(node.iter, (ast.Tuple, ast.List)):
            uses = any(
                isinstance(n, ast.Call)
                and isinstance(n.func, ast.Name)
                and n.func.id == "getattr"
                and any(isinstance(a, ast.Name) and a.id == node.target.id for a in n.args)
                for n in ast.walk(node)
            )
            if uses:
                self.names |= {
                    e.value for e in node.iter.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)
                }
        self.generic_visit(node)


def names_read() -> set[str]:
    reads = Reads()
    for path in sorted((ROOT / "nextvid").rglob("*.py")):
        reads.visit(ast.parse(path.read_text(), str(path)))
    names = set(reads.names)
    for path in [ROOT / "Snakefile", *sorted((ROOT / "workflow").rglob("*.smk"))]:
        names |= set(re.findall(r"\.(\w+)\b", path.read_text()))
    return names


def unread(cls: type, read: set[str]) -> list[str]:
    return sorted(key for key, name in fields(cls).items() if name not in read)


# keys whose only reader is validation, on purpose: each must say why it is not a no-op
VALIDATED_ONLY = {
    # V-JEPA's mask-spec field, kept so specs read as theirs; any value but 1.0 (blocks spanning the
    # whole clip, the paper's temporally consistent masks) is a config error, never ignored
    "masking.generators.temporal_scale",
}


def test_every_pretraining_config_key_is_read():
    assert unread(Config, names_read()) == sorted(VALIDATED_ONLY)


def test_every_probe_protocol_key_is_read():
    assert unread(ProbeProtocol, names_read()) == []


@dataclasses.dataclass(frozen=True)
class _Train:
    log_every: int = 10
    a_switch_that_does_nothing_xyz: bool = False


@dataclasses.dataclass(frozen=True)
class _WithDeadKey:
    train: _Train = dataclasses.field(default_factory=_Train)


def test_a_key_nothing_reads_is_caught():
    assert unread(_WithDeadKey, names_read()) == ["train.a_switch_that_does_nothing_xyz"]
