"""What the probe reads tokens from: a checkpoint's frozen encoder (the EMA reference by default, as
V-JEPA-style papers probe, or the online one), a seeded random-init encoder of a preset, or no
encoder at all (raw tubelet pixels): the last two are the reference rows of every table. `convnet`:
a seeded small 3D CNN (nextvid.probe.convnet), for the supervised ceiling.

Every source is a module `clips (n, C, T, H, W) in [-1, 1] -> tokens (n, N, D)` plus a record of
what it is, which goes into metrics.json.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Optional

import torch
from torch import nn

from nextvid.catalog import PROBE_ENCODERS as ENCODERS, random_preset
from nextvid.config import Config, ConfigError, from_dict, merge
from nextvid.models.encoder import Encoder
from nextvid.models.nextvid import build_model
from nextvid.models.targets import PixelTarget
from nextvid.probe.convnet import ConvNetTokens
from nextvid.probe.protocol import ProbeProtocol, layer_indices

log = logging.getLogger(__name__)


class EncoderTokens(nn.Module):
    """The outputs of the chosen blocks (each with the final norm), concatenated on channels."""

    def __init__(self, encoder: Encoder, layers: list[int], causal: bool):
        super().__init__()
        self.encoder = encoder.eval().requires_grad_(False)
        self.layers, self.causal = layers, causal
        self.dim = encoder.width * len(layers)

    @torch.no_grad()
    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        _, outputs = self.encoder(clips, causal=self.causal, return_layers=self.layers)
        return torch.cat(outputs, dim=-1)


class PixelTokens(nn.Module):
    """Encoder-free baseline: each token is its tubelet's pixels, average-pooled `pool` x `pool`."""

    def __init__(self, tubelet: int, patch: int, channels: int, pool: int):
        super().__init__()
        if patch % pool:
            raise ConfigError(f"pixel_pool: {pool} does not divide the patch size {patch}")
        self.pixels = PixelTarget(tubelet, patch // pool, channels)
        self.pool = pool
        self.dim = self.pixels.dim

    @torch.no_grad()
    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        n, c, t, h, w = clips.shape
        pooled = nn.functional.avg_pool3d(clips, (1, self.pool, self.pool)) if self.pool > 1 else clips
        return self.pixels(pooled).flatten(1, 2)


@dataclass
class TokenSource:
    module: nn.Module  # clips -> (n, N, D)
    dim: int
    kind: str  # reference | online | random | pixels | convnet
    tubelet: int
    record: dict[str, Any] = field(default_factory=dict)  # checkpoint, layers, attention mask, ...


def load_token_source(checkpoint: str, which: str, protocol: ProbeProtocol) -> TokenSource:
    """`checkpoint`: a nextvid checkpoint file or `random:PRESET`; `which`: reference | online | pixels
    | convnet (the last two use only the checkpoint's geometry: channels, tubelet)."""
    if which not in ENCODERS:
        raise ConfigError(f"--encoder: {which!r} is not one of {', '.join(ENCODERS)}")
    cfg, state, record = _resolve_checkpoint(checkpoint, protocol)
    enc = cfg.model.encoder
    if which == "pixels":
        module = PixelTokens(enc.tubelet, enc.patch_size, enc.in_chans, protocol.pixel_pool)
        record.update(encoder="pixels", layers=None, attention_mask=None, pixel_pool=protocol.pixel_pool)
        return TokenSource(module, module.dim, "pixels", enc.tubelet, record)
    if which == "convnet":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(protocol.seed)
            module = ConvNetTokens(enc.in_chans, protocol.convnet_widths).eval().requires_grad_(False)
        record.update(encoder="convnet", layers=None, attention_mask=None, widths=list(module.widths))
        return TokenSource(module, module.dim, "convnet", enc.tubelet, record)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(protocol.seed)  # random:PRESET is seeded; a checkpoint overwrites it all
        model = build_model(cfg)
    kind = "random"
    if state is not None:
        model.load_state_dict(state["model"])
        kind = "reference" if which == "reference" and model.reference is not None else "online"
        if kind != which:
            log.warning("the checkpoint's model has no EMA reference encoder: probing the online encoder")
    encoder = model.probe_encoder(which if state is not None else "online")
    layers = layer_indices(enc.depth, protocol.layers)
    causal = enc.causal and not protocol.bidirectional
    module = EncoderTokens(encoder, layers, causal)
    record.update(
        encoder=kind,
        encoder_requested=which,
        layers=layers,
        depth=enc.depth,
        width=enc.width,
        attention_mask="frame_causal" if causal else "bidirectional",
        pretrain_causal=enc.causal,
    )
    return TokenSource(module, module.dim, kind, enc.tubelet, record)


def _resolve_checkpoint(checkpoint: str, protocol: ProbeProtocol) -> tuple[Config, Optional[dict], dict[str, Any]]:
    """The config (its encoder at the protocol's resolution: no absolute position embedding, so the
    weights serve any multiple of the patch size), the state (None for random) and a record."""
    from nextvid.io import sha256_file
    from nextvid.presets import get_preset
    from nextvid.train import checkpoint as ckpt
    from nextvid.train.schedule import samples_before

    preset = random_preset(checkpoint)
    if preset is not None:
        cfg, state = get_preset(preset), None
        record: dict[str, Any] = {
            "path": checkpoint,
            "step": 0,
            "clips_seen": 0,
            "preset": preset,
            "seed": protocol.seed,
            "sha256": None,
        }
    else:
        state = ckpt.load(checkpoint)
        cfg = from_dict(Config, state["config"])
        step = int(
            state["step"]
        )  # clips seen: recorded by the trainer; a function of the schedule for older checkpoints
        clips = int(state.get("samples_seen", samples_before(cfg.schedule, step)))
        record = {
            "path": str(checkpoint),
            "step": step,
            "clips_seen": clips,
            "sha256": sha256_file(checkpoint),
            "config_hash": cfg.training_hash(),
        }
    record["pretrain_resolution"] = cfg.model.encoder.image_size
    if protocol.resolution % cfg.model.encoder.patch_size:
        raise ConfigError(
            f"resolution: {protocol.resolution} is not a multiple of the patch size {cfg.model.encoder.patch_size}"
        )
    if protocol.frames % cfg.model.encoder.tubelet:
        raise ConfigError(f"frames: {protocol.frames} is not a multiple of the tubelet {cfg.model.encoder.tubelet}")
    cfg = merge(cfg, {"model": {"encoder": {"image_size": protocol.resolution}}})
    return cfg, state, record
