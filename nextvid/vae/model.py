"""The VAE (a diffusers AutoencoderKL, the format `nextvid.models.targets.load_vae_target` loads), its
loss, one optimisation step and the learning-rate schedule."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from nextvid.vae.config import VaeConfig


def build_vae(cfg: VaeConfig) -> nn.Module:
    """A randomly initialised AutoencoderKL; call under a seeded RNG for reproducible weights."""
    from diffusers import AutoencoderKL

    levels = len(cfg.block_out_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        block_out_channels=tuple(cfg.block_out_channels),
        layers_per_block=cfg.layers_per_block,
        latent_channels=cfg.latent_channels,
        norm_num_groups=cfg.norm_num_groups,
        sample_size=cfg.image_size,
        mid_block_add_attention=cfg.mid_block_attention,
        # latents are normalised with the per-channel stats.json by VaeTarget, not by a global scale
        scaling_factor=1.0,
    )


@dataclass(frozen=True)
class LossParts:
    loss: torch.Tensor
    reconstruction: float  # per pixel value (L1 or MSE, as configured)
    kl: float  # per sample, summed over latent elements


def vae_loss(vae: nn.Module, x: torch.Tensor, cfg: VaeConfig, generator: torch.Generator) -> LossParts:
    """Reconstruction of a posterior sample plus `kl_weight` x KL(q(z|x) || N(0, I)). The KL is summed
    per sample and divided by the sample's pixel values, which weighs it against the per-pixel
    reconstruction exactly as LDM weighs a summed KL against a summed pixel loss."""
    posterior = vae.encode(x).latent_dist
    recon = vae.decode(posterior.sample(generator=generator)).sample
    diff = recon - x
    rec = diff.abs().mean() if cfg.loss == "l1" else diff.square().mean()
    kl = posterior.kl().mean()
    loss = rec + cfg.kl_weight * kl / x[0].numel()
    return LossParts(loss, float(rec.detach()), float(kl.detach()))


def lr_at(step: int, cfg: VaeConfig) -> float:
    """Linear warm-up over `warmup_steps`, then a cosine from `lr` to `lr * min_lr_ratio` at the last step."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - 1 - cfg.warmup_steps)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def make_optimizer(vae: nn.Module, cfg: VaeConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(vae.parameters(), lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)


def train_step(
    vae: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, step: int, cfg: VaeConfig, generator: torch.Generator
) -> LossParts:
    for group in opt.param_groups:
        group["lr"] = lr_at(step, cfg)
    parts = vae_loss(vae, x, cfg, generator)
    opt.zero_grad(set_to_none=True)
    parts.loss.backward()
    opt.step()
    return parts
