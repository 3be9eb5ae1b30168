"""Frames for the VAE, through the pretraining data layer.

Training frames: global index g of the mixture stream (nextvid.data.mixture: a pure function of
(seed, g)) gives a one-frame clip of a sampled source, random-resized-cropped and flipped as
pretraining clips are, in [-1, 1]; an image is its own frame. With `crop`, a random patch of that
frame, drawn from (seed, g) too. Step s reads indices [s * batch, (s + 1) * batch): a run is the same
with any number of loader workers.

Held-out frames: the centre frame of samples spread evenly over a validation manifest, resized and
centre-cropped as probe clips are (deterministic, each counted once).

Unreadable samples are dropped and counted (nextvid.data.badinput), never replaced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from nextvid.data.badinput import SkipLog, is_marker
from nextvid.data.datasets import EvalClips, ManifestSource, TrainClips, make_loader, open_source
from nextvid.data.mixture import MixtureDataset
from nextvid.data.mixture_file import read_mixture
from nextvid.data.sampling import ClipSpec, sample_rng
from nextvid.data.transforms import RandomResizedCropFlip
from nextvid.data.video import Backend
from nextvid.vae.config import VaeConfig

_SALT = 0x766165  # the patch positions' stream, apart from the mixture's draws
ONE_FRAME = ClipSpec(1, frame_step=1)


class MixtureFrames(Dataset):
    """Global index g -> {"frame": (3, S, S), "index": g}, S = crop or image_size (or a bad-input marker)."""

    def __init__(self, mixture: str | Path, cfg: VaeConfig, crop: int = 0, backend: Backend = "auto"):
        entries = read_mixture(mixture)
        augment = RandomResizedCropFlip(cfg.image_size, tuple(cfg.crop_scale), tuple(cfg.crop_aspect), cfg.hflip)
        sources = [
            TrainClips(
                open_source(e["manifest"], e.get("shards"), backend), ONE_FRAME, cfg.image_size, augment, cfg.seed
            )
            for e in entries
        ]
        self.mixture = MixtureDataset(sources, [e["weight"] for e in entries], cfg.seed, [e["name"] for e in entries])
        self.crop, self.seed, self.size = crop, cfg.seed, cfg.image_size

    def __len__(self) -> int:
        return len(self.mixture)

    def __getitem__(self, index: int) -> dict:
        item = self.mixture[index]
        if is_marker(item):
            return item
        frame = item["video"][:, 0]
        if self.crop and self.crop < self.size:
            top, left = sample_rng(self.seed, _SALT, index).integers(0, self.size - self.crop + 1, size=2)
            frame = frame[:, top : top + self.crop, left : left + self.crop]
        return {"frame": frame.contiguous(), "index": index}

    def skip_log(self, max_fraction: float) -> SkipLog:
        return self.mixture.skip_log(max_fraction)


def mixture_batches(
    frames: MixtureFrames, begin: int, end: int, batch_size: int, skips: SkipLog, workers: int = 0
) -> Iterator[torch.Tensor]:
    """Frames of global indices [begin, end) in batches of `batch_size` (the last may be short); a
    batch whose samples were all unreadable is left out."""
    index_batches = [list(range(b, min(b + batch_size, end))) for b in range(begin, end, batch_size)]
    for batch in make_loader(frames, batch_sampler=index_batches, workers=workers):
        if skips.consume(batch) is not None:
            yield batch["frame"]


class HeldOutFrames(Dataset):
    """The centre frame of `samples` samples spread evenly over a manifest: {"frame": (3, S, S)}."""

    def __init__(self, manifest: str | Path, size: int, samples: int, backend: Backend = "auto"):
        clips = EvalClips(ManifestSource(manifest, backend), ONE_FRAME, size, segments=1, views=1)
        n = len(clips)
        picked = np.unique(np.linspace(0, n - 1, min(samples, n)).round().astype(int)) if n else np.zeros(0, int)
        self.clips, self.subset = clips, Subset(clips, picked.tolist())
        self.rejected = clips.source.rejected

    def __len__(self) -> int:
        return len(self.subset)

    def __getitem__(self, i: int) -> dict:
        item = self.subset[i]
        return item if is_marker(item) else {"frame": item["video"][0, :, 0], "index": item["index"]}


def held_out_batches(
    frames: HeldOutFrames, batch_size: int, skips: SkipLog, workers: int = 0
) -> Iterator[torch.Tensor]:
    for batch in make_loader(frames, batch_size=batch_size, workers=workers):
        if skips.consume(batch) is not None:
            yield batch["frame"]
