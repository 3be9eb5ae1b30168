"""The four-stage pretraining schedule [paper Table 8] as pure functions of the global step.

Stage lengths are the paper's relative lengths rescaled to `total_steps`; the LR is linear within each
stage [ours], times `lr_scale` [ours]; the decoder's LR follows the main LR until a stage fixes it;
tau draws, frames and batch size are per stage. Nothing here has state, so a resumed run needs no replay. A run may stop early
(`stop_at`, the paper's ablation protocol): every step it takes has the plan of the full schedule.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from functools import lru_cache

from nextvid.config import Config, ScheduleConfig


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


def kept_steps(cfg: Config) -> list[int]:
    """The steps whose checkpoints a run keeps (and the workflow probes): `train.keep_steps` and the
    step the run ends at."""
    return sorted(set(cfg.train.keep_steps) | {cfg.schedule.end_step})


def plan(sched: ScheduleConfig, step: int) -> StepPlan:
    if not 0 <= step < sched.total_steps:
        raise ValueError(f"step {step} is outside the schedule [0, {sched.total_steps})")
    ends = stage_ends(sched)
    i = bisect.bisect_right(ends, step)
    stage = sched.stages[i]
    begin = ends[i - 1] if i else 0
    frac = (step - begin) / max(1, ends[i] - begin - 1)  # lr_end is reached on the stage's last step
    lr = (stage.lr_start + (stage.lr_end - stage.lr_start) * frac) * sched.lr_scale
    return StepPlan(
        step=step,
        stage=stage.name,
        stage_index=i,
        lr=lr,
        decoder_lr=lr if stage.decoder_lr is None else stage.decoder_lr * sched.lr_scale,
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


def describe_run(sched: ScheduleConfig) -> list[dict]:
    """The stages a run goes through, each cut at the run's end: steps [begin, end), the LR at its
    first and last step, the decoder LR, tau draws, frames and batch (what `nextvid config --schedule`
    prints; an early-stopped run shows the full schedule's values up to its stop)."""
    stop, rows, begin = sched.end_step, [], 0
    for i, end in enumerate(stage_ends(sched)):
        last = min(end, stop) - 1
        if begin > last:
            break
        first, final = plan(sched, begin), plan(sched, last)
        decoder = "= main" if sched.stages[i].decoder_lr is None else f"{final.decoder_lr:g}"
        rows.append(
            {
                "stage": first.stage,
                "steps": f"[{begin}, {last + 1})",
                "lr": f"{first.lr:.4g} -> {final.lr:.4g}",
                "decoder_lr": decoder,
                "tau_draws": first.tau_draws,
                "frames": first.frames,
                "batch": first.batch_size,
            }
        )
        begin = end
    return rows
