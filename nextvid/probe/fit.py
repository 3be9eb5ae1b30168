"""Train a grid of probe heads over frozen features and evaluate them exactly.

Two copies of the (lr, wd) grid train on the same minibatches in one pass: the *full* heads on the
whole training split, the *selection* heads on it minus a stratified held-out part (their loss
ignores held-out rows). Reported: the best full head on val (the V-JEPA 2 convention the paper
follows: hyper-parameters picked on the evaluation split) and the full head whose (lr, wd) the
selection heads rank best on the held-out part (no val information used).

Evaluation is deterministic and exact: every sample is predicted once (an error otherwise), softmax
probabilities are averaged over its views, accuracies are means over samples (not over batches).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Iterator, Optional, Protocol, Sequence

import torch
import torch.nn.functional as F

from nextvid.probe.features import FeatureStore
from nextvid.probe.heads import ProbeGrid, lr_factor, make_optimizer
from nextvid.probe.protocol import ProbeProtocol
from nextvid.progress import Progress
from nextvid.provenance import mix_seed

log = logging.getLogger(__name__)


class TrainFeatures(Protocol):
    cached: bool
    prepared: bool  # batches are already ProbeGrid.normalize'd

    def epoch(
        self, epoch: int, batches: list[list[int]]
    ) -> Iterator[Optional[tuple[torch.Tensor, torch.Tensor, list[int]]]]:
        """Per batch of positions, in order: (features, labels, positions) of its good samples, or
        None when none of them could be read."""
        ...


def holdout_split(labels: Sequence[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(rest, held-out) positions: per class, round(fraction * count) samples (at least one of a
    class with two or more) drawn with a seeded permutation. Depends only on the training labels
    and the seed."""
    if fraction == 0:
        return list(range(len(labels))), []
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed)).tolist()
    by_class: dict[int, list[int]] = {}
    for pos in order:
        by_class.setdefault(int(labels[pos]), []).append(pos)
    take = {c: max(1 if len(m) >= 2 else 0, round(fraction * len(m))) for c, m in by_class.items()}
    held = sorted(p for c, members in by_class.items() for p in members[: take[c]])
    held_set = set(held)
    return [p for p in range(len(labels)) if p not in held_set], held


def minibatches(rows: Sequence[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """A seeded shuffle of the rows per epoch, cut into batches (the last one may be smaller)."""
    perm = torch.randperm(len(rows), generator=torch.Generator().manual_seed(mix_seed(seed, epoch))).tolist()
    order = [rows[i] for i in perm]
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@dataclass
class TrainedGrid:
    grid: ProbeGrid
    pairs: list[tuple[float, float]]  # the grid's (lr, wd), once
    has_selection: bool  # heads len(pairs).. 2*len(pairs)-1 are the selection copies
    final_loss: list[float]  # mean training loss of the last epoch, per head


def train_grid(
    features: TrainFeatures,
    labels: Sequence[int],
    heldout: Sequence[int],
    protocol: ProbeProtocol,
    dim: int,
    num_classes: int,
    device: torch.device,
    bf16: bool,
) -> TrainedGrid:
    """The head grid over `features`; `bf16`: autocast, the protocol's precision as resolved."""
    pairs = protocol.grid.pairs()
    has_selection = len(heldout) > 0
    grid = ProbeGrid(
        dim, num_classes, protocol.heads, protocol.mlp_ratio, len(pairs) * (2 if has_selection else 1), protocol.seed
    ).to(device)
    optimizer = make_optimizer(grid, pairs * (2 if has_selection else 1), protocol.betas)
    excluded = torch.zeros(len(labels), dtype=torch.bool)
    excluded[list(heldout)] = True
    steps_per_epoch = math.ceil(len(labels) / protocol.batch_size)
    total, warmup = protocol.epochs * steps_per_epoch, round(protocol.warmup_epochs * steps_per_epoch)
    step, rows = 0, list(range(len(labels)))
    progress = Progress(total, f"probe heads ({len(grid)})", "steps")
    for epoch in range(protocol.epochs):
        batches = minibatches(rows, protocol.batch_size, protocol.seed, epoch)
        loss_sum, seen = torch.zeros(len(grid), device=device), 0
        for item in features.epoch(epoch, batches):  # skipped samples have dropped out of their batch
            if item is None:  # every sample of the batch was bad: the step passes without an update
                step += 1
                continue
            feats, y, batch = item
            for group in optimizer.param_groups:
                group["lr"] = group["base_lr"] * lr_factor(step, total, warmup, protocol.lr_schedule)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = grid(feats.to(device), normalized=features.prepared).float()  # (G, B, C)
            y = y.to(device)
            per_sample = F.cross_entropy(logits.flatten(0, 1), y.repeat(len(grid)), reduction="none").view(
                len(grid), -1
            )
            weight = torch.ones_like(per_sample)
            if has_selection:
                weight[len(pairs) :, excluded[batch].to(device)] = 0.0
            per_head = (per_sample * weight).sum(1) / weight.sum(1).clamp(min=1.0)
            optimizer.zero_grad(set_to_none=True)
            per_head.sum().backward()  # heads share no parameters: each gets its own loss's gradient
            optimizer.step()
            loss_sum += per_head.detach() * len(batch)
            seen += len(batch)
            step += 1
            progress.update(step, f"epoch {epoch + 1}/{protocol.epochs}")
        epoch_loss = (loss_sum / max(seen, 1)).tolist()
        log.info(
            "epoch %d/%d: training loss of the full heads min %.4f max %.4f",
            epoch + 1,
            protocol.epochs,
            min(epoch_loss[: len(pairs)]),
            max(epoch_loss[: len(pairs)]),
        )
    progress.close()
    return TrainedGrid(grid.eval(), pairs, has_selection, epoch_loss)


@torch.no_grad()
def predict(
    grid: ProbeGrid, store: FeatureStore, rows: Sequence[int], batch_size: int, device: torch.device, bf16: bool = False
) -> torch.Tensor:
    """(G, len(rows), C) class probabilities, averaged over each sample's views, in `rows` order."""
    if len(set(rows)) != len(rows):
        raise ValueError("predict: a sample is listed twice")
    out, filled = None, torch.zeros(len(rows), dtype=torch.int64)
    for start in range(0, len(rows), batch_size):
        chunk = list(rows[start : start + batch_size])
        feats, _ = store.read(chunk)  # (B, V, L, D)
        B, V = feats.shape[:2]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = grid(feats.flatten(0, 1).to(device))
        probs = torch.softmax(logits.float(), dim=-1)
        probs = probs.view(len(grid), B, V, -1).mean(dim=2).cpu()
        if out is None:
            out = torch.zeros(len(grid), len(rows), probs.shape[-1])
        out[:, start : start + B] = probs
        filled[start : start + B] += 1
    if out is None or not torch.all(filled == 1):
        raise RuntimeError("predict: not every sample was predicted exactly once")
    return out


def scores(probs: torch.Tensor, labels: torch.Tensor) -> dict[str, list[float]]:
    """Per head: top-1 and top-5 (%, per-sample means) and the mean negative log-likelihood."""
    labels = labels.to(probs.device)
    ranked = probs.argsort(dim=-1, descending=True, stable=True)
    hit = ranked == labels[None, :, None]
    nll = -probs.gather(-1, labels[None, :, None].expand(probs.shape[0], -1, 1)).clamp(min=1e-12).log()
    out = {"top1": (hit[..., 0].double().mean(1) * 100).tolist(), "nll": nll.double().mean((1, 2)).tolist()}
    if probs.shape[-1] > 10:
        out["top5"] = (hit[..., :5].any(-1).double().mean(1) * 100).tolist()
    return out


def select(
    trained: TrainedGrid, val: dict[str, list[float]], heldout: dict[str, list[float]] | None
) -> dict[str, dict]:
    """The two labelled selection rules over the full heads (ties: grid order; held-out ties: NLL)."""
    n = len(trained.pairs)
    best = max(range(n), key=lambda g: (val["top1"][g], -g))
    rules = {
        "best_on_val": _rule(
            trained,
            best,
            val,
            "max over heads of val top-1 (V-JEPA 2 / paper convention: hyper-parameters selected on val)",
        )
    }
    if heldout is not None:
        chosen = min(range(n), key=lambda g: (-heldout["top1"][n + g], heldout["nll"][n + g], g))
        rule = _rule(
            trained,
            chosen,
            val,
            "(lr, wd) ranked by held-out top-1 of heads trained without the held-out part; reported: the full head with that (lr, wd)",
        )
        rule.update(heldout_top1=heldout["top1"][n + chosen], heldout_nll=heldout["nll"][n + chosen])
        rules["heldout_selected"] = rule
    return rules


def _rule(trained: TrainedGrid, g: int, val: dict[str, list[float]], text: str) -> dict:
    lr, wd = trained.pairs[g]
    return {"rule": text, "head": g, "lr": lr, "weight_decay": wd, **{k: v[g] for k, v in val.items()}}
