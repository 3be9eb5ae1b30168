"""Where a result came from, in one place: the commit of the code that produced it (recorded in
checkpoints, probe and VAE metrics, bench results) and the seeds derived from a run's seed (one
per sample, view or epoch), so the same inputs always draw the same randomness."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def git_commit() -> str:
    """The commit of the code that runs (a submitit snapshot keeps .git out, so fall back to the
    NEXTVID_GIT_COMMIT the launcher recorded at submission)."""
    if "NEXTVID_GIT_COMMIT" in os.environ:
        return os.environ["NEXTVID_GIT_COMMIT"]
    root = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    commit = out.stdout.strip() if out.returncode == 0 else "unknown"
    dirty = subprocess.run(
        ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
    )
    return commit + ("-dirty" if commit != "unknown" and dirty.stdout.strip() else "")


def mix_seed(*parts: int) -> int:
    """Combine integers into one 63-bit seed (splitmix64-style), e.g. (run seed, sample index)."""
    x = 0x9E3779B97F4A7C15
    for part in parts:
        x = (x ^ (int(part) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 31
    return x & 0x7FFFFFFFFFFFFFFF
