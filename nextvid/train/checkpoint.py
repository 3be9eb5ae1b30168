"""Complete, atomic checkpoints. A checkpoint holds everything a resumed run needs to continue exactly
as the uninterrupted run would have (model with its EMA reference, optimiser, step, data position,
RNG states) and everything a reader needs to trust it (resolved config, git commit, versions).

Writes are atomic as a set. Every file appears by a rename of a complete, fsynced temp file, and a
kept step (`step_XXXXXXX.pt`, which the workflow probes) is in place before `latest.pt` moves to it
(`latest.pt` is then a hard link to the same bytes). A kill at any moment therefore leaves `latest.pt`
at the previous or the new step, never a partial file, and never at a kept step whose file is
missing. What a kill can leave is a temp file (`.latest.pt.*.tmp`); `clean_stale` removes those at the
next start. Loading uses `weights_only=True`.
"""

from __future__ import annotations

import os
import platform
import random
import re
import zipfile
from pathlib import Path
from typing import Any, Optional

import torch

from nextvid.io import TEMP_SUFFIX, atomic_path
from nextvid.layout import step_name
from nextvid.provenance import git_commit

FORMAT_VERSION = 1
LATEST = "latest.pt"
# atomic_path's temp names for `latest.pt` and kept steps (nextvid.layout.step_name)
_OWN_TEMP = re.compile(r"\.(latest|step_\d{7,})\.pt\.\w+" + re.escape(TEMP_SUFFIX))


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


def save(directory: str | Path, state: dict[str, Any], keep: bool = False) -> Path:
    """Write this step as `latest.pt`; with `keep`, first as `step_XXXXXXX.pt`, then `latest.pt` as a
    hard link to it, so `latest.pt` never names a kept step whose file is missing."""
    directory = Path(directory)
    latest = directory / LATEST
    payload = {"format": FORMAT_VERSION, **state}
    if not keep:
        with atomic_path(latest) as tmp:
            torch.save(payload, tmp)
        return latest
    kept = directory / step_name(int(state["step"]))
    with atomic_path(kept) as tmp:
        torch.save(payload, tmp)
    _link_into_place(kept, latest)
    return latest


def _link_into_place(source: Path, target: Path) -> None:
    """`target` becomes a hard link to `source`, atomically (a link to a temp name, then a rename)."""
    with atomic_path(target) as tmp:
        tmp.unlink()
        os.link(source, tmp)


def clean_stale(directory: str | Path) -> list[Path]:
    """Remove the temp files a killed `save` left in `directory` (only names of its own making:
    `.latest.pt.*.tmp`, `.step_XXXXXXX.pt.*.tmp`); returns them. Call it before a run writes again."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    stale = [p for p in directory.iterdir() if _is_own_temp(p.name)]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def _is_own_temp(name: str) -> bool:
    return _OWN_TEMP.fullmatch(name) is not None


def repair_kept(directory: str | Path, step: int) -> bool:
    """Recreate a kept step's missing file from `latest.pt` when `latest.pt` is that step (what a kill
    between the two writes of an older `save` could leave). Returns whether it did."""
    directory = Path(directory)
    kept, latest_path = directory / step_name(step), directory / LATEST
    if kept.exists() or not latest_path.is_file():
        return False
    if int(load(latest_path)["step"]) != step:
        return False
    _link_into_place(latest_path, kept)
    return True


def verify(paths: list[Path]) -> None:
    """Every path is a complete checkpoint file (torch's zip container, its central directory at the
    end intact); raise CheckpointError naming the missing or truncated ones. Cheap: reads no tensors."""
    bad = [
        f"{p} ({'missing' if not p.is_file() else 'truncated or not a checkpoint'})"
        for p in paths
        if not (p.is_file() and zipfile.is_zipfile(p))
    ]
    if bad:
        raise CheckpointError(f"checkpoint files missing or incomplete: {', '.join(bad)}")


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
