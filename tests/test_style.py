"""The Python code passes ruff's lint (pyflakes, pycodestyle, import order) and is ruff-formatted
(config in pyproject.toml). `ruff` comes with the dev extra that `bash tests/run.sh` installs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def ruff(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "ruff"
    assert exe.is_file(), f"{exe} is missing: install the dev extra (bash envs/bootstrap.sh)"
    return subprocess.run([str(exe), *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_check_is_clean():
    proc = ruff("check", "--no-cache", "--output-format", "concise")
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]


def test_ruff_format_leaves_every_file_as_it_is():
    proc = ruff("format", "--check", "--no-cache")
    assert proc.returncode == 0, "run `ruff format`:\n" + proc.stdout[-5000:] + proc.stderr[-2000:]
