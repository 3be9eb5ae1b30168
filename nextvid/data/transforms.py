"""Clip transforms: (T, H, W, 3) uint8 frames in, float32 (C, T, H, W) in [-1, 1] out.

Crops and resizes run on uint8 through torchvision's `transforms.v2.functional` (its antialiased
uint8 bilinear kernel is faster here than resizing float frames, see docs/data.md), with one set of
parameters for all frames of a clip. Random parameters come from a numpy Generator that the dataset
derives from (seed, sample index): no global RNG, so a clip is reproducible in any worker.
Normalisation is mean 0.5, std 0.5 [docs/method.md §4]: x / 127.5 - 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


def to_model(frames: torch.Tensor) -> torch.Tensor:
    """(T, C, H, W) uint8 -> contiguous (C, T, H, W) float32 in [-1, 1]. The cast and the transpose
    happen in one copy: making a permuted float tensor contiguous afterwards costs ~10x more."""
    t, c, h, w = frames.shape
    out = torch.empty((c, t, h, w), dtype=torch.float32)
    out.copy_(frames.permute(1, 0, 2, 3))
    return out.div_(127.5).sub_(1.0)


def as_tchw(frames: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) uint8 numpy -> (T, 3, H, W) uint8 tensor view (channels-last memory, which the
    uint8 resize kernel prefers). Read-only input (an image broadcast over time) is copied."""
    frames = np.ascontiguousarray(frames)
    if not frames.flags.writeable:
        frames = frames.copy()
    return torch.from_numpy(frames).permute(0, 3, 1, 2)


@dataclass(frozen=True)
class CropParams:
    top: int
    left: int
    height: int
    width: int
    flip: bool


@dataclass(frozen=True)
class RandomResizedCropFlip:
    """Random resized crop (area `scale`, aspect `ratio`, torchvision's sampling rule) and an
    optional horizontal flip, drawn once per clip."""

    size: int
    scale: tuple[float, float] = (0.3, 1.0)
    ratio: tuple[float, float] = (0.75, 1.35)
    hflip: bool = True

    def params(self, height: int, width: int, rng: np.random.Generator) -> CropParams:
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * rng.uniform(self.scale[0], self.scale[1])
            aspect = math.exp(rng.uniform(*log_ratio))
            w = int(round(math.sqrt(target * aspect)))
            h = int(round(math.sqrt(target / aspect)))
            if 0 < w <= width and 0 < h <= height:
                top = int(rng.integers(0, height - h + 1))
                left = int(rng.integers(0, width - w + 1))
                return CropParams(top, left, h, w, self._flip(rng))
        # fallback (torchvision's): the largest centred crop with the aspect clamped to `ratio`
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            w, h = width, int(round(width / self.ratio[0]))
        elif in_ratio > self.ratio[1]:
            h, w = height, int(round(height * self.ratio[1]))
        else:
            w, h = width, height
        return CropParams((height - h) // 2, (width - w) // 2, h, w, self._flip(rng))

    def _flip(self, rng: np.random.Generator) -> bool:
        return bool(self.hflip and rng.random() < 0.5)

    def __call__(self, frames: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        import torchvision.transforms.v2.functional as TF

        x = as_tchw(frames)
        p = self.params(x.shape[-2], x.shape[-1], rng)
        x = TF.resized_crop(x, p.top, p.left, p.height, p.width, [self.size, self.size], antialias=True)
        if p.flip:
            x = x.flip(-1)
        return to_model(x)


def resize_short_side(x: torch.Tensor, size: int) -> torch.Tensor:
    """(T, C, H, W) uint8, short side -> `size` (aspect kept)."""
    import torchvision.transforms.v2.functional as TF

    h, w = x.shape[-2:]
    if min(h, w) == size:
        return x
    scale = size / min(h, w)
    return TF.resize(x, [max(size, round(h * scale)), max(size, round(w * scale))], antialias=True)


def view_origins(height: int, width: int, size: int, views: int) -> list[tuple[int, int]]:
    """(top, left) of `views` size x size crops spread evenly along the long side (1: centre;
    3: left/top, centre, right/bottom); centred across the short side."""
    if views < 1:
        raise ValueError(f"views must be >= 1, got {views}")
    out = []
    for v in range(views):
        frac = 0.5 if views == 1 else v / (views - 1)
        along_h = height > width
        top = round((height - size) * (frac if along_h else 0.5))
        left = round((width - size) * (0.5 if along_h else frac))
        out.append((top, left))
    return out


@dataclass(frozen=True)
class SpatialViews:
    """Deterministic evaluation views: short side resized to `short_side` (0: `size`), then `views`
    crops of size x size (V-JEPA's single-view evaluation resizes to size * 256/224 first)."""

    size: int
    views: int = 1
    short_side: int = 0

    def __post_init__(self) -> None:
        if self.short_side and self.short_side < self.size:
            raise ValueError(f"short_side {self.short_side} < size {self.size}: the crops would not fit")

    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        """(T, H, W, 3) uint8 -> (V, C, T, size, size) float."""
        x = resize_short_side(as_tchw(frames), self.short_side or self.size)
        crops = [
            x[..., top : top + self.size, left : left + self.size]
            for top, left in view_origins(x.shape[-2], x.shape[-1], self.size, self.views)
        ]
        return torch.stack([to_model(c) for c in crops])


def centre_square(frames: np.ndarray, size: int) -> np.ndarray:
    """(T, H, W, 3) uint8 -> (T, size, size, 3) uint8: the centre view, for fixed-shape caches."""
    x = resize_short_side(as_tchw(frames), size)
    ((top, left),) = view_origins(x.shape[-2], x.shape[-1], size, 1)
    return x[..., top : top + size, left : left + size].permute(0, 2, 3, 1).contiguous().numpy()
