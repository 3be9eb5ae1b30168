"""The fast paths of docs/performance.md compute what the plain ones do: RoPE as a complex product
equals timm's rotation; the explicit bf16 attention path equals fused SDPA and keeps the encoder
frame-causal (exact zero gradients) under bf16 autocast."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from timm.layers import apply_rot_embed_cat

from nextvid.config import EncoderConfig
from nextvid.models.attention import attention, frame_causal_mask
from nextvid.models.encoder import Encoder
from nextvid.models.rope import Rope3D, apply_rope

pytestmark = pytest.mark.usefixtures("single_thread")  # see conftest.py


@pytest.mark.parametrize("head_dim", [24, 26, 32, 64])
def test_complex_rope_equals_timm_rotation(head_dim):
    g = torch.Generator().manual_seed(head_dim)
    rope = Rope3D(head_dim)
    positions = torch.randint(0, 30, (2, 7, 3), generator=g)
    x = torch.randn(2, 3, 7, head_dim, generator=g)
    torch.testing.assert_close(
        apply_rope(x, rope.cis(positions)), apply_rot_embed_cat(x, rope(positions)), atol=1e-5, rtol=1e-5
    )
    # a non-contiguous view (q, k out of a fused qkv projection) and bf16 in, bf16 out
    qkv = torch.randn(2, 7, 3, 3, head_dim, generator=g).permute(2, 0, 3, 1, 4)
    q = qkv[1].bfloat16()
    out = apply_rope(q, rope.cis(positions))
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), apply_rot_embed_cat(q.float(), rope(positions)), atol=2e-2, rtol=1e-2)


def test_explicit_bf16_attention_equals_fused_sdpa():
    g = torch.Generator().manual_seed(0)
    frames = torch.arange(4).repeat_interleave(5)
    mask = frame_causal_mask(frames, frames)
    q, k, v = (torch.randn(2, 3, 20, 16, generator=g, requires_grad=True) for _ in range(3))
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    (ref_grads) = torch.autograd.grad(ref.square().sum(), (q, k, v))
    for fused in (True, False):
        out = attention(q, k, v, mask, fused=fused)  # fp32: SDPA when fused, the explicit path otherwise
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    qb, kb, vb = (t.detach().bfloat16().requires_grad_(True) for t in (q, k, v))
    out = attention(qb, kb, vb, mask)  # bf16 on CPU: the explicit path
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, atol=3e-2, rtol=3e-2)
    grads = torch.autograd.grad(out.float().square().sum(), (qb, kb, vb))
    for gb, gr in zip(grads, ref_grads):
        assert (gb.float() - gr).norm() / gr.norm() < 3e-2


def test_encoder_stays_frame_causal_under_bf16_autocast():
    torch.manual_seed(0)
    encoder = Encoder(EncoderConfig(image_size=32, frames=8, width=64, depth=2, heads=2))
    video = (torch.rand(2, 3, 8, 32, 32) * 2 - 1).requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = encoder(video)  # (2, 4 token-frames x 4 positions, 64)
    weights = torch.randn(
        out.shape, generator=torch.Generator().manual_seed(1)
    )  # a plain sum of a LayerNorm output has no gradient
    for t in range(4):
        rows = slice(4 * t, 4 * (t + 1))
        (grad,) = torch.autograd.grad((out[:, rows].float() * weights[:, rows]).sum(), video, retain_graph=True)
        per_frame = grad.abs().reshape(2, 3, 4, 2, 32, 32).sum(dim=(0, 1, 3, 4, 5))  # per token-frame
        assert (per_frame[: t + 1] > 0).all() and (per_frame[t + 1 :] == 0).all(), (t, per_frame)
