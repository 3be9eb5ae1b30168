"""One optimisation step, apart from the loop that feeds it: the trainer and the benchmarks (`nextvid
bench train`, `bench gpu`) time and run exactly this function, so what they measure is what trains.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch.nn.parallel import DistributedDataParallel

from nextvid.config import Config
from nextvid.models.nextvid import PretrainModel
from nextvid.train import precision as precisions
from nextvid.train.schedule import StepPlan


class NonFiniteLossError(RuntimeError):
    """Training produced NaN/inf; the run stops and keeps its last good checkpoint."""


@dataclass
class StepResult:
    values: dict[str, float]
    grad_norm: float
    features: Optional[torch.Tensor]


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    video: torch.Tensor,
    masks: list[torch.Tensor],
    step_plan: StepPlan,
    cfg: Config,
    noise_seeds: list[int],
    targets: Optional[torch.Tensor] = None,
    check_finite: Callable[[torch.Tensor], bool] = lambda loss: bool(torch.isfinite(loss)),
    *,
    precision: str,
) -> StepResult:
    """One optimisation step: set LRs, forward (bf16 autocast when `precision`, the run's resolved one, is bf16) and backward of each
    micro-batch, clip, AdamW, EMA. Raises NonFiniteLossError before touching the weights if the loss
    is not finite.

    Micro-batches (`step_plan.micro_batch` clips each) accumulate the gradient of the whole batch's
    loss: every loss term is a mean over samples with equal element counts, so micro-batch i's loss
    weighted by its share of the rows sums to the batch loss. Masks, noise seeds and targets are the
    batch's, sliced; one gradient clip, one optimiser step and one EMA update per step, as without them. DDP
    all-reduces once, on the last micro-batch."""
    for group in optimizer.param_groups:
        group["lr"] = step_plan.decoder_lr if group["lr_group"] == "decoder" else step_plan.lr
    optimizer.zero_grad(set_to_none=True)
    rows = micro_batches(video.shape[0], step_plan.micro_batch)
    totals: dict[str, torch.Tensor] = {}
    contexts = []
    for i, part in enumerate(rows):
        share = (part.stop - part.start) / video.shape[0]
        last = i == len(rows) - 1
        ddp = getattr(model, "_orig_mod", model)  # under torch.compile, the DDP module it wraps
        sync = contextlib.nullcontext() if last or not isinstance(ddp, DistributedDataParallel) else ddp.no_sync()
        with sync:
            with precisions.autocast(video.device, precision):
                out = model(
                    video[part],
                    [m[part] for m in masks],
                    tau_draws=step_plan.tau_draws,
                    targets=None if targets is None else targets[part],
                    noise_seeds=noise_seeds[part],
                )
            (out["loss"] * share).backward()
        for k, v in out.items():
            if v.dim() == 0:
                totals[k] = totals.get(k, 0.0) + v.detach().float() * share
        if "context" in out:
            contexts.append(out["context"])
    loss = totals["loss"]
    if not check_finite(loss):
        raise NonFiniteLossError(
            f"non-finite loss at step {step_plan.step}: {loss.item()} ({', '.join(f'{k}={v.item():.4g}' for k, v in totals.items())})"
        )
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.schedule.grad_clip)
    optimizer.step()
    unwrap(model).update_reference(cfg.objective.ema_momentum)
    values = {k: float(v) for k, v in totals.items()}
    return StepResult(values, float(grad_norm), torch.cat(contexts) if contexts else None)


def micro_batches(rows: int, micro_batch: int) -> list[slice]:
    """Consecutive row ranges of at most `micro_batch` rows (0: one range of all `rows`)."""
    size = micro_batch or rows
    return [slice(start, min(start + size, rows)) for start in range(0, rows, size)]


def unwrap(model: torch.nn.Module) -> PretrainModel:
    """The model under the DDP and torch.compile wrappers."""
    model = getattr(model, "_orig_mod", model)
    return model.module if isinstance(model, DistributedDataParallel) else model
