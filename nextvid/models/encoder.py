"""The video encoder: Conv3d tubelet embedding, 3D RoPE, timm pre-norm blocks, frame-wise causal
attention, final LayerNorm [paper]. It accepts only the visible tokens: masked tokens are dropped
before the transformer [ours, V-JEPA], so a masked clip costs what its visible tokens cost."""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from timm.layers import calculate_drop_path_rates, trunc_normal_
from torch import nn

from nextvid.config import EncoderConfig
from nextvid.models.attention import FrameMask, Kernel, RopeBlock, call_block
from nextvid.models.rope import Rope3D


def timm_mlp_ratio(width: int, mlp_ratio: float) -> float:
    """timm truncates `int(width * ratio)`; nudge the ratio so the hidden size is the rounded one
    (ViT-G's 48/11 must give 6144, not 6143)."""
    return (round(width * mlp_ratio) + 0.5) / width


class TubeletEmbed(nn.Module):
    """(B, C, T, H, W) -> (B, T', H'*W', D) with non-overlapping tubelet x patch x patch cubes."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        kernel = (cfg.tubelet, cfg.patch_size, cfg.patch_size)
        self.proj = nn.Conv3d(cfg.in_chans, cfg.width, kernel_size=kernel, stride=kernel)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        x = self.proj(video)  # (B, D, T', H', W')
        return x.flatten(3).permute(0, 2, 3, 1)


class Encoder(nn.Module):
    # how, not what (config `compute`, set by `models.nextvid.build_model`)
    checkpoint_blocks: bool = False
    attention_kernel: Kernel = "sdpa"

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.grid_hw = (cfg.image_size // cfg.patch_size, cfg.image_size // cfg.patch_size)
        self.patch_embed = TubeletEmbed(cfg)
        self.rope = Rope3D(cfg.width // cfg.heads, cfg.rope_base)
        rates = calculate_drop_path_rates(cfg.drop_path, cfg.depth)
        self.blocks = nn.ModuleList(
            RopeBlock(
                cfg.width, cfg.heads, qkv_bias=True, mlp_ratio=timm_mlp_ratio(cfg.width, cfg.mlp_ratio), drop_path=rate
            )
            for rate in rates
        )
        self.norm = nn.LayerNorm(cfg.width, eps=1e-6)
        self.apply(init_vit_weights)

    @property
    def width(self) -> int:
        return self.cfg.width

    def token_grid(self, video: torch.Tensor) -> tuple[int, int, int]:
        _, _, t, h, w = video.shape
        return t // self.cfg.tubelet, h // self.cfg.patch_size, w // self.cfg.patch_size

    def forward(
        self,
        video: torch.Tensor,
        keep: Optional[torch.Tensor] = None,
        num_frames: Optional[int] = None,
        causal: Optional[bool] = None,
        return_layers: Sequence[int] = (),
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Encode the visible tokens of a clip.

        video: (B, C, T, H, W) in [-1, 1]. keep: (B, K) sorted spatial indices (into H'*W') visible in
        every token-frame (masks are temporally consistent), or None for all. num_frames: encode only
        the first token-frames (exact under frame-causal attention: later frames cannot change them).
        causal: override the config's frame-causal attention (e.g. bidirectional probing).
        Returns (B, T'*K, D) in token-frame-major order, and the outputs of `return_layers` (0-based
        block indices, final norm applied) if asked.
        """
        x = self.patch_embed(video)  # (B, T', P, D)
        if num_frames is not None:
            x = x[:, :num_frames]
        B, Tp, P, D = x.shape
        positions = token_positions(keep, Tp, self.grid_hw, B, x.device)  # (B, T'*K, 3)
        if keep is not None:
            x = torch.gather(x, 2, keep[:, None, :, None].expand(B, Tp, keep.shape[1], D))
        x = x.reshape(B, -1, D)
        rope = self.rope.cis(positions)
        causal = self.cfg.causal if causal is None else causal
        mask = FrameMask(positions[0, :, 0], positions[0, :, 0], "causal", self.attention_kernel) if causal else None
        outputs = []
        for i, block in enumerate(self.blocks):
            x = call_block(block, self.checkpoint_blocks, x, rope=rope, attn_mask=mask)
            if i in return_layers:
                outputs.append(self.norm(x))
        x = self.norm(x)
        return (x, outputs) if return_layers else x


def token_positions(
    keep: Optional[torch.Tensor], frames: int, grid_hw: tuple[int, int], batch: int, device=None, first_frame: int = 0
) -> torch.Tensor:
    """(B, frames*K, 3) integer (t, h, w) of the tokens at spatial indices `keep` (all when None) in
    token-frames first_frame .. first_frame+frames-1, token-frame-major. Frame ids are the same for
    every sample, so attention masks built from sample 0's frame ids serve the whole batch."""
    H, W = grid_hw
    if keep is None:
        keep = torch.arange(H * W, device=device).expand(batch, -1)
    K = keep.shape[1]
    t = (first_frame + torch.arange(frames, device=device)).repeat_interleave(K).expand(batch, -1)
    spatial = keep.repeat(1, frames)
    return torch.stack([t, spatial // W, spatial % W], dim=-1)


def init_vit_weights(module: nn.Module) -> None:
    """ViT/MAE init: truncated normal 0.02 for linear and tubelet weights, zero biases, unit norms."""
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm) and module.elementwise_affine:
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv3d):
        trunc_normal_(module.weight.view(module.weight.shape[0], -1), std=0.02)
        nn.init.zeros_(module.bias)
