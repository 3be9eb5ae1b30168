"""Datasets: training clips and evaluation segments x views, from video files or from a shard cache.

A *source* gives per-sample frame readers (`ManifestSource`: files through decord/PyAV;
`nextvid.data.shards.ShardSource`: the uint8 cache). On top of a source:
- `TrainClips[i]` -> {"video": (C, T, H, W), "label", "index"}: one random clip, random resized
  crop + flip, drawn from (seed, epoch, i). Set `dataset.epoch` before a DataLoader starts its
  workers to draw another epoch's clips.
- `EvalClips[i]` -> {"video": (S*V, C, T, H, W), "label", "index"}: S deterministic segments x V
  deterministic views, segment-major (clip s*V + v), so each sample is one item and is counted
  exactly once however it is batched. With `augment`, each segment gets a random crop instead
  (V = 1): the probe's augmented training clips.
Both return a marker instead of a sample they cannot read (nextvid.data.badinput); batch them with
`make_loader` (or `collate_fn=badinput.collate`) and count with `SkipLog.consume`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Protocol, Sequence

import numpy as np
from torch.utils.data import DataLoader, Dataset

from nextvid.data.badinput import BadInputError, BadRecord, SkipLog, bad_marker, collate
from nextvid.data.manifest import Manifest, read_manifest
from nextvid.data.sampling import ClipSpec, random_clip, sample_rng, segment_clips
from nextvid.data.transforms import RandomResizedCropFlip, SpatialViews
from nextvid.data.video import Backend, Frames, ImageFrames, clamp, open_frames


class Source(Protocol):
    """Per-sample frame readers; `rejected`: rows dropped before loading (counted as skipped)."""

    rejected: tuple[BadRecord, ...]

    def __len__(self) -> int: ...

    def label(self, i: int) -> int: ...

    def path(self, i: int) -> str: ...

    def open(self, i: int) -> Frames: ...

    def adapt(self, spec: ClipSpec) -> ClipSpec: ...

    def describe(self) -> dict: ...


class Window:
    """Frames [start, end) of a reader, as a video of its own (a manifest row's start/end frame)."""

    def __init__(self, reader: Frames, start: Optional[int], end: Optional[int], path: str):
        self.reader, self.start = reader, start or 0
        stop = reader.num_frames if end is None else min(end, reader.num_frames)
        self.num_frames, self.fps = stop - self.start, reader.fps
        if self.num_frames < 1:
            reader.close()
            raise BadInputError(
                path, "no_frames", f"frame window [{start}, {end}) is empty in a {reader.num_frames}-frame video"
            )

    def get(self, indices: np.ndarray) -> np.ndarray:
        return self.reader.get(clamp(indices, self.num_frames) + self.start)

    def close(self) -> None:
        self.reader.close()


class ManifestSource:
    """The manifest's files, decoded on the fly (streaming)."""

    def __init__(self, manifest: Manifest | str | Path, backend: Backend = "auto"):
        self.manifest = manifest if isinstance(manifest, Manifest) else read_manifest(manifest)
        self.backend = backend
        self.rejected = self.manifest.rejected

    def __len__(self) -> int:
        return len(self.manifest.samples)

    def label(self, i: int) -> int:
        return self.manifest.samples[i].label

    def path(self, i: int) -> str:
        return str(self.manifest.resolve(self.manifest.samples[i]))

    def open(self, i: int) -> Frames:
        s = self.manifest.samples[i]
        reader = open_frames(self.path(i), self.backend)
        if s.start_frame is None and s.end_frame is None or isinstance(reader, ImageFrames):
            return reader
        return Window(reader, s.start_frame, s.end_frame, self.path(i))

    def adapt(self, spec: ClipSpec) -> ClipSpec:
        return spec

    def describe(self) -> dict:
        return {
            "kind": "stream",
            "manifest": str(self.manifest.path),
            "manifest_sha256": self.manifest.sha256,
            "backend": self.backend,
        }


class _ClipDataset(Dataset):
    def __init__(self, source: Source, spec: ClipSpec, seed: int, epoch: int):
        self.source, self.spec = source, source.adapt(spec)
        self.seed, self.epoch = seed, epoch
        self.labels = [source.label(i) for i in range(len(source))]  # known without decoding

    def __len__(self) -> int:
        return len(self.source)

    def skip_log(self, max_fraction: float = 0.05) -> SkipLog:
        """A SkipLog for one pass over this dataset (make a new one per epoch), with the rows the
        source already rejected."""
        out = SkipLog(max_fraction, total=len(self) + len(self.source.rejected))
        for rec in self.source.rejected:
            out.add(rec)
        return out

    def _read(self, i: int, clips) -> tuple[np.ndarray, bool]:
        """Decode the frames of `clips(num_frames, fps)` (a list of index arrays) in one call."""
        reader = self.source.open(i)
        try:
            idx = clips(reader.num_frames, reader.fps)
            frames = reader.get(np.concatenate(idx))
        finally:
            reader.close()
        return frames, isinstance(reader, ImageFrames)


class TrainClips(_ClipDataset):
    """One random clip per sample, augmented; a pure function of (seed, epoch, index)."""

    def __init__(
        self,
        source: Source,
        spec: ClipSpec,
        size: int,
        augment: Optional[RandomResizedCropFlip] = None,
        seed: int = 0,
        epoch: int = 0,
    ):
        super().__init__(source, spec, seed, epoch)
        self.augment = augment if augment is not None else RandomResizedCropFlip(size)
        if self.augment.size != size:
            raise ValueError(f"augment.size {self.augment.size} != size {size}")

    def __getitem__(self, i: int) -> dict:
        return self.load(i, sample_rng(self.seed, self.epoch, i), index=i)

    def load(self, i: int, rng: np.random.Generator, index: int) -> dict:
        """Sample `i` of the source with the draws from `rng`, reported as `index` (the mixture
        passes its global sample index)."""
        try:
            frames, image = self._read(i, lambda n, fps: [random_clip(n, self.spec, fps, rng)])
        except BadInputError as err:
            return bad_marker(index, err)
        if image:  # a frame-invariant video: transform one frame, repeat it
            video = self.augment(frames[:1], rng).expand(-1, self.spec.frames, -1, -1)
        else:
            video = self.augment(frames, rng)
        return {"video": video, "label": self.labels[i], "index": index}


class EvalClips(_ClipDataset):
    """`segments` x `views` deterministic clips per sample, (S*V, C, T, H, W), segment-major."""

    def __init__(
        self,
        source: Source,
        spec: ClipSpec,
        size: int,
        segments: int = 1,
        views: int = 1,
        augment: Optional[RandomResizedCropFlip] = None,
        seed: int = 0,
        epoch: int = 0,
        short_side: int = 0,
    ):
        super().__init__(source, spec, seed, epoch)
        if augment is not None and views != 1:
            raise ValueError("augmented clips take one random crop per segment: views must be 1")
        self.segments, self.views, self.augment = segments, views, augment
        self.spatial = SpatialViews(size, views, short_side)  # short_side: resize before cropping (0: size)

    def __getitem__(self, i: int) -> dict:
        import torch

        s, t = self.segments, self.spec.frames
        try:
            frames, image = self._read(i, lambda n, fps: segment_clips(n, self.spec, fps, s))
        except BadInputError as err:
            return bad_marker(i, err)
        if image:  # every segment is the same frame-invariant video: transform one frame
            frames, t = frames[:1].repeat(s, axis=0), 1
        if self.augment is not None:
            rng = sample_rng(self.seed, self.epoch, i)
            clips = [self.augment(frames[k * t : (k + 1) * t], rng) for k in range(s)]
        else:
            clips = [v for k in range(s) for v in self.spatial(frames[k * t : (k + 1) * t])]
        video = torch.stack(clips)
        if image:
            video = video.expand(-1, -1, self.spec.frames, -1, -1)
        return {"video": video, "label": self.labels[i], "index": i}


def pick_samples(labels: Sequence[int], n: int) -> list[int]:
    """n deterministic positions of a clip set (its `labels`) spread over the classes, for the figures
    that show a few samples (generations, t-SNE): round-robin over classes in label order,
    each class's samples in manifest order."""
    by_class: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(int(label), []).append(i)
    queues = [by_class[c] for c in sorted(by_class)]
    out: list[int] = []
    depth = 0
    while len(out) < n and any(depth < len(q) for q in queues):
        out += [q[depth] for q in queues if depth < len(q)]
        depth += 1
    return sorted(out[:n])


def make_loader(
    dataset: Dataset,
    batch_size: int = 1,
    *,
    batch_sampler=None,
    workers: int = 0,
    shuffle: bool = False,
    seed: int = 0,
    drop_last: bool = False,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader that drops and reports bad samples (`collate`), one torch thread per worker.
    `batch_sampler` (e.g. the trainer's step sampler over global indices) replaces batch_size,
    shuffle and drop_last. Evaluation: shuffle=False, drop_last=False: every sample seen once."""
    import torch

    common = dict(
        num_workers=workers,
        collate_fn=collate,
        worker_init_fn=_one_thread if workers else None,
        persistent_workers=False,
        pin_memory=pin_memory,
    )
    if batch_sampler is not None:
        return DataLoader(dataset, batch_sampler=batch_sampler, **common)
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, generator=generator, **common
    )


def _one_thread(_: int) -> None:
    import torch

    torch.set_num_threads(1)


def train_dataset(
    manifest: str | Path,
    frames: int,
    size: int,
    *,
    frame_step: int = 0,
    fps: float = 0.0,
    shards: str | Path | None = None,
    scale: tuple[float, float] = (0.3, 1.0),
    ratio: tuple[float, float] = (0.75, 1.35),
    hflip: bool = True,
    backend: Backend = "auto",
    seed: int = 0,
) -> TrainClips:
    """Training clips from one manifest, streamed from its files or read from its shard cache."""
    source = open_source(manifest, shards, backend)
    return TrainClips(
        source, ClipSpec(frames, frame_step, fps), size, RandomResizedCropFlip(size, scale, ratio, hflip), seed
    )


def eval_dataset(
    manifest: str | Path,
    frames: int,
    size: int,
    segments: int,
    views: int,
    *,
    frame_step: int = 0,
    fps: float = 0.0,
    shards: str | Path | None = None,
    backend: Backend = "auto",
) -> EvalClips:
    source = open_source(manifest, shards, backend)
    return EvalClips(source, ClipSpec(frames, frame_step, fps), size, segments, views)


def open_source(manifest: str | Path, shards: str | Path | None = None, backend: Backend = "auto") -> Source:
    """The manifest's shard cache when `shards` is given (checked against the manifest's sha256),
    else its files."""
    if shards:
        from nextvid.data.shards import ShardSource

        return ShardSource(shards, expect_manifest=read_manifest(manifest))
    return ManifestSource(manifest, backend)
