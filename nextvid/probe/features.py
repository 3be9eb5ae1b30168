"""Frozen features for the probe: computed once and cached where the views are deterministic (every
validation view; the training views when the protocol does not augment), recomputed every epoch
where training augments.

The cache is fp16 on disk under the probe's output directory (`features/<split>.npy`, a memory map,
so the OS page cache keeps it in RAM when it fits) with a `<split>.json` beside it naming what was
encoded, which samples it holds and which were skipped; a rerun with the same checkpoint, protocol
and manifest reuses it.

Clips are batched with the data layer's skip-aware loader (`nextvid.data.datasets.make_loader`): a
sample that cannot be read arrives as a marker, is dropped from its batch and counted in the
split's `SkipLog`, which raises `TooManyBadInputs` past the protocol's `max_bad_fraction`. A store
holds the good samples only, each exactly once (checked), with their clip-set positions.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from pathlib import Path
from typing import Callable, Iterator, Optional, Protocol, Sequence

import numpy as np
import torch

from nextvid.data.badinput import SkipLog
from nextvid.data.datasets import make_loader
from nextvid.io import atomic_path, atomic_write_json
from nextvid.progress import Progress

log = logging.getLogger(__name__)

# a training minibatch: (features (B, L, D), labels (B,), clip-set positions) of its good samples,
# or None when every sample in it was bad
Batch = Optional[tuple[torch.Tensor, torch.Tensor, list[int]]]


class ClipSet(Protocol):
    """Per sample, `segments` x `views` clips of one video, segment-major (clip k is segment
    k // views, view k % views), deterministic unless it is a training set that augments
    (nextvid.data.datasets.EvalClips is one)."""

    segments: int
    views: int
    labels: Sequence[int]  # per position, known without decoding

    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> dict:
        """{"video": (S*V, C, T, H, W) in [-1, 1], "label": int, "index": int}, or a bad-input marker
        (nextvid.data.badinput.bad_marker). In a training set, "index" is the position i."""
        ...


def skip_log(clips: ClipSet, max_fraction: float, name: str) -> SkipLog:
    """A SkipLog for one pass over `clips`, with the rows its manifest already rejected."""
    if hasattr(clips, "skip_log"):
        out = clips.skip_log(max_fraction)
        out.name = name
        return out
    return SkipLog(max_fraction, total=len(clips), name=name)


def encode_views(
    tokens_of: Callable[[torch.Tensor], torch.Tensor],
    video: torch.Tensor,
    segments: int,
    views: int,
    chunk: int,
    bf16: bool,
) -> torch.Tensor:
    """(n, S*V, C, T, H, W) -> (n, V, S*N, D) fp16: the tokens of a view's segments concatenated.
    The encoder runs on `chunk` samples' clips at a time (the same chunks give the same bits), under
    bf16 autocast if asked."""
    n = video.shape[0]
    out = []
    for start in range(0, n, chunk):
        part = video[start : start + chunk]
        with torch.autocast(device_type=video.device.type, dtype=torch.bfloat16, enabled=bf16):
            tokens = tokens_of(part.flatten(0, 1)).float()  # (m*S*V, N, D)
        m, (N, D) = part.shape[0], tokens.shape[1:]
        out.append(tokens.view(m, segments, views, N, D).transpose(1, 2).reshape(m, views, segments * N, D).half())
    return torch.cat(out)


class FeatureStore:
    """fp16 features (n, V, L, D) on disk of the n good samples of a clip set, with their labels,
    their sample indices (a training set's: its positions) and the split's skip log."""

    def __init__(self, path: Path):
        self.meta = json.loads(path.with_suffix(".json").read_text())
        n = len(self.meta["indices"])
        self.array = np.load(path.with_suffix(".npy"), mmap_mode="r")[:n]  # rows past n: room left by bad samples
        self.labels = torch.tensor(self.meta["labels"], dtype=torch.int64)
        self.indices = torch.tensor(self.meta["indices"], dtype=torch.int64)
        self.skips = SkipLog.from_dict(self.meta["skipped"])
        self._row = {int(i): r for r, i in enumerate(self.meta["indices"])}

    def __len__(self) -> int:
        return self.array.shape[0]

    def read(self, rows: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """fp16 features (as stored; the probe computes in fp32) and labels of the rows."""
        rows = list(rows)
        return torch.from_numpy(self.array[rows]), self.labels[rows]

    def rows_of(self, indices: Sequence[int]) -> tuple[list[int], list[int]]:
        """(rows, indices) of the given sample indices that the store holds, in the given order:
        skipped samples drop out."""
        kept = [int(i) for i in indices if int(i) in self._row]
        return [self._row[i] for i in kept], kept


def feature_key(**parts) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def build_store(
    path: Path,
    clips: ClipSet,
    tokens_of,
    key: str,
    device: torch.device,
    chunk: int = 1,
    workers: int = 0,
    max_bad_fraction: float = 0.05,
    name: str = "",
    bf16: bool = False,
) -> FeatureStore:
    """Encode every good sample of `clips` once (reusing a complete store with the same key; its skip
    log is checked against `max_bad_fraction` again). Bad samples are skipped and counted; more than
    `max_bad_fraction` of them raises TooManyBadInputs."""
    meta_path, name = path.with_suffix(".json"), name or path.stem
    if meta_path.is_file() and json.loads(meta_path.read_text())["key"] == key and path.with_suffix(".npy").is_file():
        log.info("reusing cached features %s", path.with_suffix(".npy"))
        store = FeatureStore(path)
        store.skips.max_fraction, store.skips.name = max_bad_fraction, name
        store.skips.check()
        return store
    meta_path.unlink(missing_ok=True)  # the .json marks a complete store: remove it first
    skips = skip_log(clips, max_bad_fraction, name)
    loader = make_loader(
        clips,
        batch_sampler=[list(range(i, min(i + chunk, len(clips)))) for i in range(0, len(clips), chunk)],
        workers=workers,
    )
    labels, indices, markers, row = [], [], [], 0
    progress = Progress(len(clips), f"{name} features", "samples")
    with atomic_path(path.with_suffix(".npy")) as tmp, progress:
        array = None
        for batch in loader:
            markers += [rec["index"] for rec in batch["skipped"]]
            progress.update(
                row + len(batch.get("index", ())) + len(markers), f"{len(markers)} skipped" if markers else ""
            )
            if skips.consume(batch) is None:  # raises TooManyBadInputs past the limit
                continue
            feats = (
                encode_views(tokens_of, batch["video"].to(device), clips.segments, clips.views, chunk, bf16)
                .cpu()
                .numpy()
            )
            if array is None:  # room for every sample; a store reads only its first len(indices) rows
                array = np.lib.format.open_memmap(
                    tmp, mode="w+", dtype=np.float16, shape=(len(clips),) + feats.shape[1:]
                )
            array[row : row + len(feats)] = feats
            row += len(feats)
            labels += batch["label"].tolist()
            indices += batch["index"].tolist()
        if array is None:
            raise ValueError(f"{name}: no sample could be read ({skips.summary()})")
        array.flush()
        del array
    if len(set(indices) | set(markers)) != len(indices) + len(markers) or len(indices) + len(markers) != len(clips):
        raise ValueError(
            f"{name}: {len(clips)} samples, but {len(indices)} encoded and {len(markers)} skipped with distinct indices: a sample was returned twice or lost"
        )
    if skips.bad:
        log.warning("%s: %s", name, skips.summary())
    atomic_write_json(meta_path, {"key": key, "labels": labels, "indices": indices, "skipped": skips.to_dict()})
    return FeatureStore(path)


class CachedTrainFeatures:
    """Training minibatches read from a store: the same features every epoch.

    With `prepare` (the heads' parameter-free first op, e.g. ProbeGrid.normalize) the whole store is
    transformed once into RAM, in `dtype`, when that takes at most `max_bytes`; the batches are then
    its rows and `prepared` is True. The heads skip that op per batch: it was half of their step on
    CPU (an fp16->fp32 LayerNorm over every token, every epoch)."""

    cached = True

    def __init__(
        self,
        store: FeatureStore,
        prepare: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
        dtype: torch.dtype = torch.float32,
        max_bytes: int = 2 << 30,
        chunk: int = 256,
    ):
        self.store = store
        self.skips = store.skips
        self.prepared_rows: Optional[torch.Tensor] = None
        size = len(store) * math.prod(store.array.shape[2:]) * torch.finfo(dtype).bits // 8  # view 0 of each row
        if prepare is not None and size <= max_bytes and len(store):
            self.prepared_rows = torch.cat(
                [
                    prepare(torch.from_numpy(np.array(store.array[i : i + chunk, 0]))).to(dtype)
                    for i in range(0, len(store), chunk)
                ]
            )
        elif prepare is not None:
            log.info(
                "training features: %.1f GiB once prepared, over the %.1f GiB limit; preparing them per batch",
                size / 2**30,
                max_bytes / 2**30,
            )

    @property
    def prepared(self) -> bool:
        return self.prepared_rows is not None

    def epoch(self, epoch: int, batches: list[list[int]]) -> Iterator[Batch]:
        for positions in batches:
            rows, kept = self.store.rows_of(positions)
            if not rows:
                yield None
                continue
            if self.prepared_rows is not None:
                yield self.prepared_rows[rows], self.store.labels[rows], kept
                continue
            feats, labels = self.store.read(rows)
            yield feats[:, 0], labels, kept


class LiveTrainFeatures:
    """Training minibatches encoded on the fly from `clips_for_epoch(epoch)` (augmented views), with
    the same skip-aware loader: a bad sample drops out of its batch, as it does from a cached store.
    `skips`: the first epoch's skip log (every epoch's is checked against the limit)."""

    cached = False
    prepared = False

    def __init__(
        self,
        clips_for_epoch: Callable[[int], ClipSet],
        tokens_of,
        device: torch.device,
        chunk: int = 1,
        workers: int = 0,
        max_bad_fraction: float = 0.05,
        bf16: bool = False,
    ):
        self.clips_for_epoch, self.tokens_of, self.device, self.bf16 = clips_for_epoch, tokens_of, device, bf16
        self.chunk, self.workers, self.max_bad_fraction = chunk, workers, max_bad_fraction
        self.skips: Optional[SkipLog] = None
        self.bad_per_epoch: list[int] = []

    def epoch(self, epoch: int, batches: list[list[int]]) -> Iterator[Batch]:
        clips = self.clips_for_epoch(epoch)
        skips = skip_log(clips, self.max_bad_fraction, f"train (epoch {epoch})")
        for batch in make_loader(clips, batch_sampler=batches, workers=self.workers):
            if skips.consume(batch) is None:
                yield None
                continue
            feats = encode_views(
                self.tokens_of, batch["video"].to(self.device), clips.segments, clips.views, self.chunk, self.bf16
            )
            yield feats[:, 0], batch["label"], batch["index"].tolist()  # fp16, as a cached store gives them
        self.bad_per_epoch.append(skips.bad)
        if self.skips is None:
            self.skips = skips
