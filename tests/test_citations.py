"""The repository carries what it cites: every `docs/*.md` named in code, docs or the workflow exists,
and nothing points at the development notes outside the repository (SPEC.md, DATA.md, ../shared)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC_REF = re.compile(r"\bdocs/([\w.-]+\.md)\b")
OUTSIDE = re.compile(r"\bSPEC(\.md| §)|\bDATA\.md\b|\.\./shared\b")
TEXT = (".py", ".md", ".smk", ".yaml", ".sh", ".rst", ".toml", ".html")


def tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / n for n in names if n.endswith(TEXT) or n == "Snakefile"]


def test_every_cited_doc_exists():
    cited_by = [
        p for p in tracked_text_files() if p.relative_to(ROOT).parts[0] != "tests"
    ]  # tests make docs of their own
    missing = [
        f"{p.relative_to(ROOT)}: docs/{name}"
        for p in cited_by
        for name in DOC_REF.findall(p.read_text(errors="replace"))
        if not (ROOT / "docs" / name).is_file()
    ]
    assert not missing, "cited docs that the repository does not hold:\n" + "\n".join(missing)


def test_nothing_cites_files_outside_the_repository():
    this = Path(__file__).resolve()
    hits = [
        f"{p.relative_to(ROOT)}:{i}: {line.strip()}"
        for p in tracked_text_files()
        if p != this
        for i, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not hits, "citations of files outside the repository:\n" + "\n".join(hits)
