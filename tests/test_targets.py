"""Generation targets: pixel tubelets invert exactly and line up with the encoder's tokens; a local
diffusers VAE loads through the config, gives C_t = tubelet * (patch / f)^2 * channels normalised
latents, and mismatches are config errors."""

from __future__ import annotations

import json

import pytest
import torch

from nextvid.config import ConfigError, EncoderConfig, merge
from nextvid.models.encoder import TubeletEmbed
from nextvid.models.targets import PixelTarget, VaeTarget, build_target, load_vae_target, target_dim
from nextvid.presets import get_preset

pytestmark = pytest.mark.usefixtures("single_thread")  # see conftest.py


def test_pixel_target_round_trip_on_a_non_square_clip():
    target = PixelTarget(tubelet=2, patch=16)
    x = torch.rand(2, 3, 6, 32, 48) * 2 - 1
    tokens = target(x)
    assert tokens.shape == (2, 3, 2 * 3, 1536) and target.dim == 1536
    assert torch.equal(target.to_video(tokens, (2, 3)), x)
    # token (t, p = h * W' + w) is the tubelet cube at (t, h, w), channels last within each pixel
    t, h, w = 1, 1, 2
    cube = x[:, :, 2 * t : 2 * t + 2, 16 * h : 16 * h + 16, 16 * w : 16 * w + 16]  # (B, C, 2, 16, 16)
    assert torch.equal(tokens[:, t, h * 3 + w], cube.permute(0, 2, 3, 4, 1).reshape(2, -1))


def test_pixel_tokens_line_up_with_encoder_tokens():
    """The encoder token and the target token at the same (t, p) cover the same cube."""
    embed = TubeletEmbed(EncoderConfig(image_size=48, frames=4, width=8, depth=1, heads=2))
    target = PixelTarget(2, 16)
    for t, p in [(0, 0), (1, 5), (0, 7)]:
        x = torch.zeros(1, 3, 4, 48, 48)
        h, w = divmod(p, 3)
        x[:, :, 2 * t : 2 * t + 2, 16 * h : 16 * h + 16, 16 * w : 16 * w + 16] = torch.rand(1, 3, 2, 16, 16) + 0.5
        with torch.no_grad():
            emb = embed(x) - embed(torch.zeros_like(x))  # (1, T', P, D): only the lit token moves
        lit_emb = emb.abs().sum(-1)[0] > 0
        lit_tgt = target(x).abs().sum(-1)[0] > 0
        assert lit_emb.nonzero().tolist() == lit_tgt.nonzero().tolist() == [[t, p]]


def test_target_dim_from_config():
    assert target_dim(get_preset("vit_l")) == 2 * 16 * 16 * 3
    va_vae = merge(get_preset("vit_l"), {"target": {"kind": "vae", "vae_path": "x", "vae_stats": "y"}})
    assert target_dim(va_vae) == 64  # VA-VAE f16d32: 2 frames x 1 x 1 latent patch x 32 channels
    f8 = merge(va_vae, {"target": {"latent_channels": 4, "latent_downsample": 8}})
    assert target_dim(f8) == 2 * 2 * 2 * 4
    assert isinstance(build_target(get_preset("nano")), PixelTarget)


def test_vae_target_loads_from_a_local_directory(tiny_vae):
    cfg = merge(get_preset("nano"), tiny_vae)
    target = build_target(cfg)
    assert isinstance(target, VaeTarget)
    # C_t = tubelet * (patch / f)^2 * channels = 2 * 8^2 * 4
    assert target.dim == target_dim(cfg) == 2 * (16 // 2) ** 2 * 4 == 512
    assert not any(p.requires_grad for p in target.parameters())
    target.train()
    assert not target.vae.training  # frozen: never in training mode
    video = torch.rand(2, 3, 6, 64, 64) * 2 - 1
    tokens = target(video)
    assert tokens.shape == (2, 3, 16, 512)
    # latents are the VAE's posterior mean, normalised per channel with the stats file
    stats = json.loads(open(cfg.target.vae_stats).read())
    with torch.no_grad():
        raw = target.vae.encode(video[:, :, 3]).latent_dist.mean  # frame 3: second frame of token-frame 1
    norm = (raw - torch.tensor(stats["mean"]).view(1, -1, 1, 1)) / torch.tensor(stats["std"]).view(1, -1, 1, 1)
    # token (1, p = h * 4 + w) holds frames 2, 3 of the 8x8 latent patch at (h, w), (pt ph pw c) order
    h, w = 2, 1
    per_token = tokens[:, 1, h * 4 + w].view(2, 2, 8, 8, 4)[:, 1]  # frame 3
    torch.testing.assert_close(per_token, norm[:, :, 8 * h : 8 * h + 8, 8 * w : 8 * w + 8].permute(0, 2, 3, 1))
    assert target.to_video(tokens, (4, 4)).shape == video.shape


def test_vae_mismatches_are_config_errors(tiny_vae, tmp_path):
    base = merge(get_preset("nano"), tiny_vae)
    with pytest.raises(ConfigError, match="latent channels"):
        load_vae_target(merge(base, {"target": {"latent_channels": 32}}))
    with pytest.raises(ConfigError, match="downsamples"):
        load_vae_target(merge(base, {"target": {"latent_downsample": 4}}))
    bad_stats = tmp_path / "stats.json"
    bad_stats.write_text(json.dumps({"mean": [0.0] * 3, "std": [1.0] * 3}))
    with pytest.raises(ConfigError, match="target.vae_stats"):
        load_vae_target(merge(base, {"target": {"vae_stats": str(bad_stats)}}))
    with pytest.raises(ConfigError, match="target.vae_path"):
        load_vae_target(merge(base, {"target": {"vae_path": str(tmp_path)}}))
