"""Autoregressive predictors: z_t for every position of token-frame t from the context of frames < t.

`IsolatedPredictor` is the paper's [Q-former style]: one zero-init learnable query broadcast to every
target position (positions only through 3D RoPE), cross-attention blocks in which the context is
only ever keys and values, never transformed by the predictor.

`JointPredictor` is the Table 2 ablation without context isolation: context and queries pass together
through self-attention blocks (context frame-causal, queries see earlier context and their own
frame's queries). With a bidirectional rule it is also the VideoMAE-style decoder.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from nextvid.config import PredictorConfig
from nextvid.models.attention import (
    CrossAttentionBlock,
    FrameMask,
    Kernel,
    RopeBlock,
    autoregressive_mask,
    call_block,
    frame_causal_mask,
)
from nextvid.models.encoder import init_vit_weights, timm_mlp_ratio
from nextvid.models.rope import Rope3D


class _PredictorBase(nn.Module):
    # how, not what (config `compute`, set by `models.nextvid.build_model`)
    checkpoint_blocks: bool = False
    attention_kernel: Kernel = "sdpa"

    def __init__(self, cfg: PredictorConfig, in_dim: int, out_dim: int, rope_base: float = 10000.0):
        super().__init__()
        self.cfg = cfg
        self.context_proj = nn.Linear(in_dim, cfg.width)
        self.query = nn.Parameter(torch.zeros(1, 1, cfg.width))  # zero-init [paper]
        self.rope = Rope3D(cfg.width // cfg.heads, rope_base)
        self.norm = nn.LayerNorm(cfg.width, eps=1e-6)
        self.out_proj = nn.Linear(cfg.width, out_dim)


class IsolatedPredictor(_PredictorBase):
    def __init__(self, cfg: PredictorConfig, in_dim: int, out_dim: int, rope_base: float = 10000.0):
        super().__init__(cfg, in_dim, out_dim, rope_base)
        self.blocks = nn.ModuleList(CrossAttentionBlock(cfg.width, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.apply(init_vit_weights)
        nn.init.zeros_(self.query)

    def forward(self, context, context_pos, query_pos):
        """context (B, M, D_enc) with positions (B, M, 3); query_pos (B, N, 3) -> z (B, N, out_dim).
        Frame ids are position[..., 0]; they are identical across the batch."""
        ctx = self.context_proj(context)
        q = self.query.expand(query_pos.shape[0], query_pos.shape[1], -1)
        rope_q, rope_k = self.rope.cis(query_pos), self.rope.cis(context_pos)
        mask = FrameMask(query_pos[0, :, 0], context_pos[0, :, 0], "autoregressive", self.attention_kernel)
        for block in self.blocks:
            q = call_block(block, self.checkpoint_blocks, q, ctx, rope_q, rope_k, mask)
        return self.out_proj(self.norm(q))


class JointPredictor(_PredictorBase):
    def __init__(
        self,
        cfg: PredictorConfig,
        in_dim: int,
        out_dim: int,
        rope_base: float = 10000.0,
        rule: Literal["autoregressive", "bidirectional"] = "autoregressive",
    ):
        super().__init__(cfg, in_dim, out_dim, rope_base)
        self.rule = rule
        self.blocks = nn.ModuleList(
            RopeBlock(cfg.width, cfg.heads, mlp_ratio=timm_mlp_ratio(cfg.width, cfg.mlp_ratio))
            for _ in range(cfg.depth)
        )
        self.apply(init_vit_weights)
        nn.init.zeros_(self.query)

    def attention_mask(self, context_frames: torch.Tensor, query_frames: torch.Tensor) -> torch.Tensor | None:
        if self.rule == "bidirectional":
            return None
        ctx_ctx = frame_causal_mask(context_frames, context_frames)
        ctx_q = torch.zeros(len(context_frames), len(query_frames), dtype=torch.bool, device=ctx_ctx.device)
        q_ctx = autoregressive_mask(query_frames, context_frames)
        q_q = query_frames[None, :] == query_frames[:, None]
        return torch.cat([torch.cat([ctx_ctx, ctx_q], 1), torch.cat([q_ctx, q_q], 1)], 0)

    def forward(self, context, context_pos, query_pos):
        ctx = self.context_proj(context)
        q = self.query.expand(query_pos.shape[0], query_pos.shape[1], -1)
        x = torch.cat([ctx, q], dim=1)
        rope = self.rope.cis(torch.cat([context_pos, query_pos], dim=1))
        mask = self.attention_mask(context_pos[0, :, 0], query_pos[0, :, 0])
        for block in self.blocks:
            x = call_block(block, self.checkpoint_blocks, x, rope=rope, attn_mask=mask)
        return self.out_proj(self.norm(x[:, ctx.shape[1] :]))
