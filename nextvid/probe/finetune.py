"""`nextvid probe --finetune`: the supervised ceiling of a benchmark. The encoder (a checkpoint's or
a seeded random init) and the protocol's attentive head are trained end to end with labels on the
training split, then evaluated exactly as the frozen probe is (same deterministic val views,
softmax averaged over each sample's views, every sample once, the same selection rules and
metrics.json), so its number sits beside the floors (chance, raw pixels, random init) on equal
terms: docs/benchmarks.md, "Floors and ceilings".

What differs from the frozen probe: no feature cache (the encoder changes every step); one model
per (lr, wd) of the protocol's grid (and one more per pair without the held-out part when
`holdout_fraction` > 0), each from the same initial weights, AdamW on encoder and head with that
(lr, wd), no decay on biases, norms and the query, the protocol's warm-up + cosine schedule, epochs
and batch size. Deterministic training views (no augmentation) are decoded once and kept in RAM
(up to `CLIP_CACHE_BYTES`): decoding, not the encoder, would otherwise dominate an epoch.
The record says `"mode": "finetune"` so that no report mixes it with frozen rows.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from typing import Iterator, Optional, Sequence

import torch
import torch.nn.functional as F
from timm.optim import param_groups_weight_decay
from torch import nn

from nextvid.config import ConfigError
from nextvid.data.datasets import make_loader
from nextvid.probe import fit, metrics_json
from nextvid.probe.encoders import EncoderTokens, TokenSource
from nextvid.probe.features import ClipSet, skip_log
from nextvid.probe.heads import AttentiveProbe, lr_factor
from nextvid.probe.protocol import ProbeProtocol
from nextvid.probe.run import ProbeData, check_clips
from nextvid.progress import Progress
from nextvid.train import precision as precisions

log = logging.getLogger(__name__)

Batch = Optional[tuple[torch.Tensor, torch.Tensor, list[int]]]

CLIP_CACHE_BYTES = 4 << 30  # deterministic clips kept in RAM up to this size (fp32), else decoded every epoch


class Finetuned(nn.Module):
    """A trainable copy of the source's encoder (its chosen layers, its attention mask) + one
    attentive head initialised as the frozen probe's heads are (the protocol's seed)."""

    def __init__(self, source: TokenSource, num_classes: int, protocol: ProbeProtocol):
        super().__init__()
        self.encoder, self.layers, self.causal = trainable_encoder(source)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(protocol.seed)
            self.head = AttentiveProbe(source.dim, num_classes, protocol.heads, protocol.mlp_ratio)

    def tokens(self, clips: torch.Tensor) -> torch.Tensor:
        if self.layers is None:
            return self.encoder(clips)
        _, outputs = self.encoder(clips, causal=self.causal, return_layers=self.layers)
        return torch.cat(outputs, dim=-1)

    def forward(self, video: torch.Tensor, segments: int, views: int) -> torch.Tensor:
        """(B, S*V, C, T, H, W) segment-major -> (B, V, num_classes): per view, the head reads its
        segments' tokens concatenated (as the frozen probe's features are)."""
        B = video.shape[0]
        tokens = self.tokens(video.flatten(0, 1))  # (B*S*V, N, D)
        N, D = tokens.shape[1:]
        tokens = tokens.view(B, segments, views, N, D).transpose(1, 2).reshape(B * views, segments * N, D)
        return self.head(tokens).view(B, views, -1)


def trainable_encoder(source: TokenSource) -> tuple[nn.Module, Optional[list[int]], bool]:
    """(module, layers, causal): a deep copy with gradients on, so the source stays as it was. An
    encoder-free source (raw pixels) has nothing to train: an error."""
    module = source.module
    if isinstance(module, EncoderTokens):
        return copy.deepcopy(module.encoder).train().requires_grad_(True), list(module.layers), module.causal
    if not any(True for _ in module.parameters()):
        raise ConfigError(
            f"--finetune: the {source.kind} token source has no weights to train (raw pixels have no encoder)"
        )
    return copy.deepcopy(module).train().requires_grad_(True), None, False


class Clips:
    """A clip set's batches by position: held in RAM after one decode when `keep` (deterministic
    views), else decoded per call. Bad samples drop out of their batch and are counted (`skips`:
    the first pass's log; every pass is checked against the limit)."""

    def __init__(self, clips: ClipSet, keep: bool, max_bad_fraction: float, name: str, workers: int = 0):
        self.clips, self.keep, self.workers, self.name, self.max_bad = clips, keep, workers, name, max_bad_fraction
        self.skips = None
        self.held: dict[int, tuple[torch.Tensor, int]] = {}
        if keep:
            for item in self._load(clips, [list(range(i, min(i + 32, len(clips)))) for i in range(0, len(clips), 32)]):
                if item is not None:
                    self.held.update({p: (v, int(y)) for v, y, p in zip(*item)})

    def _load(self, clips: ClipSet, batches: list[list[int]]) -> Iterator[Batch]:
        skips = skip_log(clips, self.max_bad, self.name)
        for batch in make_loader(clips, batch_sampler=batches, workers=self.workers):
            if skips.consume(batch) is None:  # raises TooManyBadInputs past the limit
                yield None
                continue
            yield batch["video"], batch["label"], batch["index"].tolist()
        if self.skips is None:
            self.skips = skips

    def batches(self, batches: list[list[int]], clips: Optional[ClipSet] = None) -> Iterator[Batch]:
        """Per batch of positions, in order: (video, labels, positions) of its good samples, or
        None when none could be read. `clips`: another epoch's views of the same set (augmented)."""
        if not self.keep:
            yield from self._load(clips if clips is not None else self.clips, batches)
            return
        for positions in batches:
            kept = [p for p in positions if p in self.held]
            yield (
                (torch.stack([self.held[p][0] for p in kept]), torch.tensor([self.held[p][1] for p in kept]), kept)
                if kept
                else None
            )


def _bytes(clips: ClipSet, protocol: ProbeProtocol, views: int) -> int:
    return len(clips) * protocol.segments * views * 3 * protocol.frames * protocol.resolution**2 * 4


def run_finetune(
    source: TokenSource,
    protocol: ProbeProtocol,
    data: ProbeData,
    out_dir,
    device="cpu",
    workers: int = 0,
    encoder_lr_scale: float = 1.0,
) -> dict:
    """Finetune one model per grid entry, evaluate each on val (and the selection copies on the
    held-out part); returns (and writes) the metrics. The encoder's learning rate is the grid's
    times `encoder_lr_scale` (the head's is the grid's)."""
    if not 0 < encoder_lr_scale <= 1e3:
        raise ConfigError(f"--encoder-lr-scale: {encoder_lr_scale} must be in (0, 1000]")
    device = torch.device(device)
    train0 = data.train_clips(0)
    check_clips(train0, protocol, views=1, name="training")
    check_clips(data.val_clips, protocol, views=protocol.views, name="validation")
    trainable_encoder(source)  # fails early on an encoder-free source
    resolved = precisions.resolve(protocol.precision, device, "the protocol's precision")
    timing: dict[str, float] = {}

    t = time.perf_counter()
    keep_train = not protocol.augment and _bytes(train0, protocol, 1) <= CLIP_CACHE_BYTES
    train = Clips(train0, keep_train, protocol.max_bad_fraction, "train", workers)
    val = Clips(
        data.val_clips,
        _bytes(data.val_clips, protocol, protocol.views) <= CLIP_CACHE_BYTES,
        protocol.max_bad_fraction,
        "val",
        workers,
    )
    _, held = fit.holdout_split(train0.labels, protocol.holdout_fraction, protocol.seed)
    heldout = None
    if held:
        same = not protocol.augment and protocol.views == 1
        if not same and data.heldout_clips is None:
            raise ValueError(
                "the protocol's training views differ from its evaluation views: ProbeData.heldout_clips is required"
            )
        heldout = train if same else Clips(data.heldout_clips, False, protocol.max_bad_fraction, "heldout", workers)
    timing["decode_kept_clips"] = time.perf_counter() - t

    pairs = protocol.grid.pairs()
    runs = [(lr, wd, ()) for lr, wd in pairs] + ([(lr, wd, tuple(held)) for lr, wd in pairs] if held else [])
    val_probs, held_probs, losses, changes, val_rows, held_rows = [], [], [], [], [], []
    t = time.perf_counter()
    for r, (lr, wd, excluded) in enumerate(runs):
        model, loss, change = _train(
            source,
            protocol,
            data,
            train,
            excluded,
            lr,
            wd,
            encoder_lr_scale,
            device,
            resolved,
            f"finetune {r + 1}/{len(runs)} (lr {lr:g})",
        )
        losses.append(loss)
        changes.append(change)
        if excluded:
            probs, held_rows = predict(model, heldout, sorted(excluded), protocol, device, resolved)
            held_probs.append(probs)
        else:
            probs, val_rows = predict(model, val, range(len(data.val_clips)), protocol, device, resolved)
            val_probs.append(probs)
    timing["train_and_evaluate"] = time.perf_counter() - t

    val_scores = fit.scores(torch.stack(val_probs), torch.tensor([data.val_clips.labels[p] for p in val_rows]))
    held_scores = None
    if held:
        pad = torch.stack(
            [torch.zeros_like(held_probs[0])] * len(pairs) + held_probs
        )  # rows n..2n-1: the selection copies
        held_scores = fit.scores(pad, torch.tensor([train0.labels[p] for p in held_rows]))
    trained = fit.TrainedGrid(grid=None, pairs=pairs, has_selection=bool(held), final_loss=losses)
    rules = fit.select(trained, val_scores, held_scores)
    precision = "bf16 autocast" if resolved == "bf16" else "fp32"
    features = {
        "dim": source.dim,
        "device": str(device),
        "encoder_precision": precision,
        "heads_precision": precision,
        "precision": precisions.describe(protocol.precision, resolved, device),
        "train": "none: the encoder is trained (no feature cache)",
    }
    skipped = {"train": train.skips.to_dict(), "val": val.skips.to_dict()}
    record = {
        **data.record,
        "num_train": train.skips.seen - train.skips.bad,
        "num_heldout": len(held_rows),
        "num_val": len(val_rows),
        "num_classes": data.num_classes,
        "skipped": {k: v["bad"] for k, v in skipped.items()},
        "max_bad_fraction": protocol.max_bad_fraction,
    }
    metrics = metrics_json.build_metrics(
        protocol, source.record, record, features, trained, val_scores, held_scores, rules, timing, skipped
    )
    metrics["mode"] = "finetune"
    metrics["finetune"] = {
        "trained": "encoder and attentive head, end to end, with labels",
        "training_clips": "decoded once, kept in RAM" if keep_train else "decoded every epoch",
        "optimizer": "AdamW, one model per (lr, wd), no wd on biases/norms/query, no grad clipping",
        "encoder_lr_scale": encoder_lr_scale,  # the encoder's lr: the grid's lr times this
        "runs": [
            {
                "lr": lr,
                "weight_decay": wd,
                "without_heldout": bool(ex),
                "train_loss": loss,
                "encoder_relative_change": ch,
            }
            for (lr, wd, ex), loss, ch in zip(runs, losses, changes)
        ],
    }
    metrics_json.write_metrics(out_dir, metrics)
    log.info("%s (finetune): %s", protocol.benchmark, {name: round(r["top1"], 2) for name, r in rules.items()})
    return metrics


def _train(
    source, protocol, data, train: Clips, excluded: Sequence[int], lr, wd, encoder_scale, device, precision, label
):
    """One model: (model, mean training loss of its last epoch, relative L2 change of the encoder's weights)."""
    model = Finetuned(source, data.num_classes, protocol).to(device)
    before = torch.cat([p.detach().flatten().clone() for p in model.encoder.parameters()])
    groups = param_groups_weight_decay(model.head, wd, no_weight_decay_list=("query",))
    for group in param_groups_weight_decay(model.encoder, wd):
        group["scale"] = encoder_scale
        groups.append(group)
    optimizer = torch.optim.AdamW(groups, lr=lr, betas=protocol.betas)
    labels = data.train_clips(0).labels
    out = set(excluded)
    rows = [p for p in range(len(labels)) if p not in out]
    steps = math.ceil(len(rows) / protocol.batch_size)
    total, warmup = protocol.epochs * steps, round(protocol.warmup_epochs * steps)
    step, loss_mean = 0, float("nan")
    with Progress(total, label, "steps") as progress:
        for epoch in range(protocol.epochs):
            loss_sum, seen = 0.0, 0
            clips = data.train_clips(epoch) if protocol.augment else None
            for item in train.batches(fit.minibatches(rows, protocol.batch_size, protocol.seed, epoch), clips):
                for group in optimizer.param_groups:
                    group["lr"] = lr * group.get("scale", 1.0) * lr_factor(step, total, warmup, protocol.lr_schedule)
                step += 1
                if item is None:
                    continue
                video, y, _ = item
                with precisions.autocast(device, precision):
                    logits = model(video.to(device), protocol.segments, 1)[:, 0].float()
                loss = F.cross_entropy(logits, y.to(device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum, seen = loss_sum + loss.item() * len(y), seen + len(y)
                progress.update(step)
            loss_mean = loss_sum / max(seen, 1)
    after = torch.cat([p.detach().flatten() for p in model.encoder.parameters()])
    return model, loss_mean, float((after - before).norm() / before.norm().clamp(min=1e-12))


@torch.no_grad()
def predict(
    model: Finetuned, clips: Clips, positions: Sequence[int], protocol: ProbeProtocol, device, precision
) -> tuple[torch.Tensor, list[int]]:
    """(n, C) class probabilities of the good samples among `positions` (softmax averaged over
    their views), in order, and their positions; each sample exactly once."""
    model.eval()
    batches = [list(positions[i : i + protocol.batch_size]) for i in range(0, len(positions), protocol.batch_size)]
    out, done = [], []
    for item in clips.batches(batches):
        if item is None:
            continue
        video, _, kept = item
        with precisions.autocast(device, precision):
            logits = model(video.to(device), protocol.segments, protocol.views).float()
        out.append(torch.softmax(logits, dim=-1).mean(dim=1).cpu())
        done += kept
    if len(set(done)) != len(done) or not out:
        raise RuntimeError("finetune predict: a sample was predicted twice, or none could be read")
    return torch.cat(out), done
