"""Which clips each rank reads at each step, from the schedule alone: the global sample indices
`samples_before(step) + i`, split evenly across ranks. A resumed run, or one on another number of
ranks, therefore reads exactly the global batches an uninterrupted one-rank run reads.
"""

from __future__ import annotations

from typing import Iterator

from torch.utils.data import Sampler

from nextvid.config import Config
from nextvid.train.schedule import plan, samples_before


class StepBatchSampler(Sampler[list[int]]):
    """The global sample indices of this rank's share of each step's batch, steps [begin, end)."""

    def __init__(self, cfg: Config, begin: int, end: int, rank: int, world: int):
        self.cfg, self.begin, self.end, self.rank, self.world = cfg, begin, end, rank, world

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.begin, self.end):
            per_rank = rank_batch(plan(self.cfg.schedule, step).batch_size, self.world)
            first = samples_before(self.cfg.schedule, step) + self.rank * per_rank
            yield list(range(first, first + per_rank))

    def __len__(self) -> int:
        return self.end - self.begin


def rank_batch(global_batch: int, world: int) -> int:
    if global_batch % world:
        raise ValueError(f"batch size {global_batch} is not divisible by the {world} ranks")
    return global_batch // world
