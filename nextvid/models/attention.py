"""What timm lacks: attention masks built from per-token frame indices, and a cross-attention block
with RoPE. Self-attention blocks come from timm (`EvaBlock` with `AttentionRope`).

Masks are boolean (True = may attend), built vectorised from frame ids in one comparison, so the
same code serves the encoder (visible tokens only), the predictor and the decoder.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from timm.layers import DropPath, Mlp, apply_rot_embed_cat
from torch import nn


def frame_causal_mask(frames_q: torch.Tensor, frames_k: torch.Tensor) -> torch.Tensor:
    """A token sees keys in its own token-frame and earlier ones (the encoder's frame-wise causality)."""
    return frames_k[..., None, :] <= frames_q[..., :, None]


def autoregressive_mask(frames_q: torch.Tensor, frames_k: torch.Tensor) -> torch.Tensor:
    """A query of token-frame t sees context of token-frames < t only (the predictor)."""
    return frames_k[..., None, :] < frames_q[..., :, None]


def as_head_mask(mask: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    """(N, M) or (B, N, M) -> broadcastable over heads for SDPA."""
    if mask is None or mask.dim() == 2:
        return mask
    return mask.unsqueeze(1)


class CrossAttention(nn.Module):
    """Queries attend to a separate context; the context is only ever keys and values."""

    def __init__(self, dim: int, heads: int, qkv_bias: bool = True):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor,
        rope_q: Optional[torch.Tensor] = None,
        rope_k: Optional[torch.Tensor] = None,
        attn_mask: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        B, N, C = x.shape
        M = context.shape[1]
        q = self.q(x).view(B, N, self.heads, self.head_dim).transpose(1, 2)
        k, v = self.kv(context).view(B, M, 2, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if rope_q is not None:
            q = apply_rot_embed_cat(q, rope_q).type_as(v)
            k = apply_rot_embed_cat(k, rope_k).type_as(v)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=as_head_mask(attn_mask))
        return self.proj(out.transpose(1, 2).reshape(B, N, C))


class CrossAttentionBlock(nn.Module):
    """`q = q + CrossAttn(LN(q), LN(ctx)); q = q + MLP(LN(q))`: no self-attention among queries."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, drop_path: float = 0.0):
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_ctx = nn.LayerNorm(dim)
        self.attn = CrossAttention(dim, heads)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, q, context, rope_q=None, rope_k=None, attn_mask=None):
        q = q + self.drop_path(self.attn(self.norm_q(q), self.norm_ctx(context), rope_q, rope_k, attn_mask))
        return q + self.drop_path(self.mlp(self.norm_mlp(q)))
