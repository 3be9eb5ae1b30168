"""Reconstruction quality and latent statistics of a trained VAE.

Reconstruction is what the generation target uses: the posterior mean (VaeTarget.encode_frames),
decoded and clamped to [-1, 1] (VaeTarget.to_video). PSNR is per frame with the peak-to-peak range 2
of [-1, 1] (the same number as for [0, 255] frames), averaged over frames. The reference in the same
run is a bilinear down-and-up-sampling by the VAE's own factor (antialiased), which keeps 3 values
per latent position where the VAE keeps `latent_channels`: a VAE that does not beat it has learned
nothing a resize does not do.
"""

from __future__ import annotations

from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn


@torch.no_grad()
def reconstruct(vae: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return vae.decode(vae.encode(x).latent_dist.mean).sample.clamp(-1, 1)


def down_up(x: torch.Tensor, factor: int) -> torch.Tensor:
    small = F.interpolate(x, scale_factor=1 / factor, mode="bilinear", antialias=True, align_corners=False)
    return F.interpolate(small, size=x.shape[-2:], mode="bilinear", align_corners=False).clamp(-1, 1)


def frame_mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) x 2 -> (N,) mean squared error per frame."""
    return (x.double() - y.double()).square().flatten(1).mean(1)


def psnr(mse: torch.Tensor, peak_to_peak: float = 2.0) -> torch.Tensor:
    return 10 * torch.log10(peak_to_peak**2 / mse.clamp_min(1e-12))


class Tally:
    """Per-frame MSE and PSNR, summed; `summary()` averages over frames."""

    def __init__(self) -> None:
        self.frames, self.mse, self.psnr = 0, 0.0, 0.0

    def add(self, mse: torch.Tensor) -> None:
        self.frames += mse.numel()
        self.mse += float(mse.sum())
        self.psnr += float(psnr(mse).sum())

    def summary(self) -> dict:
        n = max(self.frames, 1)
        return {"frames": self.frames, "mse": self.mse / n, "psnr_db": self.psnr / n}


@torch.no_grad()
def reconstruction_quality(vae: nn.Module, batches: Iterable[torch.Tensor], factor: int) -> dict:
    """{"vae": {frames, mse, psnr_db}, "bilinear_down_up": {...}} over the frames of `batches`."""
    ours, ref = Tally(), Tally()
    for x in batches:
        ours.add(frame_mse(reconstruct(vae, x), x))
        ref.add(frame_mse(down_up(x, factor), x))
    return {"vae": ours.summary(), "bilinear_down_up": ref.summary()}


@torch.no_grad()
def latent_stats(vae: nn.Module, batches: Iterable[torch.Tensor]) -> dict:
    """Per-channel mean and std of the posterior mean (what VaeTarget normalises) over every latent
    position of the frames of `batches`; accumulated in float64."""
    total = sq = None
    count, frames = 0, 0
    for x in batches:
        z = vae.encode(x).latent_dist.mean.double()
        s, s2 = z.sum(dim=(0, 2, 3)), z.square().sum(dim=(0, 2, 3))
        total, sq = (s, s2) if total is None else (total + s, sq + s2)
        count += z.shape[0] * z.shape[2] * z.shape[3]
        frames += z.shape[0]
    if total is None:
        raise ValueError("no frames to compute latent statistics from")
    mean = total / count
    std = (sq / count - mean.square()).clamp_min(0).sqrt().clamp_min(1e-6)
    return {"mean": mean.tolist(), "std": std.tolist(), "frames": frames, "positions": count}
