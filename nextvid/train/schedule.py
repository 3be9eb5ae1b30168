"""The four-stage pretraining schedule [paper Table 8] as pure functions of the global step.

Stage lengths are the paper's relative lengths rescaled to `total_steps`; the LR is linear within each
stage [ours]; the decoder's LR follows the main LR until a stage fixes it; tau draws, frames and batch
size are per stage. Nothing here has state, so a resumed run needs no replay.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from functools import lru_cache

from nextvid.config import ScheduleConfig


@dataclass(frozen=True)
class StepPlan:
    step: int
    stage: str
    stage_index: int
    lr: float
    decoder_lr: float
    tau_draws: int
    frames: int
    batch_size: int
    micro_batch: int = 0  # clips per GPU per forward/backward; 0: the whole per-GPU batch


@lru_cache(maxsize=64)
def stage_ends(sched: ScheduleConfig) -> tuple[int, ...]:
    """Exclusive end step of every stage; the last is total_steps and every stage has >= 1 step."""
    total_rel = sum(s.steps for s in sched.stages)
    ends, acc = [], 0
    for i, stage in enumerate(sched.stages):
        acc += stage.steps
        end = round(acc * sched.total_steps / total_rel)
        floor = (ends[-1] if ends else 0) + 1
        ceiling = sched.total_steps - (len(sched.stages) - 1 - i)
        ends.append(min(max(end, floor), ceiling))
    return tuple(ends)


def plan(sched: ScheduleConfig, step: int) -> StepPlan:
    if not 0 <= step < sched.total_steps:
        raise ValueError(f"step {step} is outside the schedule [0, {sched.total_steps})")
    ends = stage_ends(sched)
    i = bisect.bisect_right(ends, step)
    stage = sched.stages[i]
    begin = ends[i - 1] if i else 0
    frac = (step - begin) / max(1, ends[i] - begin - 1)  # lr_end is reached on the stage's last step
    lr = stage.lr_start + (stage.lr_end - stage.lr_start) * frac
    return StepPlan(
        step=step,
        stage=stage.name,
        stage_index=i,
        lr=lr,
        decoder_lr=lr if stage.decoder_lr is None else stage.decoder_lr,
        tau_draws=stage.tau_draws,
        frames=stage.frames,
        batch_size=stage.batch_size,
        micro_batch=stage.micro_batch,
    )


def samples_before(sched: ScheduleConfig, step: int) -> int:
    """Global clips consumed by steps [0, step): the data position of a checkpoint taken at `step`."""
    ends = stage_ends(sched)
    seen, begin = 0, 0
    for stage, end in zip(sched.stages, ends):
        seen += stage.batch_size * max(0, min(step, end) - begin)
        begin = end
    return seen
