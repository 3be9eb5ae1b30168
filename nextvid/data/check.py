"""`nextvid data check`: probe every file of a manifest once, up front, and report what is bad.

Each file is opened and its first and last frame decoded (nextvid.data.video.probe): that finds
missing, empty, garbage and truncated files, unsupported codecs and videos without a decodable frame
before a training run meets them. The result is a SkipLog (written as JSON) and, optionally, a clean
manifest of the good rows only, which a run can then use with a sha256 of its own.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterator, Optional

from nextvid.data.badinput import BadInputError, BadRecord, SkipLog
from nextvid.data.manifest import Manifest, Sample, portable_path, read_manifest, write_manifest
from nextvid.data.video import Backend, probe
from nextvid.io import atomic_write_json

log = logging.getLogger(__name__)


def _probe_job(args: tuple) -> tuple[int, object]:
    i, path, backend = args
    try:
        return i, probe(path, backend)
    except BadInputError as err:
        return i, BadRecord.from_error(err, i)


def _run(jobs: list[tuple], workers: int) -> Iterator[tuple[int, object]]:
    if workers <= 0:
        yield from map(_probe_job, jobs)
        return
    import multiprocessing as mp

    with mp.get_context("fork" if hasattr(os, "fork") else "spawn").Pool(workers) as pool:
        yield from pool.imap(_probe_job, jobs, chunksize=4)


def check_manifest(
    manifest: Manifest | str | Path, *, backend: Backend = "auto", workers: int = 0, max_bad_fraction: float = 0.05
) -> tuple[SkipLog, dict[int, dict]]:
    """(skip log, {sample index: probe info} of the good samples). Never raises for bad files: the
    caller decides with `skips.check()`."""
    m = manifest if isinstance(manifest, Manifest) else read_manifest(manifest)
    skips = SkipLog(max_bad_fraction, total=len(m.samples) + len(m.rejected), name=str(m.path))
    for rec in m.rejected:
        skips.add(rec)
    infos: dict[int, dict] = {}
    jobs = [(i, str(m.resolve(s)), backend) for i, s in enumerate(m.samples)]
    for i, result in _run(jobs, workers):
        if isinstance(result, BadRecord):
            skips.add(result)
        else:
            skips.add_good()
            infos[i] = result
    return skips, infos


def write_clean(manifest: Manifest, good: set[int], out: str | Path) -> str:
    """A manifest of the good rows only (same label map, same paths); returns its sha256."""
    samples = [
        Sample(portable_path(manifest.resolve(s), out), s.label, s.start_frame, s.end_frame)
        for i, s in enumerate(manifest.samples)
        if i in good
    ]
    return write_manifest(out, samples, manifest.label_map)


def summarise(skips: SkipLog, infos: dict[int, dict], report: Optional[str | Path] = None) -> dict:
    """The report's summary fields (frames and sizes of the good files) next to the skip log."""
    frames = [v["num_frames"] for v in infos.values()]
    out = skips.to_dict()
    out["good"] = len(infos)
    out["frames"] = {"min": min(frames), "max": max(frames), "total": sum(frames)} if frames else None
    if report is not None:
        atomic_write_json(report, out)
    return out
