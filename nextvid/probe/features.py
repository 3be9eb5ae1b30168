"""Frozen features for the probe: computed once and cached where the views are deterministic (every
validation view; the training views when the protocol does not augment), recomputed every epoch
where training augments.

The cache is fp16 on disk under the probe's output directory (`features/<split>.npy`, a memory map,
so the OS page cache keeps it in RAM when it fits) with a `<split>.json` beside it naming what was
encoded; a rerun with the same checkpoint, protocol and manifest reuses it.

The clip sets come from the data layer; this module needs only the small `ClipSet` interface.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Callable, Iterator, Protocol, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from nextvid.io import atomic_path, atomic_write_json

log = logging.getLogger(__name__)


class ClipSet(Protocol):
    """Per sample, `segments` x `views` clips of one video, segment-major (clip k is segment
    k // views, view k % views), deterministic unless it is a training set that augments."""

    segments: int
    views: int
    labels: Sequence[int]  # per position, known without decoding

    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> dict:  # {"video": (S*V, C, T, H, W) in [-1, 1], "label": int, "index": int}
        ...


def collate(items: list[dict]) -> dict:
    return {
        "video": torch.stack([it["video"] for it in items]),
        "label": torch.tensor([int(it["label"]) for it in items]),
        "index": torch.tensor([int(it["index"]) for it in items]),
    }


def encode_views(tokens_of: Callable[[torch.Tensor], torch.Tensor], video: torch.Tensor, segments: int, views: int, chunk: int) -> torch.Tensor:
    """(n, S*V, C, T, H, W) -> (n, V, S*N, D) fp16: the tokens of a view's segments concatenated.
    The encoder runs on `chunk` samples' clips at a time (the same chunks give the same bits), under
    bf16 autocast on GPUs."""
    n, cuda = video.shape[0], video.device.type == "cuda"
    out = []
    for start in range(0, n, chunk):
        part = video[start:start + chunk]
        with torch.autocast(device_type=video.device.type, dtype=torch.bfloat16, enabled=cuda):
            tokens = tokens_of(part.flatten(0, 1)).float()  # (m*S*V, N, D)
        m, (N, D) = part.shape[0], tokens.shape[1:]
        out.append(tokens.view(m, segments, views, N, D).transpose(1, 2).reshape(m, views, segments * N, D).half())
    return torch.cat(out)


class FeatureStore:
    """fp16 features (n, V, L, D) on disk, with labels and sample indices, row = clip-set position."""

    def __init__(self, path: Path):
        self.meta = json.loads(path.with_suffix(".json").read_text())
        self.array = np.load(path.with_suffix(".npy"), mmap_mode="r")
        self.labels = torch.tensor(self.meta["labels"])
        self.indices = torch.tensor(self.meta["indices"])

    def __len__(self) -> int:
        return self.array.shape[0]

    def read(self, rows: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = list(rows)
        return torch.from_numpy(self.array[rows].astype(np.float32)), self.labels[rows]


def feature_key(**parts) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def build_store(path: Path, clips: ClipSet, tokens_of, key: str, device: torch.device, chunk: int = 1, workers: int = 0) -> FeatureStore:
    """Encode every sample of `clips` once (reusing a complete store with the same key)."""
    meta_path = path.with_suffix(".json")
    if meta_path.is_file() and json.loads(meta_path.read_text())["key"] == key and path.with_suffix(".npy").is_file():
        log.info("reusing cached features %s", path.with_suffix(".npy"))
        return FeatureStore(path)
    meta_path.unlink(missing_ok=True)  # the .json marks a complete store: remove it first
    loader = _loader(clips, [list(range(i, min(i + chunk, len(clips)))) for i in range(0, len(clips), chunk)], workers)
    labels, indices, row = [], [], 0
    with atomic_path(path.with_suffix(".npy")) as tmp:
        array = None
        for batch in loader:
            feats = encode_views(tokens_of, batch["video"].to(device), clips.segments, clips.views, chunk).cpu().numpy()
            if array is None:
                array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=(len(clips),) + feats.shape[1:])
            array[row:row + len(feats)] = feats
            row += len(feats)
            labels += batch["label"].tolist()
            indices += batch["index"].tolist()
        if array is None:
            raise ValueError(f"{path.name}: the clip set is empty")
        array.flush()
        del array
    if len(set(indices)) != len(indices):
        raise ValueError(f"{path.name}: the clip set returned a sample index twice")
    atomic_write_json(meta_path, {"key": key, "labels": labels, "indices": indices})
    return FeatureStore(path)


class CachedTrainFeatures:
    """Training minibatches read from a store: the same features every epoch."""

    cached = True

    def __init__(self, store: FeatureStore):
        self.store = store

    def epoch(self, epoch: int, batches: list[list[int]]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for rows in batches:
            feats, labels = self.store.read(rows)
            yield feats[:, 0], labels


class LiveTrainFeatures:
    """Training minibatches encoded on the fly from `clips_for_epoch(epoch)` (augmented views)."""

    cached = False

    def __init__(self, clips_for_epoch: Callable[[int], ClipSet], tokens_of, device: torch.device, chunk: int = 1, workers: int = 0):
        self.clips_for_epoch, self.tokens_of, self.device = clips_for_epoch, tokens_of, device
        self.chunk, self.workers = chunk, workers

    def epoch(self, epoch: int, batches: list[list[int]]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        clips = self.clips_for_epoch(epoch)
        for batch in _loader(clips, batches, self.workers):
            feats = encode_views(self.tokens_of, batch["video"].to(self.device), clips.segments, clips.views, self.chunk)
            yield feats[:, 0].float(), batch["label"]


def _loader(clips: ClipSet, batches: list[list[int]], workers: int) -> DataLoader:
    """Batches of clip-set positions, in the given order."""
    return DataLoader(clips, batch_sampler=batches, num_workers=workers, collate_fn=collate, persistent_workers=False)
