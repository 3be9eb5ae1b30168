"""The Python code passes ruff's lint (pyflakes, pycodestyle, import order; config in pyproject.toml).
`ruff` comes with the dev extra that `bash tests/run.sh` installs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_check_is_clean():
    ruff = Path(sys.executable).parent / "ruff"
    assert ruff.is_file(), f"{ruff} is missing: install the dev extra (bash envs/bootstrap.sh)"
    proc = subprocess.run(
        [str(ruff), "check", "--no-cache", "--output-format", "concise"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
