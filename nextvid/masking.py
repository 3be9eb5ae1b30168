"""Temporally consistent masks, returned as index tensors of the visible spatial positions.

Every generator masks the same spatial positions in every token-frame (tubes: temporal scale 1.0), so
a mask is a (B, K) tensor of sorted visible indices into the H' x W' grid, and the encoder gathers the
same K positions from each token-frame. K is the same for every sample of a batch: each sample's
visible set is truncated to the batch minimum by a random subset [ours, after V-JEPA, which
truncates the sorted list and so drops the bottom of the image]. The batch is the device's own
(`truncation: device`, V-JEPA 2's per-GPU collator, the default) or the global one (`global`): the
minimum over more samples is smaller, so global truncation masks more at large batch (docs/masking.md).

Multi-block [paper "Mask Sample [8, 2]", geometry after V-JEPA]: `num_blocks` rectangles of
`spatial_scale` of the grid, aspect ratio drawn log-uniformly, one block size per batch, positions per
sample; the encoder sees the complement of their union.
Tube [VideoMAE baseline]: a random `ratio` of spatial positions masked in every frame.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch

from nextvid.config import BlockMaskSpec, MaskingConfig

MaskFn = Callable[[int, Optional[torch.Generator]], torch.Tensor]
MAX_RESAMPLES = 50


class MultiBlockMask:
    def __init__(self, spec: BlockMaskSpec, grid_hw: tuple[int, int]):
        self.spec = spec
        self.grid_hw = grid_hw

    def block_size(self, generator: Optional[torch.Generator]) -> tuple[int, int]:
        H, W = self.grid_hw
        lo, hi = self.spec.aspect_ratio
        u = torch.rand((), generator=generator).item()
        aspect = math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))
        area = self.spec.spatial_scale * H * W
        h = min(H, max(1, round(math.sqrt(area * aspect))))
        w = min(W, max(1, round(math.sqrt(area / aspect))))
        return h, w

    def masked_map(self, batch: int, h: int, w: int, generator: Optional[torch.Generator]) -> torch.Tensor:
        """(batch, H*W) bool: True where any of the blocks covers the position."""
        H, W = self.grid_hw
        n = self.spec.num_blocks
        top = torch.randint(0, H - h + 1, (batch, n, 1), generator=generator)
        left = torch.randint(0, W - w + 1, (batch, n, 1), generator=generator)
        rows = torch.arange(H)
        cols = torch.arange(W)
        in_rows = (rows >= top) & (rows < top + h)  # (batch, n, H)
        in_cols = (cols >= left) & (cols < left + w)  # (batch, n, W)
        return (in_rows[..., :, None] & in_cols[..., None, :]).any(dim=1).flatten(1)

    def __call__(self, batch: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        h, w = self.block_size(generator)
        masked = self.masked_map(batch, h, w, generator)
        for _ in range(MAX_RESAMPLES):  # a sample with nothing visible gets new block positions
            empty = masked.all(dim=1)
            if not empty.any():
                break
            masked[empty] = self.masked_map(int(empty.sum()), h, w, generator)
        else:
            raise RuntimeError(
                f"multi-block mask {self.spec} covers the whole {self.grid_hw} grid; lower spatial_scale or num_blocks"
            )
        return truncate_to_batch_min(~masked, generator)


class TubeMask:
    def __init__(self, ratio: float, grid_hw: tuple[int, int]):
        self.num_visible = max(1, round((1 - ratio) * grid_hw[0] * grid_hw[1]))
        self.grid_hw = grid_hw

    def __call__(self, batch: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        P = self.grid_hw[0] * self.grid_hw[1]
        scores = torch.rand(batch, P, generator=generator)
        return scores.topk(self.num_visible, dim=1).indices.sort(dim=1).values


def truncate_to_batch_min(visible: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
    """(B, P) bool -> (B, K) sorted indices, K = min visible count, a random subset per sample."""
    k = int(visible.sum(dim=1).min())
    scores = torch.rand(visible.shape, generator=generator).masked_fill(~visible, 2.0)
    return scores.topk(k, dim=1, largest=False).indices.sort(dim=1).values


def build_mask_views(cfg: MaskingConfig, grid_hw: tuple[int, int]) -> list[MaskFn]:
    """One generator per mask view; an empty list means the encoder sees the whole clip."""
    if cfg.kind == "none":
        return []
    if cfg.kind == "tube":
        return [TubeMask(cfg.tube_ratio, grid_hw)]
    return [MultiBlockMask(spec, grid_hw) for spec in cfg.generators]


def complement(keep: torch.Tensor, num_positions: int) -> torch.Tensor:
    """(B, K) visible indices -> (B, P - K) sorted masked indices."""
    visible = torch.zeros(keep.shape[0], num_positions, dtype=torch.bool, device=keep.device)
    visible.scatter_(1, keep, True)
    return (~visible).nonzero()[:, 1].view(keep.shape[0], num_positions - keep.shape[1])


class MaskSampler:
    """All mask views of a rank's batch as a pure function of (seed, step, rank): masks are vectorised
    and cheap, so they are drawn in the training loop rather than in loader workers, and a resumed run
    draws exactly the masks the uninterrupted run would have drawn.

    `truncation: device` draws each rank's share on its own (truncated to the rank's minimum), with a
    generator of (seed, step, rank); `global` draws the global batch from (seed, step), truncated to
    its minimum, and slices the rank's rows, so any number of ranks sees what one process sees.
    Rank 0 of a device-truncated run and every global-truncated run share the generator of (seed, step)."""

    def __init__(self, cfg: MaskingConfig, grid_hw: tuple[int, int], seed: int = 0):
        self.views = build_mask_views(cfg, grid_hw)
        self.truncation = cfg.truncation
        self.seed = seed

    def __call__(self, batch: int, step: int, rank: int = 0, world: int = 1) -> list[torch.Tensor]:
        """The masks of rank `rank`'s `batch // world` rows of a global batch of `batch` at `step`."""
        if batch % world:
            raise ValueError(f"batch size {batch} is not divisible by the {world} ranks")
        per_rank = batch // world
        if self.truncation == "device":
            generator = self._generator(step, rank)
            return [view(per_rank, generator) for view in self.views]
        generator = self._generator(step, 0)
        return [view(batch, generator)[rank * per_rank : (rank + 1) * per_rank] for view in self.views]

    def _generator(self, step: int, rank: int) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1_000_003 + step + rank * 2**40)
