"""A deterministic in-memory clip dataset for trainer tests: the same global sample index always
gives the same clip (a textured pattern drifting over time), as the real pretraining dataset does."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset


class DriftingPatterns(Dataset):
    def __init__(self, cfg, frames: int, distinct: int = 64):
        self.frames = frames
        self.size = cfg.model.encoder.image_size
        self.distinct = distinct

    def __len__(self) -> int:
        return 1 << 40  # indexed by global sample index; never iterated

    def __getitem__(self, index: int) -> dict:
        g = torch.Generator().manual_seed(index % self.distinct)
        base = torch.rand(3, self.size // 8, self.size // 8, generator=g)
        base = torch.nn.functional.interpolate(base[None], size=(self.size, self.size), mode="bilinear")[0]
        dx, dy = (torch.randint(-3, 4, (2,), generator=g)).tolist()
        frames = [torch.roll(base, shifts=(t * dy, t * dx), dims=(1, 2)) for t in range(self.frames)]
        return {"video": torch.stack(frames, dim=1) * 2 - 1, "index": index}


class PoisonedPatterns(DriftingPatterns):
    """Returns NaN pixels from `poison_from` on: a stand-in for a diverging run."""

    poison_from = 48

    def __getitem__(self, index: int) -> dict:
        item = super().__getitem__(index)
        if index >= self.poison_from:
            item["video"] = torch.full_like(item["video"], float("nan"))
        return item


class UnreadableEvery(DriftingPatterns):
    """Every `every`-th global sample is unreadable: the dataset returns a bad-input marker, as the real
    datasets do for a missing or corrupt file."""

    every = 11  # nano: no multiple of 11 among the one-sample cool-down batches (144-147)

    def __getitem__(self, index: int) -> dict:
        from nextvid.data.badinput import BadInputError, bad_marker

        if index % self.every == 0:
            return bad_marker(index, BadInputError(f"/data/clip{index}.mp4", "decode_error", "test"))
        return super().__getitem__(index)
