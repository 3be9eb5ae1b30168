"""Benchmarks (`nextvid bench <name>`). Each module exposes `configure(parser)`, `measure(args) -> dict`
(a JSON-serialisable result, measured in one run) and `table(result) -> str`; the command prints
the table, adds the environment and writes the result atomically to results/bench/<name>.json."""

from __future__ import annotations

import os
import platform
from importlib import metadata

from nextvid.provenance import git_commit


def environment() -> dict:
    """What a timing depends on: the machine, the thread budget and the library versions."""
    import torch

    versions = {}
    for pkg in ("torch", "torchvision", "decord", "av", "numpy"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "versions": versions,
        "git_commit": git_commit(),
    }
