"""Next-frame generations from a pretraining checkpoint's flow decoder (paper Fig. 5):

* masked generation: for every mask view of the training masking (drawn as in training, from the
  seed), each token-frame t >= 1 sampled from the decoder conditioned on the masked context of the
  token-frames before it (`NextVid.generate_next_frames` with `keep`); token-frame 0 is context only.
* autoregressive rollout: the first `context` token-frames are real; each later token-frame is
  sampled from the unmasked context of the real and already generated frames before it, decoded to
  pixels and fed back. The encoder is frame-causal, so generating token-frame t needs only the clip
  up to t.

Everything is a function of (checkpoint, clips, seed): masks from a seeded MaskSampler, ODE noise
from one seeded generator, clips deterministic (EvalClips, 1 segment x 1 view, centre crop).
This module runs the model; nextvid.report.grids only reads the samples.npz it writes and draws it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from nextvid.config import Config, from_dict
from nextvid.data.sampling import ClipSpec
from nextvid.masking import MaskSampler
from nextvid.models.nextvid import PretrainModel, build_model


class GenerationError(RuntimeError):
    """The checkpoint's model cannot generate (no flow decoder) or the request does not fit it."""


@dataclass
class GenerationModel:
    model: PretrainModel
    cfg: Config
    target: torch.nn.Module  # tokens -> pixels (to_video)
    record: dict[str, Any]


def load_generator(checkpoint: str | Path, device: torch.device) -> GenerationModel:
    from nextvid.io import sha256_file
    from nextvid.models.targets import build_target
    from nextvid.train import checkpoint as ckpt

    state = ckpt.load(checkpoint)
    cfg = from_dict(Config, state["config"])
    model = build_model(cfg)
    model.load_state_dict(state["model"])
    if getattr(model, "decoder", None) is None or not hasattr(model, "generate_next_frames"):
        raise GenerationError(
            f"{checkpoint}: the {cfg.objective.method} model has no flow decoder (objective.generation "
            f"{cfg.objective.generation}): nothing to generate"
        )
    target = model.pixels if cfg.target.kind == "pixels" else build_target(cfg)
    record = {
        "path": str(checkpoint),
        "step": int(state["step"]),
        "sha256": sha256_file(checkpoint),
        "config_hash": cfg.training_hash(),
        "target": cfg.target.kind,
        "method": cfg.objective.method,
    }
    return GenerationModel(model.eval().to(device), cfg, target.to(device), record)


def clip_spec(cfg: Config, frames: int) -> ClipSpec:
    """The pretraining clip geometry (nextvid.data.mixture): every frame_step frames, else at sample_fps."""
    return (
        ClipSpec(frames, frame_step=cfg.data.frame_step)
        if cfg.data.frame_step > 0
        else ClipSpec(frames, fps=cfg.data.sample_fps)
    )


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """(B, C, T, H, W) in [-1, 1] -> (B, T, H, W, C) uint8."""
    x = ((video.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 4, 1).cpu().numpy()


@torch.no_grad()
def generate(
    gen: GenerationModel, video: torch.Tensor, seed: int, context: Optional[int] = None, steps: Optional[int] = None
) -> dict[str, np.ndarray]:
    """video (B, C, T, H, W) in [-1, 1] -> the arrays of samples.npz (see module docstring)."""
    model, cfg = gen.model, gen.cfg
    tub = cfg.model.encoder.tubelet
    Tp, Hp, Wp = model.grid(video)
    context = max(1, Tp // 2) if context is None else context
    if not 1 <= context < Tp:
        raise GenerationError(
            f"--context: {context} token-frames of context leaves nothing to generate in a clip of {Tp} token-frames"
        )
    B = video.shape[0]
    rng = torch.Generator(device=video.device).manual_seed(seed)
    views = MaskSampler(cfg.masking, (Hp, Wp), seed=seed)(B, 0) or [None]
    masked, visible = [], []
    for keep in views:
        tokens = model.generate_next_frames(video, keep=keep, steps=steps, generator=rng)
        masked.append(torch.cat([video[:, :, :tub], gen.target.to_video(tokens, (Hp, Wp))], dim=2))
        vis = (
            torch.ones(B, Hp * Wp, dtype=torch.bool)
            if keep is None
            else torch.zeros(B, Hp * Wp, dtype=torch.bool).scatter_(1, keep.cpu(), True)
        )
        visible.append(vis.view(B, Hp, Wp))
    rollout = video.clone()
    for t in range(context, Tp):
        tokens = model.generate_next_frames(rollout[:, :, : (t + 1) * tub], steps=steps, generator=rng)[:, -1:]
        rollout[:, :, t * tub : (t + 1) * tub] = gen.target.to_video(tokens, (Hp, Wp)).clamp(-1, 1)
    return {
        "frames": to_uint8(video),
        "masked": np.stack([to_uint8(m) for m in masked], axis=1),
        "visible": torch.stack(visible, dim=1).numpy(),
        "rollout": to_uint8(rollout),
        "masked_from": np.int64(tub),
        "rollout_from": np.int64(context * tub),
    }


def save_samples(path: str | Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    """samples.npz, atomically, with its meta (`nextvid.io.save_npz`)."""
    from nextvid.io import save_npz

    return save_npz(path, arrays, meta)
