"""Generation targets h_1, one vector per encoder token so a target token covers the same
tubelet x patch x patch cube as the encoder token at that position [paper Table 3; layout ours].

`PixelTarget`: the tubelet's pixels in [-1, 1] (C_t = tubelet * patch^2 * 3).
`VaeTarget`: a frozen image VAE (local diffusers `AutoencoderKL` directory) applied per frame, latents
normalised per channel with dataset statistics; a token stacks its frames' latent patches on channels
(VA-VAE f16d32 with 2x16x16 tubelets gives C_t = 64).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from einops import rearrange
from torch import nn

from nextvid.config import Config, ConfigError


class PixelTarget(nn.Module):
    def __init__(self, tubelet: int, patch: int, channels: int = 3):
        super().__init__()
        self.tubelet, self.patch, self.channels = tubelet, patch, channels
        self.dim = tubelet * patch * patch * channels

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, T', H'*W', C_t)."""
        return rearrange(
            video, "b c (t pt) (h ph) (w pw) -> b t (h w) (pt ph pw c)", pt=self.tubelet, ph=self.patch, pw=self.patch
        )

    def to_video(self, tokens: torch.Tensor, grid_hw: tuple[int, int]) -> torch.Tensor:
        """Inverse of forward: (B, T', H'*W', C_t) -> (B, C, T, H, W) (for figures)."""
        return rearrange(
            tokens,
            "b t (h w) (pt ph pw c) -> b c (t pt) (h ph) (w pw)",
            h=grid_hw[0],
            pt=self.tubelet,
            ph=self.patch,
            pw=self.patch,
            c=self.channels,
        )


class VaeTarget(nn.Module):
    """Frozen VAE latents (the distribution's mean: deterministic targets), normalised per channel."""

    def __init__(
        self, vae: nn.Module, mean: torch.Tensor, std: torch.Tensor, tubelet: int, patch: int, downsample: int
    ):
        super().__init__()
        if patch % downsample:
            raise ConfigError(f"target.latent_downsample: {downsample} does not divide the patch size {patch}")
        self.vae = vae.eval().requires_grad_(False)
        self.register_buffer("mean", mean.float().view(1, -1, 1, 1, 1), persistent=False)
        self.register_buffer("std", std.float().view(1, -1, 1, 1, 1), persistent=False)
        self.latent = PixelTarget(tubelet, patch // downsample, channels=mean.numel())
        self.dim = self.latent.dim

    def train(self, mode: bool = True):
        super().train(mode)
        self.vae.eval()  # frozen: never in training mode
        return self

    @torch.no_grad()
    def encode_frames(self, video: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) in [-1, 1] -> normalised latents (B, C_l, T, H/f, W/f)."""
        B, _, T = video.shape[:3]
        frames = rearrange(video, "b c t h w -> (b t) c h w")
        latents = self.vae.encode(frames).latent_dist.mean
        latents = rearrange(latents, "(b t) c h w -> b c t h w", b=B, t=T)
        return (latents - self.mean) / self.std

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.latent(self.encode_frames(video))

    @torch.no_grad()
    def to_video(self, tokens: torch.Tensor, grid_hw: tuple[int, int]) -> torch.Tensor:
        latents = self.latent.to_video(tokens, grid_hw) * self.std + self.mean
        B, _, T = latents.shape[:3]
        frames = self.vae.decode(rearrange(latents, "b c t h w -> (b t) c h w")).sample
        return rearrange(frames, "(b t) c h w -> b c t h w", b=B, t=T).clamp(-1, 1)


def load_vae_target(cfg: Config) -> VaeTarget:
    """Load a diffusers AutoencoderKL from a local directory (nothing is downloaded) and its latent stats."""
    try:
        from diffusers import AutoencoderKL
    except ImportError as err:
        raise ConfigError(
            "target.kind: vae needs the optional dependency diffusers (pip install 'nextvid[vae]')"
        ) from err
    path = Path(cfg.target.vae_path)
    if not (path / "config.json").is_file():
        raise ConfigError(f"target.vae_path: {path} is not a diffusers AutoencoderKL directory (no config.json)")
    vae = AutoencoderKL.from_pretrained(path, local_files_only=True)
    channels = vae.config.latent_channels
    downsample = 2 ** (len(vae.config.block_out_channels) - 1)
    if channels != cfg.target.latent_channels or downsample != cfg.target.latent_downsample:
        raise ConfigError(
            f"target: the VAE at {path} has {channels} latent channels and downsamples {downsample}x, "
            f"the config says {cfg.target.latent_channels} and {cfg.target.latent_downsample}x"
        )
    stats = json.loads(Path(cfg.target.vae_stats).read_text())
    mean, std = torch.tensor(stats["mean"]), torch.tensor(stats["std"])
    if mean.numel() != channels or std.numel() != channels:
        raise ConfigError(f"target.vae_stats: expected {channels} per-channel values in 'mean' and 'std'")
    enc = cfg.model.encoder
    return VaeTarget(vae, mean, std, enc.tubelet, enc.patch_size, downsample)


def build_target(cfg: Config) -> nn.Module:
    enc = cfg.model.encoder
    if cfg.target.kind == "pixels":
        return PixelTarget(enc.tubelet, enc.patch_size, enc.in_chans)
    return load_vae_target(cfg)


def target_dim(cfg: Config) -> int:
    """C_t from the config alone (to size the decoder without loading a VAE, e.g. for `describe`)."""
    enc = cfg.model.encoder
    if cfg.target.kind == "pixels":
        return enc.tubelet * enc.patch_size**2 * enc.in_chans
    return enc.tubelet * (enc.patch_size // cfg.target.latent_downsample) ** 2 * cfg.target.latent_channels
