"""Every ablation switch and both baselines take a forward and backward step on the nano preset with
finite losses; gradients reach exactly the parameters that should get them (the encoder through z
from the flow loss: no stop-grad) and never the reference encoder; param_groups cover the trainable
parameters."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nextvid.config import merge
from nextvid.masking import MaskSampler, complement
from nextvid.models.nextvid import ARRegression, NextVid, VideoMAE, build_model
from nextvid.models.predictor import IsolatedPredictor, JointPredictor
from nextvid.models.targets import build_target, target_dim
from nextvid.presets import get_preset

pytestmark = pytest.mark.usefixtures("single_thread")  # see conftest.py

BATCH = 2

CASES = {
    "full": {},
    "generation_off": {"objective": {"generation": False}},
    "alignment_off": {"objective": {"alignment": False}},
    "context_isolation_off": {"model": {"predictor": {"context_isolation": False}}},
    "masking_none": {"masking": {"kind": "none"}},
    "decoder_cross_frame": {"model": {"decoder": {"attention": "cross_frame"}}},
    "simplified": {
        "objective": {"alignment": False},
        "model": {"decoder": {"condition": "cross", "attention": "none"}},
    },
    "simplified_cross_self": {
        "objective": {"alignment": False},
        "model": {"decoder": {"condition": "cross", "attention": "frame"}},
    },
    "simplified_no_masking": {
        "objective": {"alignment": False},
        "model": {"decoder": {"condition": "cross", "attention": "none"}},
        "masking": {"kind": "none", "unmasked_views": 2},
    },
    "ema_off": {"objective": {"ema": False}},
    "loss_positions_masked": {"objective": {"loss_positions": "masked"}},
    "videomae": {
        "objective": {"method": "videomae"},
        "masking": {"kind": "tube"},
        "model": {"encoder": {"causal": False}},
    },
    "ar_regression": {"objective": {"method": "ar_regression"}, "masking": {"kind": "none"}},
}


def unzero(module: nn.Module | None, seed: int = 0) -> None:
    """adaLN-Zero makes the fresh decoder output exactly 0, so no gradient would reach z: give the
    zero-initialised tensors small random values (as after a few optimiser steps)."""
    if module is None:
        return
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if (p == 0).all():
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)


def setup(overrides: dict, seed: int = 0):
    torch.manual_seed(seed)
    cfg = merge(get_preset("nano"), overrides)
    model = build_model(cfg)
    unzero(getattr(model, "decoder", None))
    unzero(getattr(model, "predictor", None))
    enc = cfg.model.encoder
    g = torch.Generator().manual_seed(seed)
    video = torch.rand(BATCH, 3, enc.frames, enc.image_size, enc.image_size, generator=g) * 2 - 1
    masks = MaskSampler(cfg.masking, model.encoder.grid_hw, seed=seed)(BATCH, step=0)
    return cfg, model, video, masks


def grad_norm(params) -> float:
    return math.sqrt(sum(float(p.grad.pow(2).sum()) for p in params if p.grad is not None))


def assert_step(cfg, model, video, masks, tau_draws=1, targets=None):
    out = model(video, masks, tau_draws=tau_draws, targets=targets, generator=torch.Generator().manual_seed(1))
    loss = out["loss"]
    assert loss.dim() == 0 and torch.isfinite(loss) and loss.item() > 0
    obj = cfg.objective
    if obj.method == "nextvid":
        assert ("flow" in out) == obj.generation and ("align" in out) == obj.alignment
        expect = obj.flow_weight * out.get("flow", 0.0) + obj.align_weight * out.get("align", 0.0)
        torch.testing.assert_close(loss, torch.as_tensor(expect, dtype=loss.dtype))
    else:
        assert "regression" in out
    loss.backward()

    trainable = [p for p in model.parameters() if p.requires_grad]
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
    # every block of every trained module learns something
    trained = {"encoder.patch_embed": model.encoder.patch_embed, "encoder.norm": model.encoder.norm}
    trained.update({f"encoder.blocks.{i}": b for i, b in enumerate(model.encoder.blocks)})
    for name in ("predictor", "decoder"):
        if getattr(model, name, None) is not None:
            trained[name] = getattr(model, name)
    for name, module in trained.items():
        assert grad_norm(module.parameters()) > 0, f"{name} gets no gradient"
    # the reference encoder never gets a gradient
    if model.reference is not None:
        assert all(not p.requires_grad and p.grad is None for p in model.reference.parameters())
    # the optimiser sees every trainable parameter exactly once, and nothing else
    grouped = [p for g in model.param_groups(0.04) for p in g["params"]]
    assert len(grouped) == len({id(p) for p in grouped}) == len(trainable)
    assert {id(p) for p in grouped} == {id(p) for p in trainable}
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_switch_forward_backward(case):
    cfg, model, video, masks = setup(CASES[case])
    out = assert_step(cfg, model, video, masks)
    enc = cfg.model.encoder
    Tp, P = enc.frames // enc.tubelet, (enc.image_size // enc.patch_size) ** 2
    if case == "generation_off":
        assert model.decoder is None
    if case == "alignment_off":
        assert model.reference is None  # no alignment: no reference encoder at all
    if case == "context_isolation_off":
        assert isinstance(model.predictor, JointPredictor)
    if case in ("full", "decoder_cross_frame"):
        assert (
            isinstance(model.predictor, IsolatedPredictor)
            and model.decoder.cfg.attention == cfg.model.decoder.attention
        )
    if case in ("masking_none", "ar_regression"):
        assert masks == []
        assert out["context"].shape[1] == (Tp - 1) * P  # the whole clip minus the last token-frame
    if case == "videomae":
        assert isinstance(model, VideoMAE) and len(masks) == 1
        assert masks[0].shape[1] == max(1, round((1 - cfg.masking.tube_ratio) * P))
        assert out["context"].shape[1] == Tp * masks[0].shape[1]  # all token-frames, visible tubes
        with pytest.raises(ValueError):
            model(video, masks * 2)
    if case == "ar_regression":
        assert isinstance(model, ARRegression) and model.reference is None
        with pytest.raises(ValueError):
            model(video, MaskSampler(get_preset("nano").masking, model.encoder.grid_hw)(BATCH, 0))


@pytest.mark.parametrize("draws", [1, 4])
def test_tau_draws(draws):
    cfg, model, video, masks = setup({})
    batches = []
    model.decoder.register_forward_pre_hook(lambda mod, args: batches.append(args[0].shape[0]))
    assert_step(cfg, model, video, masks, tau_draws=draws)
    assert batches == [draws * BATCH] * len(masks)  # one decoder call per view, k noisy copies per condition


def test_flow_loss_reaches_encoder_through_z():
    """No stop-grad between the flow loss and the encoder; the alignment loss never touches the decoder."""
    cfg, model, video, masks = setup({})
    out = model(video, masks, generator=torch.Generator().manual_seed(1))
    enc_params = list(model.encoder.parameters())
    flow_grads = torch.autograd.grad(
        out["flow"], enc_params + list(model.predictor.parameters()), allow_unused=True, retain_graph=True
    )
    assert all(g is not None for g in flow_grads)
    assert sum(float(g.abs().sum()) for g in flow_grads[: len(enc_params)]) > 0
    align_grads = torch.autograd.grad(out["align"], list(model.decoder.parameters()), allow_unused=True)
    assert all(g is None or not g.any() for g in align_grads)


def test_alignment_target_is_the_layernormed_reference_without_gradient():
    cfg, model, video, masks = setup({})
    with torch.no_grad():  # an affine final norm, so the target's own LayerNorm is not a no-op
        model.reference.norm.weight.uniform_(0.5, 2.0)
        model.reference.norm.bias.normal_(0.0, 0.5)
    zs = []
    model.predictor.register_forward_hook(lambda mod, args, out: zs.append(out))
    out = model(video, masks, generator=torch.Generator().manual_seed(1))
    enc = cfg.model.encoder
    Tp, P = enc.frames // enc.tubelet, (enc.image_size // enc.patch_size) ** 2
    with torch.no_grad():
        ref = model.reference(video)
        ref = F.layer_norm(ref, ref.shape[-1:]).view(BATCH, Tp, P, -1)[:, 1:]
    expect = torch.stack([F.mse_loss(z.view_as(ref), ref) for z in zs]).mean()
    torch.testing.assert_close(out["align"], expect)
    # the reference is separate from the online encoder: moving it moves the alignment loss only
    with torch.no_grad():
        for p in model.reference.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    moved = model(video, masks, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(moved["flow"], out["flow"])
    assert (moved["align"] - out["align"]).abs() > 1e-4


def test_without_ema_the_online_encoder_is_the_target_under_stop_grad():
    cfg, model, video, masks = setup({"objective": {"ema": False}})
    assert model.reference is None
    model.update_reference(0.5)  # a no-op without a reference
    zs = []
    model.predictor.register_forward_hook(lambda mod, args, out: zs.append(out))
    out = model(video, masks, generator=torch.Generator().manual_seed(1))
    enc = cfg.model.encoder
    Tp, P = enc.frames // enc.tubelet, (enc.image_size // enc.patch_size) ** 2
    online = model.encoder(video)  # with gradient, to build the no-stop-grad control
    target = F.layer_norm(online, online.shape[-1:]).view(BATCH, Tp, P, -1)[:, 1:]
    detached = torch.stack([F.mse_loss(z.view_as(target), target.detach()) for z in zs]).mean()
    through = torch.stack([F.mse_loss(z.view_as(target), target) for z in zs]).mean()
    torch.testing.assert_close(out["align"], detached)
    params = list(model.encoder.parameters())
    got = torch.autograd.grad(out["align"], params, retain_graph=True)
    want = torch.autograd.grad(detached, params, retain_graph=True)
    control = torch.autograd.grad(through, params)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
    assert max(float((a - c).abs().max()) for a, c in zip(got, control)) > 1e-6  # the stop-grad matters


def test_loss_positions_masked_queries_only_the_masked_positions():
    cfg, model, video, masks = setup({"objective": {"loss_positions": "masked"}})
    seen = []
    model.predictor.register_forward_pre_hook(lambda mod, args: seen.append(args[2]))
    assert_step(cfg, model, video, masks)
    enc = cfg.model.encoder
    Tp, P, W = enc.frames // enc.tubelet, (enc.image_size // enc.patch_size) ** 2, enc.image_size // enc.patch_size
    for keep, query_pos in zip(masks, seen):
        masked = complement(keep, P)
        q = query_pos.view(BATCH, Tp - 1, P - keep.shape[1], 3)
        for t in range(Tp - 1):
            assert (q[:, t, :, 0] == t + 1).all()
            assert torch.equal(q[:, t, :, 1] * W + q[:, t, :, 2], masked)


def test_vae_target_forward_backward(tiny_vae):
    cfg, model, video, masks = setup(tiny_vae)
    target = build_target(cfg)
    C_t = 2 * (16 // 2) ** 2 * 4
    assert target.dim == target_dim(cfg) == C_t
    assert model.decoder.input.in_features == cfg.model.encoder.width + C_t
    assert model.decoder.final.linear.out_features == C_t
    targets = target(video)
    assert_step(cfg, model, video, masks, tau_draws=2, targets=targets)
    assert all(p.grad is None for p in target.parameters())
    with pytest.raises(ValueError, match="targets"):
        model(video, masks, targets=targets[:, :, :3])


def test_build_model_dispatch():
    assert type(build_model(get_preset("nano"))) is NextVid
