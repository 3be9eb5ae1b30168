"""A uint8 clip cache for corpora small enough to decode once (docs/data.md §10: ~1.7x faster training on
2 cores than decoding on the fly).

`extract` decodes every `step`-th frame of every manifest sample once (optionally resized to a
size x size centre view, optionally the centred `max_frames` of long videos) and appends them to raw
uint8 shard files (frames x H x W x 3, memory-mapped when read), plus `index.json` with each sample's
shard, offset, length and frame rate, the manifest's sha256 and the skip report of the files that
could not be read. The index is written last and names shard files by a fresh token, so an
interrupted extraction never leaves an index that points at half-written shards.

`ShardSource` presents each cached sample as a video of `length` frames at fps / step, so the same
datasets and augmentation run on it; a clip spec's `frame_step` is divided by the cache's step.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from nextvid.data.badinput import BadInputError, BadRecord, SkipLog
from nextvid.data.manifest import Manifest, read_manifest
from nextvid.data.sampling import ClipSpec
from nextvid.data.video import Backend, clamp, open_frames
from nextvid.io import atomic_write_json
from nextvid.progress import Progress

log = logging.getLogger(__name__)

INDEX = "index.json"
VERSION = 1


class ShardError(RuntimeError):
    """A shard cache is missing, incomplete or does not belong to the manifest it is used with."""


def decode_for_cache(
    path: str,
    start: Optional[int],
    end: Optional[int],
    step: int,
    size: Optional[int],
    max_frames: Optional[int],
    backend: Backend,
) -> tuple[np.ndarray, float, int]:
    """(frames (n, H, W, 3) uint8, the video's fps, the first original frame index) of what the cache
    stores for one sample. Raises BadInputError."""
    from nextvid.data.transforms import centre_square

    reader = open_frames(path, backend)
    try:
        first = start or 0
        stop = reader.num_frames if end is None else min(end, reader.num_frames)
        if stop <= first:
            raise BadInputError(
                path, "no_frames", f"frame window [{start}, {end}) is empty in a {reader.num_frames}-frame video"
            )
        idx = np.arange(first, stop, step)
        if max_frames is not None and len(idx) > max_frames:
            off = (len(idx) - max_frames) // 2
            idx = idx[off : off + max_frames]
        frames = reader.get(idx)
        fps = reader.fps
    finally:
        reader.close()
    if size is not None:
        frames = centre_square(frames, size)
    return np.ascontiguousarray(frames), fps, int(idx[0])


def _decode_job(args: tuple) -> tuple[int, object]:
    i, path, start, end, step, size, max_frames, backend = args
    try:
        return i, decode_for_cache(path, start, end, step, size, max_frames, backend)
    except BadInputError as err:
        return i, BadRecord.from_error(err, i)


def extract(
    manifest: Manifest | str | Path,
    out_dir: str | Path,
    *,
    step: int = 1,
    size: Optional[int] = None,
    max_frames: Optional[int] = None,
    backend: Backend = "auto",
    workers: int = 0,
    shard_bytes: int = 1 << 31,
    max_bad_fraction: float = 0.05,
) -> dict:
    """Decode the manifest into shards under `out_dir`; return the index. Bad files are skipped,
    logged and recorded in the index; more than `max_bad_fraction` of them raises TooManyBadInputs
    (and leaves any previous cache in place)."""
    manifest = manifest if isinstance(manifest, Manifest) else read_manifest(manifest)
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    skips = SkipLog(max_bad_fraction, total=len(manifest.samples) + len(manifest.rejected), name=str(manifest.path))
    for rec in manifest.rejected:
        skips.add(rec)
    jobs = [
        (i, str(manifest.resolve(s)), s.start_frame, s.end_frame, step, size, max_frames, backend)
        for i, s in enumerate(manifest.samples)
    ]
    token = uuid.uuid4().hex[:8]
    shards: list[dict] = []
    samples: list[dict] = []
    shape: Optional[tuple[int, int]] = None
    with (
        _ShardWriter(out, token, shard_bytes) as writer,
        Progress(len(jobs), f"clip cache {Path(manifest.path).name}", "samples") as progress,
    ):
        for done, (i, result) in enumerate(_run(jobs, workers), 1):
            progress.update(done)
            s = manifest.samples[i]
            if isinstance(result, BadRecord):
                skips.add(result)
                skips.check()
                continue
            frames, fps, first = result
            if shape is None:
                shape = frames.shape[1:3]
            elif frames.shape[1:3] != shape:
                raise ShardError(
                    f"{manifest.resolve(s)}: frames are {frames.shape[2]}x{frames.shape[1]}, the cache's "
                    f"are {shape[1]}x{shape[0]}; pass a size to resize every sample to size x size"
                )
            shard, offset = writer.append(frames)
            skips.add_good()
            samples.append(
                {
                    "row": i,
                    "path": s.path,
                    "label": s.label,
                    "shard": shard,
                    "offset": offset,
                    "length": len(frames),
                    "fps": fps / step if fps > 0 else 0.0,
                    "first_frame": first,
                }
            )
        shards = writer.shards
    skips.check()
    if not samples:
        raise ShardError(f"{manifest.path}: no sample could be decoded; nothing to cache")
    index = {
        "version": VERSION,
        "manifest": str(manifest.path),
        "manifest_sha256": manifest.sha256,
        "step": step,
        "size": size,
        "max_frames": max_frames,
        "height": int(shape[0]),
        "width": int(shape[1]),
        "backend": backend,
        "shards": shards,
        "samples": samples,
        "skips": skips.to_dict(),
    }
    atomic_write_json(out / INDEX, index)
    keep = {s["file"] for s in shards}
    for old in out.glob("shard-*.u8"):
        if old.name not in keep:
            old.unlink()
    log.info(
        "%s: cached %d samples (%d frames) in %d shards under %s; %s",
        manifest.path,
        len(samples),
        sum(s["frames"] for s in shards),
        len(shards),
        out,
        skips.summary(),
    )
    return index


def _run(jobs: list[tuple], workers: int) -> Iterator[tuple[int, object]]:
    if workers <= 0:
        yield from map(_decode_job, jobs)
        return
    import multiprocessing as mp

    with mp.get_context("fork" if hasattr(os, "fork") else "spawn").Pool(workers, initializer=_one_thread) as pool:
        yield from pool.imap(_decode_job, jobs, chunksize=1)


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


class _ShardWriter:
    """Appends frames to `shard-<token>-NNNNN.u8` files, starting a new one past `shard_bytes`.
    Each is written under a temporary name, fsynced and renamed when complete; on failure the
    temporary file is removed. The index, written after all of them, is what publishes the cache."""

    def __init__(self, out: Path, token: str, shard_bytes: int):
        self.out, self.token, self.shard_bytes = out, token, shard_bytes
        self.shards: list[dict] = []
        self._fh = None
        self._bytes = 0

    def __enter__(self) -> _ShardWriter:
        return self

    def __exit__(self, exc_type, *_) -> None:
        self._close_current(publish=exc_type is None)

    def append(self, frames: np.ndarray) -> tuple[int, int]:
        if self._fh is None or (self._bytes and self._bytes + frames.nbytes > self.shard_bytes):
            self._close_current(publish=True)
            self.shards.append({"file": f"shard-{self.token}-{len(self.shards):05d}.u8", "frames": 0})
            self._fh = open(self._tmp(), "wb")
            self._bytes = 0
        shard = self.shards[-1]
        offset = shard["frames"]
        self._fh.write(frames.tobytes())
        shard["frames"] += len(frames)
        self._bytes += frames.nbytes
        return len(self.shards) - 1, offset

    def _tmp(self) -> Path:
        return self.out / f".{self.shards[-1]['file']}.tmp"

    def _close_current(self, publish: bool) -> None:
        if self._fh is None:
            return
        fh, self._fh = self._fh, None
        if publish:
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
            os.replace(self._tmp(), self.out / self.shards[-1]["file"])
        else:
            fh.close()
            self._tmp().unlink(missing_ok=True)


class ShardFrames:
    """One cached sample as a video: frames [offset, offset + length) of a memory-mapped shard."""

    def __init__(self, frames: np.ndarray, fps: float):
        self._frames, self.fps = frames, fps
        self.num_frames = len(frames)

    def get(self, indices: np.ndarray) -> np.ndarray:
        return self._frames[clamp(indices, self.num_frames)]

    def close(self) -> None:
        pass


class ShardSource:
    """The samples of a shard cache (nextvid.data.datasets.Source). Shards are memory-mapped lazily
    in the process that reads them (a DataLoader worker), never inherited open."""

    def __init__(self, cache_dir: str | Path, expect_manifest: Optional[Manifest] = None):
        self.dir = Path(cache_dir)
        index_path = self.dir / INDEX
        if not index_path.is_file():
            raise ShardError(
                f"{self.dir}: no {INDEX} (not a shard cache, or its extraction did not finish); "
                "run `nextvid data cache` to build it"
            )
        import json

        self.index = json.loads(index_path.read_text())
        if self.index["version"] != VERSION:
            raise ShardError(
                f"{index_path}: cache version {self.index['version']}, this code reads {VERSION}; rebuild it"
            )
        if expect_manifest is not None and self.index["manifest_sha256"] != expect_manifest.sha256:
            raise ShardError(
                f"{self.dir} was built from a manifest with sha256 {self.index['manifest_sha256'][:12]}…, "
                f"not {expect_manifest.path} ({expect_manifest.sha256[:12]}…): the cache is stale; rebuild it"
            )
        self.step = int(self.index["step"])
        self.samples = self.index["samples"]
        self.shape = (int(self.index["height"]), int(self.index["width"]))
        for sh in self.index["shards"]:
            p = self.dir / sh["file"]
            want = sh["frames"] * self.shape[0] * self.shape[1] * 3
            if not p.is_file() or p.stat().st_size != want:
                raise ShardError(f"{p}: missing or not {want} bytes as {INDEX} says; rebuild the cache")
        # rows the extraction skipped are reported as already rejected, so a pass counts them
        self.rejected = tuple(BadRecord(**r) for r in self.index["skips"]["records"])
        self._maps: dict[int, np.memmap] = {}

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_maps"] = {}
        return state

    def __len__(self) -> int:
        return len(self.samples)

    def label(self, i: int) -> int:
        return int(self.samples[i]["label"])

    def path(self, i: int) -> str:
        return self.samples[i]["path"]

    def open(self, i: int) -> ShardFrames:
        s = self.samples[i]
        mm = self._maps.get(s["shard"])
        if mm is None:
            sh = self.index["shards"][s["shard"]]
            mm = np.memmap(self.dir / sh["file"], dtype=np.uint8, mode="r", shape=(sh["frames"], *self.shape, 3))
            self._maps[s["shard"]] = mm
        return ShardFrames(mm[s["offset"] : s["offset"] + s["length"]], float(s["fps"]))

    def adapt(self, spec: ClipSpec) -> ClipSpec:
        """A frame step in the original videos' frames becomes one in cached frames."""
        if spec.frame_step <= 0 or self.step == 1:
            return spec
        if spec.frame_step % self.step:
            raise ShardError(
                f"{self.dir}: cached every {self.step} frames; frame_step {spec.frame_step} "
                "is not a multiple of it (rebuild the cache with a step that divides it)"
            )
        return ClipSpec(spec.frames, spec.frame_step // self.step, 0.0, spec.short)

    def describe(self) -> dict:
        return {
            "kind": "shards",
            "shards": str(self.dir),
            "manifest": self.index["manifest"],
            "manifest_sha256": self.index["manifest_sha256"],
            "step": self.step,
            "size": self.index["size"],
        }
