"""Complete, atomic checkpoints. A checkpoint holds everything a resumed run needs to continue exactly
as the uninterrupted run would have (model with its EMA reference, optimiser, step, data position,
RNG states) and everything a reader needs to trust it (resolved config, git commit, versions).

`latest.pt` is replaced atomically (temp file + fsync + rename), so a kill at any moment leaves the
previous or the new checkpoint, never a partial one. Steps the workflow asks for are kept as
`step_XXXXXXX.pt` hard links to the same bytes. Loading uses `weights_only=True`.
"""

from __future__ import annotations

import os
import platform
import random
import subprocess
from pathlib import Path
from typing import Any, Optional

import torch

from nextvid.io import atomic_path
from nextvid.layout import step_name  # noqa: F401  (re-exported: the trainer names kept checkpoints with it)

FORMAT_VERSION = 1
LATEST = "latest.pt"


class CheckpointError(RuntimeError):
    """A checkpoint exists but cannot be used; never silently start from scratch instead."""


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": _python_rng_to_list(random.getstate())}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def provenance() -> dict[str, str]:
    import timm

    import nextvid

    return {
        "git_commit": git_commit(),
        "nextvid": nextvid.__version__,
        "torch": str(torch.__version__),
        "timm": timm.__version__,
        "python": platform.python_version(),
    }


def git_commit() -> str:
    """The commit of the code that runs (a submitit snapshot keeps .git out, so fall back to the
    NEXTVID_GIT_COMMIT the launcher recorded at submission)."""
    if "NEXTVID_GIT_COMMIT" in os.environ:
        return os.environ["NEXTVID_GIT_COMMIT"]
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    commit = out.stdout.strip() if out.returncode == 0 else "unknown"
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
    return commit + ("-dirty" if commit != "unknown" and dirty.stdout.strip() else "")


def save(directory: str | Path, state: dict[str, Any], keep: bool = False) -> Path:
    """Write `latest.pt` atomically; with `keep`, also keep this step as `step_XXXXXXX.pt`."""
    directory = Path(directory)
    latest = directory / LATEST
    payload = {"format": FORMAT_VERSION, **state}
    with atomic_path(latest) as tmp:
        torch.save(payload, tmp)
    if keep:
        kept = directory / step_name(int(state["step"]))
        with atomic_path(kept) as tmp:
            tmp.unlink()
            os.link(latest, tmp)
    return latest


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise CheckpointError(f"{path}: cannot be loaded ({type(err).__name__}: {err})") from err
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: not a nextvid checkpoint of format {FORMAT_VERSION}")
    return _with_precision(state)


def _with_precision(state: dict[str, Any]) -> dict[str, Any]:
    """Checkpoints written before `schedule.precision` had `schedule.bf16: bool` and no resolved
    `precision`: read them as the same setting, so their encoders can still be probed."""
    schedule = state.get("config", {}).get("schedule", {})
    if "bf16" in schedule:
        schedule["precision"] = "bf16" if schedule.pop("bf16") else "fp32"
    if "precision" not in state and schedule.get("precision") in ("bf16", "fp32"):
        state["precision"] = schedule["precision"]
    return state


def latest(directory: str | Path) -> Optional[Path]:
    path = Path(directory) / LATEST
    return path if path.is_file() else None


def _python_rng_to_list(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]
