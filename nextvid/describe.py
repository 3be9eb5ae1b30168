"""Parameter and FLOP counts of a config: what a preset costs before anyone spends GPU hours on it.

FLOPs are counted with `torch.utils.flop_counter` on the meta device (no memory, no compute), for one
training step on one clip at the config's input size: reference encoder forward, every mask view's
encoder + predictor + decoder forward with its tau draws, and the backward pass. Attention is
counted dense (masked-out scores included), as the SDPA kernels compute it.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from nextvid.config import Config
from nextvid.masking import MaskSampler
from nextvid.models.nextvid import build_model


def count_params(module: torch.nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def describe(cfg: Config, tau_draws: int | None = None, seed: int = 0) -> dict:
    stage = cfg.schedule.stages[0]
    tau_draws = stage.tau_draws if tau_draws is None else tau_draws
    enc = cfg.model.encoder
    with torch.device("meta"):
        model = build_model(cfg)
    sampler = MaskSampler(cfg.masking, model.encoder.grid_hw, seed=seed)
    masks = [m.to("meta") for m in sampler(1, step=0)]
    video = torch.empty(1, enc.in_chans, enc.frames, enc.image_size, enc.image_size, device="meta")
    counter = FlopCounterMode(display=False)
    with counter:
        out = model(video, masks, tau_draws=tau_draws)
        out["loss"].backward()
    return {
        "method": cfg.objective.method,
        "input": [enc.frames, enc.image_size, enc.image_size],
        "tokens_per_clip": (enc.frames // enc.tubelet) * (enc.image_size // enc.patch_size) ** 2,
        "visible_tokens_per_view": [int(m.shape[1]) for m in masks],
        "tau_draws": tau_draws,
        "encoder_params": count_params(model.encoder),
        "predictor_params": count_params(getattr(model, "predictor", None)),
        "decoder_params": count_params(getattr(model, "decoder", None)),
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "train_flops_per_clip": int(counter.get_total_flops()),
        # the probe's cost unit: one frozen-encoder forward over the whole clip
        "encoder_forward_flops_per_clip": _encoder_forward_flops(model.encoder, video),
    }


def _encoder_forward_flops(encoder: torch.nn.Module, video: torch.Tensor) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        encoder(video)
    return int(counter.get_total_flops())
