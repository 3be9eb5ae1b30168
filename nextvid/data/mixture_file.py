"""The mixture file (`nextvid data embedded` and `cache-mixture` write one): the pretraining sources
with their weights. Read here without torch, so that resolving a pretraining config
(nextvid.config_resolve) stays torch-free for the workflow's plan."""

from __future__ import annotations

import json
from pathlib import Path

from nextvid.errors import UserInputError


def read_mixture(path: str | Path) -> list[dict]:
    """The `data.sources` entries of a mixture file (`nextvid data embedded` / `cache-mixture` write
    one): name, weight, manifest and optional shards, paths made absolute against the file's folder."""
    path = Path(path)
    try:
        spec = json.loads(path.read_text())
        entries = spec["sources"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UserInputError(f"{path}: not a readable mixture file ({type(err).__name__}: {err})") from None
    out = []
    for i, e in enumerate(entries):
        missing = {"name", "manifest", "weight"} - set(e)
        if missing:
            raise UserInputError(f"{path}: sources.{i} lacks {', '.join(sorted(missing))}")
        src = {
            "name": e["name"],
            "weight": float(e["weight"]),
            "manifest": str((path.parent / e["manifest"]).resolve()),
        }
        if e.get("shards"):
            src["shards"] = str((path.parent / e["shards"]).resolve())
        out.append(src)
    return out
