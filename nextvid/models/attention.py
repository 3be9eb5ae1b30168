"""What timm lacks: attention masks built from per-token frame indices, a cross-attention block with
RoPE, and the attention kernel choice. Self-attention blocks are timm's (`EvaBlock`, `AttentionRope`:
their parameters, init and pre-norm layout) with our forward (`RopeAttention`).

Masks are boolean (True = may attend), built vectorised from frame ids in one comparison, so the
same code serves the encoder (visible tokens only), the predictor and the decoder.

Speed (docs/performance.md): RoPE is one complex multiplication (`rope.apply_rope`), and bf16 on CPU
takes the explicit matmul-softmax-matmul path, because PyTorch's CPU flash-attention backward in bf16
is several times slower than in fp32 on our shapes; fp32 and CUDA use fused SDPA.
"""

from __future__ import annotations

import functools
from typing import Callable, Literal, Optional

import torch
import torch.nn.functional as F
from timm.layers import DropPath, Mlp
from timm.layers.attention import AttentionRope
from timm.models.eva import EvaBlock
from torch import nn
from torch.utils.checkpoint import checkpoint

from nextvid.models.rope import apply_rope

# token-frame rules, elementwise in (query frame, key frame): dense masks and FlexAttention's mask_mod
FRAME_RULES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "causal": lambda fq, fk: fk <= fq,  # a token sees its own token-frame and earlier ones (the encoder)
    "autoregressive": lambda fq, fk: fk < fq,  # a query of token-frame t sees frames < t (the predictor)
}


def frame_mask(rule: str, frames_q: torch.Tensor, frames_k: torch.Tensor) -> torch.Tensor:
    """The dense boolean (..., N, M) mask of `rule` for frame ids (..., N) and (..., M)."""
    return FRAME_RULES[rule](frames_q[..., :, None], frames_k[..., None, :])


def frame_causal_mask(frames_q: torch.Tensor, frames_k: torch.Tensor) -> torch.Tensor:
    """A token sees keys in its own token-frame and earlier ones (the encoder's frame-wise causality)."""
    return frame_mask("causal", frames_q, frames_k)


def autoregressive_mask(frames_q: torch.Tensor, frames_k: torch.Tensor) -> torch.Tensor:
    """A query of token-frame t sees context of token-frames < t only (the predictor)."""
    return frame_mask("autoregressive", frames_q, frames_k)


Kernel = Literal["auto", "sdpa", "flex"]


class FrameMask:
    """A frame rule over per-token frame ids, shared by every block of one forward. SDPA gets it as
    the dense boolean mask; FlexAttention as a block mask, whose all-masked blocks are skipped instead
    of computed and thrown away. `kernel` "auto" is flex on CUDA (where torch has it), SDPA elsewhere."""

    def __init__(self, frames_q: torch.Tensor, frames_k: torch.Tensor, rule: str, kernel: Kernel = "sdpa"):
        self.frames_q, self.frames_k, self.rule, self.kernel = frames_q, frames_k, rule, kernel

    @functools.cached_property
    def dense(self) -> torch.Tensor:
        return frame_mask(self.rule, self.frames_q, self.frames_k)

    def use_flex(self, device: torch.device) -> bool:
        return self.kernel == "flex" or (self.kernel == "auto" and device.type == "cuda" and flex_available())

    @functools.cached_property
    def block_mask(self):
        from torch.nn.attention.flex_attention import create_block_mask

        fq, fk, rule = self.frames_q, self.frames_k, FRAME_RULES[self.rule]
        return create_block_mask(lambda b, h, q, k: rule(fq[q], fk[k]), None, None, len(fq), len(fk), device=fq.device)


@functools.cache
def flex_available() -> bool:
    try:
        from torch.nn.attention.flex_attention import flex_attention  # noqa: F401
    except ImportError:
        return False
    return True


@functools.cache
def compiled_flex():
    """FlexAttention runs its fused kernel only compiled; one compiled function for the process."""
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention)


def call_block(block: nn.Module, checkpointed: bool, *args, **kwargs):
    """block(*args, **kwargs), with its activations recomputed in the backward pass when
    `checkpointed` (and gradients are being recorded): memory of the block's input instead of
    everything its backward needs, for one more forward of the block."""
    if checkpointed and torch.is_grad_enabled():
        return checkpoint(block, *args, use_reentrant=False, **kwargs)
    return block(*args, **kwargs)


def as_head_mask(mask: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    """(N, M) or (B, N, M) -> broadcastable over heads for SDPA."""
    if mask is None or mask.dim() == 2:
        return mask
    return mask.unsqueeze(1)


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: Optional[torch.Tensor | FrameMask] = None,
    fused: bool = True,
) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v for (B, H, N, d) tensors; mask: boolean (N, M) or (B, N, M), True = may
    attend, or a FrameMask (FlexAttention where it says so, else its dense form).

    Fused SDPA, except for bf16 on CPU (and when `fused` is off, e.g. timm's `set_fused_attn(False)`):
    there the explicit path runs the two products as bf16 batched matrix products and the softmax
    with fp32 accumulation, where the CPU flash kernel's bf16 backward is 3-6x slower than this."""
    if isinstance(mask, FrameMask):
        if mask.use_flex(q.device):
            # autocast does not cover flex_attention: give it one dtype, the value's (bf16 under
            # autocast), not a mix that would run, or fail to compile, its fp32 kernels
            return compiled_flex()(q.to(v.dtype), k.to(v.dtype), v, block_mask=mask.block_mask)
        mask = mask.dense
    mask = as_head_mask(mask)
    if fused and not (q.device.type == "cpu" and q.dtype == torch.bfloat16):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(dim=-1) @ v


class RopeAttention(AttentionRope):
    """timm's `AttentionRope` (same parameters and init) with our forward: RoPE by `apply_rope` on the
    complex form from `Rope3D.cis`, then `attention`. No prefix tokens, no q/k norm, no gate."""

    def forward(
        self, x, rope: Optional[torch.Tensor] = None, attn_mask: Optional[torch.Tensor] = None, is_causal: bool = False
    ):
        B, N, C = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        if rope is not None:
            q, k = apply_rope(q, rope), apply_rope(k, rope)
        out = attention(q, k, v, attn_mask, fused=self.fused_attn)
        return self.proj(out.transpose(1, 2).reshape(B, N, self.attn_dim))


class RopeBlock(EvaBlock):
    """timm's pre-norm `EvaBlock(attn_type="rope")` whose attention runs `RopeAttention.forward`.
    The class of the built attention module is switched rather than the module rebuilt, so the
    parameters, their init and the random stream are exactly timm's."""

    def __init__(self, dim: int, heads: int, **kwargs):
        super().__init__(dim, heads, num_prefix_tokens=0, attn_type="rope", **kwargs)
        a = self.attn
        if (
            type(a) is not AttentionRope
            or a.qkv is None
            or a.gate is not None
            or not all(isinstance(m, nn.Identity) for m in (a.q_norm, a.k_norm, a.norm))
        ):
            raise TypeError("RopeBlock supports timm's plain AttentionRope only (no q/k norm, no gate)")
        self.attn.__class__ = RopeAttention


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
            q, k = apply_rope(q, rope_q), apply_rope(k, rope_k)
        out = attention(q, k, v, attn_mask)
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
