"""Every command the documentation shows (README.md, workflow/README.md, docs/*.md), extracted from
its code blocks (and inline `snakemake ...` spans) and checked by the parser that will read it:
`nextvid` commands by nextvid's own argparse parser, `snakemake` commands by Snakemake's (targets,
config files and profiles must exist: `--configfile` takes several values and swallows a target
written after it), scripts must exist, `python -c` code must compile and import what it names.

Synopsis lines (`...`, `[--option VALUE]`, `a|b`) are checked option by option: every option they
name must be one the command has. Nothing runs, so this stays fast."""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import io
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "workflow/README.md", *sorted((ROOT / "docs").glob("*.md"))]
PROGRAMS = ("nextvid", "snakemake", "bash", "python")


def code_blocks(text: str) -> list[str]:
    """The shell code blocks, with the block's own variables (`name="..."`, as docs/grid.md sets a
    list of options) expanded where a command uses them unquoted."""
    blocks = re.findall(r"^```(?:bash|sh|shell|console)\n(.*?)^```", text, flags=re.M | re.S)
    out = []
    for block in blocks:
        for name, value in re.findall(r'^(\w+)="([^"]*)"', block, flags=re.M):
            block = block.replace(f'{name}="{value}"', "")
            block = re.sub(rf"\${name}\b", " ".join(value.split()), block)
        out.append(block)
    return out


def logical_lines(block: str) -> list[str]:
    """Lines with their comments removed and `\\` continuations joined."""
    out, pending = [], ""
    for raw in block.splitlines():
        line = re.sub(r"(^|\s)#(\s.*)?$", "", raw).rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        out.append((pending + line).strip())
        pending = ""
    return [line for line in out if line]


def commands_in(text: str) -> list[str]:
    lines = [line for block in code_blocks(text) for line in logical_lines(block)]
    lines += re.findall(r"(?<!`)`(snakemake [^`]+)`", text)  # inline, in prose
    out = []
    for line in lines:
        for part in split_list(line):
            words = part.split()
            env = []
            while words and re.fullmatch(r"[A-Z_]+=\S+", words[0]):  # an environment assignment
                env, words = env + [words[0]], words[1:]
            if words and words[0] == "sudo":
                words = words[1:]
            if words and words[0] in PROGRAMS:
                out.append(" ".join(env + words) if words != part.split() else part.strip())
    return out


def split_list(line: str) -> list[str]:
    """The simple commands of a shell list: split at `;`, `&&`, `||` and ` | ` outside quotes (a `|`
    inside a word is a synopsis' alternatives), with a leading `do`/`then` dropped."""
    parts, current, quote, i = [], "", "", 0
    while i < len(line):
        c = line[i]
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        elif line.startswith(("&&", "||"), i) or c == ";" or line.startswith(" | ", i):
            parts.append(current)
            current, i = "", i + (1 if c == ";" else 2)
            continue
        current += c
        i += 1
    parts.append(current)
    return [re.sub(r"^\s*(do|then)\s+", "", p).strip() for p in parts if p.strip()]


def documented() -> list[tuple[str, str]]:
    found = [(path.relative_to(ROOT).as_posix(), cmd) for path in DOCS for cmd in commands_in(path.read_text())]
    assert len(found) > 30
    return found


def is_synopsis(argv: list[str]) -> bool:
    return any(
        a == "..." or a.startswith("[") or a.endswith("]") and "[" not in a or re.fullmatch(r"[A-Z_]+", a) for a in argv
    )


# ---------------------------------------------------------------------------------- nextvid


def nextvid_parser_for(argv: list[str]) -> tuple[argparse.ArgumentParser, list[str]]:
    """The (sub)parser that reads the options of `argv`, and the words that chose it."""
    from nextvid.cli import build_parser

    parser, chosen = build_parser(), []
    for word in argv:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or word not in subs[0].choices:
            break
        parser, chosen = subs[0].choices[word], chosen + [word]
    return parser, chosen


def check_nextvid(argv: list[str]) -> None:
    from nextvid.cli import build_parser

    args = argv[1:]
    parser, chosen = nextvid_parser_for(args)
    assert chosen, f"no such nextvid command: {args[:2]}"
    options = {o for a in parser._actions for o in a.option_strings}
    named = {a.strip("[]").split("=")[0] for a in args if a.strip("[").startswith("--")}
    assert named <= options, f"unknown options {sorted(named - options)} of nextvid {' '.join(chosen)}"
    if not is_synopsis(args):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            try:
                build_parser().parse_args(args)
            except SystemExit:
                raise AssertionError(f"nextvid's parser refuses it: {err.getvalue().strip()}") from None


# ---------------------------------------------------------------------------------- snakemake


def rule_names() -> set[str]:
    files = [ROOT / "Snakefile", *(ROOT / "workflow/rules").glob("*.smk")]
    return {m for f in files for m in re.findall(r"^rule (\w+):", f.read_text(), flags=re.M)}


def check_snakemake(argv: list[str]) -> None:
    from snakemake.cli import get_argument_parser

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            args = get_argument_parser().parse_args(argv[1:])
        except SystemExit:
            raise AssertionError(f"snakemake's parser refuses it: {err.getvalue().strip()}") from None
    for f in args.configfile or []:
        assert (ROOT / f).is_file(), (
            f"--configfile {f}: no such file (a target written after --configfile is read as one)"
        )
    for profile in args.profile if isinstance(args.profile, list) else [args.profile] if args.profile else []:
        # a path, or a name workflow/profiles/install.sh makes known to snakemake
        assert (ROOT / profile).is_dir() or (ROOT / "workflow/profiles" / profile).is_dir(), (
            f"--profile {profile}: no such profile"
        )
    for target in args.targets or []:
        assert target in rule_names() or "/" in target, f"target {target!r} is not a rule of the workflow"


# ---------------------------------------------------------------------------------- the rest


def check_bash(argv: list[str]) -> None:
    assert (ROOT / argv[1]).is_file(), f"{argv[1]}: no such script"


def check_python(argv: list[str]) -> None:
    assert argv[1] == "-c", argv
    tree = ast.parse(argv[2])
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module.startswith("nextvid"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module} has no {alias.name}"


CHECKS = {"nextvid": check_nextvid, "snakemake": check_snakemake, "bash": check_bash, "python": check_python}


@pytest.mark.parametrize("where, command", documented())
def test_documented_command(where, command):
    argv = shlex.split(command)
    while "=" in argv[0]:  # NAME=VALUE: a variable the command reads, a path that exists
        name, value = argv.pop(0).split("=", 1)
        script = ROOT / argv[1] if argv[0] == "bash" else ROOT / "nextvid"
        assert any(name in f.read_text() for f in ([script] if script.is_file() else script.rglob("*.py"))), (
            f"{name}: read by nothing"
        )
        assert "/" not in value or (ROOT / value).exists(), f"{name}={value}: no such path"
    CHECKS[argv[0]](argv)


def test_the_extractor_finds_what_the_docs_show():
    readme = commands_in((ROOT / "workflow/README.md").read_text())
    assert any(c.startswith("snakemake --profile slurm all --configfile workflow/config/paper.yaml") for c in readme)
    found = commands_in("```bash\nX=1 nextvid a \\\n  --b c   # note\nfor s in 1 2; do\n  nextvid d; done\n```\n")
    assert found == ["X=1 nextvid a --b c", "nextvid d"]


def test_a_target_after_configfile_is_caught():
    with pytest.raises(AssertionError, match="no such file"):
        check_snakemake(shlex.split("snakemake --profile slurm --configfile workflow/config/paper.yaml all"))
    with pytest.raises(AssertionError, match="unknown options"):
        check_nextvid(shlex.split("nextvid probe --checkpoint x --benchmak motion"))
