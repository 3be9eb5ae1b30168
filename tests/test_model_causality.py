"""Causality is a test, not a comment: gradients of random projections of outputs (a plain sum over a
LayerNorm output has zero gradient) with respect to inputs per token-frame. Exact zeros where the
masks forbid a dependence, non-zeros where they allow one, and a bidirectional control so the tests
can fail. Also: context isolation by forward hooks, fused vs non-fused timm attention, 3D RoPE."""

from __future__ import annotations

import dataclasses

import pytest
import timm.layers
import timm.layers.config as timm_config
import torch
from timm.layers import apply_rot_embed_cat
from timm.layers.attention import Attention, AttentionRope
from timm.models.eva import EvaAttention, EvaBlock
from torch import nn

from nextvid.config import DecoderConfig, EncoderConfig, PredictorConfig, merge
from nextvid.masking import MaskSampler
from nextvid.models.attention import CrossAttention
from nextvid.models.decoder import FlowDecoder
from nextvid.models.encoder import Encoder, token_positions
from nextvid.models.nextvid import build_model
from nextvid.models.predictor import IsolatedPredictor, JointPredictor
from nextvid.models.rope import Rope3D, grid_positions, rope_part_dim
from nextvid.presets import get_preset

pytestmark = pytest.mark.usefixtures("single_thread")  # see conftest.py

B, TP, GRID = 2, 4, (2, 2)  # batch, token-frames, spatial token grid
P = GRID[0] * GRID[1]
ENC = EncoderConfig(image_size=32, frames=2 * TP, width=64, depth=2, heads=2)  # head_dim 32: 2 unrotated channels


def project(out: torch.Tensor, seed: int) -> torch.Tensor:
    """A random linear functional of `out`: every output channel matters, LayerNorm included."""
    g = torch.Generator().manual_seed(seed)
    return (out * torch.randn(out.shape, generator=g)).sum()


def video_grad_per_token(video: torch.Tensor, scalar: torch.Tensor) -> torch.Tensor:
    """|d scalar / d video| summed over each tubelet cube: (B, T', H', W')."""
    (g,) = torch.autograd.grad(scalar, video, retain_graph=True)
    b, c, t, h, w = g.shape
    g = g.abs().reshape(b, c, t // 2, 2, h // 16, 16, w // 16, 16)
    return g.sum(dim=(1, 3, 5, 7))


def assert_depends(mag: torch.Tensor, what: str) -> None:
    assert (mag > 1e-7).all(), f"{what}: expected a dependence, got gradient magnitudes {mag}"


def assert_independent(mag: torch.Tensor, what: str) -> None:
    assert (mag == 0).all(), f"{what}: expected no dependence, got gradient magnitudes {mag}"


def make_video(batch=B, frames=2 * TP, size=32, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, 3, frames, size, size, generator=g) * 2 - 1).requires_grad_(True)


def randomize_zero_params(module: nn.Module, seed: int = 0) -> None:
    """Zero-initialised parameters (adaLN-Zero, query token, biases) would hide dependences at init."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if (p == 0).all():
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)


# ------------------------------------------------------------------------------ encoder


def check_encoder_causality(encoder: Encoder, keep=None, causal=None):
    video = make_video()
    out = encoder(video, keep=keep, causal=causal)
    K = P if keep is None else keep.shape[1]
    assert out.shape == (B, TP * K, ENC.width)
    for t in range(TP):
        mag = video_grad_per_token(video, project(out[:, t * K : (t + 1) * K], seed=t))  # (B, T', H', W')
        spatial = mag.flatten(2)  # (B, T', P)
        if keep is not None:
            dropped = torch.ones(B, P, dtype=torch.bool)
            dropped.scatter_(1, keep, False)
            assert_independent(spatial.transpose(1, 2)[dropped], f"masked positions (t={t})")
            spatial = torch.gather(spatial, 2, keep[:, None, :].expand(B, TP, K))
        assert_depends(spatial[:, : t + 1], f"encoder output t={t} on token-frames <= {t}")
        if causal is False:
            assert_depends(spatial[:, t + 1 :], f"bidirectional encoder output t={t} on later token-frames")
        else:
            assert_independent(spatial[:, t + 1 :], f"causal encoder output t={t} on later token-frames")


def test_encoder_is_frame_causal():
    torch.manual_seed(0)
    check_encoder_causality(Encoder(ENC))


def test_encoder_is_frame_causal_on_visible_subset():
    torch.manual_seed(0)
    keep = torch.tensor([[0, 2, 3], [1, 2, 3]])  # a different visible set per sample, same count
    check_encoder_causality(Encoder(ENC), keep=keep)


def test_bidirectional_encoder_sees_later_frames():
    torch.manual_seed(0)
    encoder = Encoder(ENC)
    check_encoder_causality(encoder, causal=False)
    bidirectional = Encoder(dataclasses.replace(ENC, causal=False))
    check_encoder_causality(bidirectional, keep=torch.tensor([[0, 3], [1, 2]]), causal=False)


def test_encoder_num_frames_equals_prefix_of_full_clip():
    torch.manual_seed(0)
    encoder = Encoder(ENC).eval()
    video = make_video().detach()
    with torch.no_grad():
        full = encoder(video)
        for n in range(1, TP):
            torch.testing.assert_close(encoder(video, num_frames=n), full[:, : n * P], atol=1e-5, rtol=1e-5)
        # and the same prefix property fails for the bidirectional encoder (control)
        assert not torch.allclose(
            encoder(video, num_frames=2, causal=False), encoder(video, causal=False)[:, : 2 * P], atol=1e-4
        )


@pytest.fixture
def unfused_attention():
    before = timm_config._USE_FUSED_ATTN
    timm.layers.set_fused_attn(False)
    try:
        yield
    finally:
        timm_config._USE_FUSED_ATTN = before
    assert timm.layers.use_fused_attn() == (before > 0)


def test_encoder_causality_without_fused_attention(unfused_attention):
    """The non-fused path turns boolean masks into additive -inf biases (timm >= 1.0.26); a wrong
    conversion (True added as 1.0) would leak the future and change the outputs."""
    torch.manual_seed(0)
    unfused = Encoder(ENC)
    assert all(not block.attn.fused_attn for block in unfused.blocks)
    check_encoder_causality(unfused)
    check_encoder_causality(unfused, keep=torch.tensor([[0, 2, 3], [1, 2, 3]]))
    # the other timm self-attention users: the joint predictor and the cross-frame decoder
    test_predictor_is_autoregressive(JointPredictor, None)
    test_decoder_frame_dependence("cross_frame")
    timm.layers.set_fused_attn(True)
    fused = Encoder(ENC)
    assert all(block.attn.fused_attn for block in fused.blocks)
    fused.load_state_dict(unfused.state_dict())
    video = make_video().detach()
    with torch.no_grad():
        torch.testing.assert_close(unfused(video), fused(video), atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------ predictor


PRED = PredictorConfig(width=48, depth=3, heads=2)  # 3 blocks: a leak through context <- later queries needs 3 hops
D_CTX = 32


def predictor_inputs(keep):
    g = torch.Generator().manual_seed(1)
    K = P if keep is None else keep.shape[1]
    # context covers token-frames 0 .. T'-1, one more than the model ever passes, to test "frames >= t"
    context = torch.randn(B, TP * K, D_CTX, generator=g, requires_grad=True)
    context_pos = token_positions(keep, TP, GRID, B)
    query_pos = token_positions(None, TP - 1, GRID, B, first_frame=1)  # targets: token-frames 1 .. T'-1
    return context, context_pos, query_pos, K


@pytest.mark.parametrize("cls", [IsolatedPredictor, JointPredictor])
@pytest.mark.parametrize("keep", [None, torch.tensor([[0, 1, 3], [0, 2, 3]])])
def test_predictor_is_autoregressive(cls, keep):
    torch.manual_seed(0)
    predictor = cls(PRED, D_CTX, D_CTX)
    randomize_zero_params(predictor)
    context, context_pos, query_pos, K = predictor_inputs(keep)
    z = predictor(context, context_pos, query_pos)
    assert z.shape == (B, (TP - 1) * P, D_CTX)
    for t in range(1, TP):
        rows = z[:, (t - 1) * P : t * P]
        (g,) = torch.autograd.grad(project(rows, t), context, retain_graph=True)
        per_frame = g.abs().sum(-1).reshape(B, TP, K)
        assert_depends(per_frame[:, :t], f"{cls.__name__} z_{t} on context < {t}")
        assert_independent(per_frame[:, t:], f"{cls.__name__} z_{t} on context >= {t}")


# ------------------------------------------------------------------------------ decoder


def decoder_inputs(F=3, C_T=8, D=16):
    g = torch.Generator().manual_seed(2)
    x_tau = torch.randn(B, F, P, C_T, generator=g, requires_grad=True)
    cond = torch.randn(B, F, P, D, generator=g, requires_grad=True)
    tau = torch.rand(B, F, generator=g).requires_grad_(True)
    positions = token_positions(None, F, GRID, B, first_frame=1).view(B, F, P, 3)
    return x_tau, cond, tau, positions


DECODERS = {
    "frame": ("concat", "frame"),
    "cross_frame": ("concat", "cross_frame"),
    "cross": ("cross", "none"),
    "cross_self": ("cross", "frame"),
}


@pytest.mark.parametrize("attention", list(DECODERS))
def test_decoder_frame_dependence(attention):
    """`attention` names the decoder: the full model's (frame), ours (cross_frame), and the simplified
    model's cross-only and cross-self decoders; all but cross_frame keep every token-frame isolated."""
    torch.manual_seed(0)
    condition, self_attention = DECODERS[attention]
    decoder = FlowDecoder(
        DecoderConfig(width=48, depth=2, heads=2, condition=condition, attention=self_attention),
        cond_dim=16,
        target_dim=8,
    )
    randomize_zero_params(decoder)
    x_tau, cond, tau, positions = decoder_inputs()
    F = x_tau.shape[1]
    out = decoder(x_tau, cond, tau, positions)
    assert out.shape == x_tau.shape
    # within a token-frame: a noisy target sees the frame's other noisy targets only through
    # self-attention; z_t of every position of the frame reaches it (concat: through self-attention)
    for i in range(P):
        g_x, g_c = torch.autograd.grad(project(out[:, 0, i], i), (x_tau, cond), retain_graph=True)
        others = [j for j in range(P) if j != i]
        assert_depends(g_x[:, 0, i].abs().sum(-1), f"{attention}: position {i} on its own noisy target")
        mixes = self_attention != "none"
        (assert_depends if mixes else assert_independent)(
            g_x[:, 0, others].abs().sum(-1), f"{attention}: position {i} on the frame's other noisy targets"
        )
        assert_depends(g_c[:, 0].abs().sum(-1), f"{attention}: position {i} on the frame's z_t")
    for t in range(F):
        grads = torch.autograd.grad(project(out[:, t], t), (x_tau, cond, tau), retain_graph=True)
        for name, g in zip(("x_tau", "cond", "tau"), grads):
            per_frame = g.abs().reshape(B, F, -1).sum(-1)
            assert_depends(per_frame[:, t], f"{attention}: frame {t} on its own {name}")
            assert_independent(per_frame[:, t + 1 :], f"{attention}: frame {t} on later {name}")
            if attention != "cross_frame":
                assert_independent(per_frame[:, :t], f"frame-isolated: frame {t} on earlier {name}")
            else:
                assert_depends(per_frame[:, :t], f"cross_frame: frame {t} on earlier {name}")
    # positions are integers: perturb one frame's positions and see which frames' outputs move
    with torch.no_grad():
        base = decoder(x_tau, cond, tau, positions)
        for s in range(F):
            moved = positions.clone()
            moved[:, s, :, 1:] = torch.randint(0, 50, (B, P, 2), generator=torch.Generator().manual_seed(s))
            diff = (decoder(x_tau, cond, tau, moved) - base).abs().amax(dim=(0, 2, 3))  # per frame
            assert diff[s] > 1e-5, f"{attention}: frame {s} ignores its own positions"
            assert (diff[:s] == 0).all(), f"{attention}: frames before {s} depend on frame {s}'s positions"
            later = diff[s + 1 :]
            if attention != "cross_frame":
                assert (later == 0).all(), f"frame-isolated: later frames depend on frame {s}'s positions"
            else:
                assert (later > 1e-5).all(), f"cross_frame: later frames ignore frame {s}'s positions"


# ------------------------------------------------------------------------------ context isolation


def capture_block_inputs(blocks):
    seen, handles = [], []
    for block in blocks:
        handles.append(block.register_forward_pre_hook(lambda mod, args: seen.append(args)))
    return seen, handles


def test_isolated_predictor_never_transforms_the_context():
    torch.manual_seed(0)
    predictor = IsolatedPredictor(PRED, D_CTX, D_CTX)
    randomize_zero_params(predictor)
    with torch.no_grad():  # distinct per-block LayerNorms, so "computed from the projected context" is specific
        for block in predictor.blocks:
            block.norm_ctx.weight.normal_(1.0, 0.3)
    self_attention = (Attention, AttentionRope, EvaAttention, EvaBlock, nn.MultiheadAttention)
    assert not any(isinstance(m, self_attention) for m in predictor.modules())
    assert sum(isinstance(m, CrossAttention) for m in predictor.modules()) == PRED.depth

    projected, kv_inputs = [], []
    predictor.context_proj.register_forward_hook(lambda mod, args, out: projected.append(out))
    for block in predictor.blocks:
        block.attn.kv.register_forward_hook(lambda mod, args, out: kv_inputs.append(args[0]))
    seen, _ = capture_block_inputs(predictor.blocks)
    context, context_pos, query_pos, _ = predictor_inputs(None)
    predictor(context, context_pos, query_pos)
    assert len(projected) == 1 and len(seen) == len(kv_inputs) == PRED.depth
    for block, args, kv_in in zip(predictor.blocks, seen, kv_inputs):
        assert args[1] is projected[0]  # every block gets the very same projected context tensor
        torch.testing.assert_close(kv_in, block.norm_ctx(projected[0]))  # keys/values come from it directly
        assert kv_in.shape[1] == context.shape[1]  # queries never become keys or values
    # the queries, by contrast, change from block to block
    assert not torch.allclose(seen[0][0].expand_as(seen[1][0]), seen[1][0])


def test_joint_predictor_mask_blocks():
    predictor = JointPredictor(PRED, D_CTX, D_CTX)
    ctx_frames = torch.tensor([0, 0, 1, 1, 2, 2])
    q_frames = torch.tensor([1, 1, 2, 2])
    mask = predictor.attention_mask(ctx_frames, q_frames)
    assert mask.shape == (10, 10)
    assert torch.equal(mask[:6, :6], ctx_frames[None, :] <= ctx_frames[:, None])  # context: frame-causal
    assert not mask[:6, 6:].any()  # context never reads the queries
    assert torch.equal(mask[6:, :6], ctx_frames[None, :] < q_frames[:, None])  # queries: earlier context
    assert torch.equal(mask[6:, 6:], q_frames[None, :] == q_frames[:, None])  # and their own frame's queries
    assert JointPredictor(PRED, D_CTX, D_CTX, rule="bidirectional").attention_mask(ctx_frames, q_frames) is None


def test_joint_predictor_transforms_the_context():
    torch.manual_seed(0)
    predictor = JointPredictor(PRED, D_CTX, D_CTX)
    assert any(isinstance(m, EvaBlock) for m in predictor.modules())
    seen, _ = capture_block_inputs(predictor.blocks)
    context, context_pos, query_pos, _ = predictor_inputs(None)
    predictor(context, context_pos, query_pos)
    M = context.shape[1]
    ctx_in = [args[0][:, :M] for args in seen]
    assert (ctx_in[1] - ctx_in[0]).abs().max() > 1e-3  # self-attention blocks rewrote the context


@pytest.mark.parametrize("isolation", [True, False])
def test_model_feeds_encoder_output_to_predictor(isolation):
    torch.manual_seed(0)
    cfg = merge(get_preset("nano"), {"model": {"predictor": {"context_isolation": isolation}}})
    model = build_model(cfg)
    assert isinstance(model.predictor, IsolatedPredictor if isolation else JointPredictor)
    encoded, received = [], []
    model.encoder.register_forward_hook(lambda mod, args, out: encoded.append(out))
    model.predictor.context_proj.register_forward_hook(lambda mod, args, out: received.append(args[0]))
    enc = cfg.model.encoder
    video = make_video(2, enc.frames, enc.image_size).detach()
    masks = MaskSampler(cfg.masking, model.encoder.grid_hw, seed=0)(2, step=0)
    model(video, masks)
    assert len(received) == len(masks)
    for out, inp in zip(encoded, received):
        assert inp is out


def test_model_prediction_of_frame_t_ignores_pixels_from_t_on():
    """End to end: z_t (predictor output inside NextVid.forward) depends on the masked clip's visible
    pixels of token-frames < t only."""
    torch.manual_seed(0)
    cfg = merge(get_preset("nano"), {"model": {"encoder": {"frames": 8, "image_size": 32}}})
    model = build_model(cfg)
    randomize_zero_params(model.predictor)
    zs = []
    model.predictor.register_forward_hook(lambda mod, args, out: zs.append(out))
    video = make_video(2, 8, 32)
    keep = torch.tensor([[0, 1, 3], [1, 2, 3]])
    model(video, [keep])
    (z,) = zs
    for t in range(1, TP):
        mag = video_grad_per_token(video, project(z[:, (t - 1) * P : t * P], t)).flatten(2)  # (B, T', P)
        visible = torch.gather(mag, 2, keep[:, None].expand(B, TP, 3))
        assert_depends(visible[:, :t], f"z_{t} on visible pixels of frames < {t}")
        assert_independent(mag[:, t:], f"z_{t} on pixels of frames >= {t}")


# ------------------------------------------------------------------------------ RoPE


def rotate(x: torch.Tensor, positions: torch.Tensor, rope: Rope3D) -> torch.Tensor:
    """x (N, head_dim) at positions (N, 3)."""
    return apply_rot_embed_cat(x[None], rope(positions))[0]


@pytest.mark.parametrize("head_dim", [24, 32, 64])
def test_rope_is_relative_and_leaves_the_remainder(head_dim):
    rope = Rope3D(head_dim)
    part = rope_part_dim(head_dim)
    assert rope.unrotated == head_dim - 3 * part and part % 2 == 0 and part >= head_dim // 3 - 1
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 1, head_dim, generator=g)
    pq, pk = torch.tensor([[3, 5, 1]]), torch.tensor([[1, 7, 4]])
    dot = (rotate(q, pq, rope) * rotate(k, pk, rope)).sum()
    for shift in ([1, 0, 0], [0, -3, 2], [17, 11, -5]):
        s = torch.tensor([shift])
        torch.testing.assert_close((rotate(q, pq + s, rope) * rotate(k, pk + s, rope)).sum(), dot, atol=1e-4, rtol=1e-5)
    # a different position difference gives a different score (control)
    assert abs((rotate(q, pq, rope) * rotate(k, pk + torch.tensor([[0, 1, 0]]), rope)).sum() - dot) > 1e-3
    # the remainder is unrotated, and each axis rotates only its own contiguous part (t, h, w)
    x = torch.randn(1, head_dim, generator=g)
    for axis in range(3):
        pos = torch.zeros(1, 3, dtype=torch.long)
        pos[0, axis] = 5
        moved = (rotate(x, pos, rope) - x).abs()[0] > 1e-6
        expect = torch.zeros(head_dim, dtype=torch.bool)
        expect[axis * part : (axis + 1) * part] = True
        assert torch.equal(moved, expect), f"axis {axis}"
    torch.testing.assert_close(rotate(x, torch.tensor([[4, 9, 2]]), rope)[:, 3 * part :], x[:, 3 * part :])
    # base 10000 and interleaved pairs: the first pair of the t part turns by exactly t radians
    y = rotate(x, torch.tensor([[1, 0, 0]]), rope)[0]
    c, s = torch.cos(torch.tensor(1.0)), torch.sin(torch.tensor(1.0))
    torch.testing.assert_close(y[:2], torch.stack([x[0, 0] * c - x[0, 1] * s, x[0, 1] * c + x[0, 0] * s]))


def test_grid_positions_are_raster_order():
    pos = grid_positions(2, 2, 3)
    assert pos.shape == (12, 3)
    assert pos[:, 0].tolist() == [0] * 6 + [1] * 6
    assert pos[4].tolist() == [0, 1, 1]  # index = (t*H + h)*W + w
    assert torch.equal(token_positions(None, 2, (2, 3), 1)[0], pos)
