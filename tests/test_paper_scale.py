"""How a step is computed at paper scale, never what it computes: activation checkpointing and
micro-batches give the gradients of the plain step; FlexAttention gives SDPA's outputs; a compiled
model gives the eager one's loss and gradients."""

from __future__ import annotations

import pytest
import torch

from nextvid.config import merge
from nextvid.masking import MaskSampler
from nextvid.models.nextvid import build_model
from nextvid.presets import get_preset
from nextvid.provenance import mix_seed
from nextvid.train.schedule import plan
from nextvid.train.step import micro_batches, train_step


def nano(**overrides):
    return merge(get_preset("nano"), {"data": {"num_workers": 0}}, overrides)


def step_inputs(cfg, batch: int, step: int = 0):
    """A batch, its masks drawn for the whole step, per-sample noise seeds."""
    enc = cfg.model.encoder
    g = torch.Generator().manual_seed(1)
    video = torch.rand(batch, enc.in_chans, enc.frames, enc.image_size, enc.image_size, generator=g) * 2 - 1
    masks = MaskSampler(cfg.masking, (enc.image_size // enc.patch_size,) * 2, seed=cfg.seed)(batch, step)
    return video, masks, [mix_seed(cfg.seed, i) for i in range(batch)]


def loss_and_grads(cfg, video, masks, seeds, tau_draws=2, model=None):
    torch.manual_seed(0)
    model = model if model is not None else build_model(cfg)
    out = model(video, masks, tau_draws=tau_draws, noise_seeds=seeds)
    out["loss"].backward()
    return out["loss"].detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def assert_grads_close(a: dict, b: dict, rtol=1e-4, atol=1e-6):
    assert a.keys() == b.keys() and a
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=rtol, atol=atol, msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("method", ["nextvid", "videomae"])
def test_activation_checkpointing_gives_the_same_gradients(method):
    overrides = {"objective": {"method": method}, "masking": {"kind": "tube"}} if method == "videomae" else {}
    plain = nano(**overrides)
    checkpointed = merge(
        plain, {"compute": {"checkpoint_encoder": True, "checkpoint_predictor": True, "checkpoint_decoder": True}}
    )
    video, masks, seeds = step_inputs(plain, 2)
    if method == "videomae":
        masks = masks[:1]
    loss_a, grads_a = loss_and_grads(plain, video, masks, seeds)
    loss_b, grads_b = loss_and_grads(checkpointed, video, masks, seeds)
    torch.testing.assert_close(loss_a, loss_b)
    assert_grads_close(grads_a, grads_b)


def test_checkpointing_recomputes_instead_of_saving():
    """The setting really takes effect: autograd keeps fewer bytes for the backward pass."""
    from nextvid.memory import saved_bytes

    plain = nano()
    checkpointed = merge(
        plain, {"compute": {"checkpoint_encoder": True, "checkpoint_predictor": True, "checkpoint_decoder": True}}
    )
    video, masks, seeds = step_inputs(plain, 2)
    sizes = []
    for cfg in (plain, checkpointed):
        model = build_model(cfg)
        sizes.append(saved_bytes(model, lambda: model(video, masks, tau_draws=2, noise_seeds=seeds)["loss"]))
    assert sizes[1] < 0.7 * sizes[0]  # nano: the per-token targets and losses (not in blocks) stay


def test_micro_batches_cover_the_rows_in_order():
    assert micro_batches(8, 0) == [slice(0, 8)]
    assert micro_batches(8, 4) == [slice(0, 4), slice(4, 8)]
    assert micro_batches(7, 3) == [slice(0, 3), slice(3, 6), slice(6, 7)]


@pytest.mark.parametrize("micro_batch", [4, 3])
def test_accumulated_micro_batches_equal_one_batch(micro_batch):
    """2 x 4 (and 3 + 3 + 2) accumulated = one batch of 8: the same loss, gradient norm, weights after
    the optimiser step and EMA reference, within fp32 tolerance."""
    cfg = nano()
    video, masks, seeds = step_inputs(cfg, 8)
    results, models = [], []
    for mb in (0, micro_batch):
        torch.manual_seed(0)
        model = build_model(cfg)
        optimizer = torch.optim.AdamW(model.param_groups(cfg.schedule.weight_decay), lr=1e-3, betas=cfg.schedule.betas)
        p = plan(cfg.schedule, 0)
        p = type(p)(**{**p.__dict__, "micro_batch": mb, "batch_size": 8})
        results.append(train_step(model, optimizer, video, masks, p, cfg, seeds, precision="fp32"))
        models.append(model)
    whole, accumulated = results
    assert whole.values.keys() == accumulated.values.keys()
    for k in whole.values:
        assert accumulated.values[k] == pytest.approx(whole.values[k], rel=1e-5), k
    assert accumulated.grad_norm == pytest.approx(whole.grad_norm, rel=1e-4)
    assert accumulated.features.shape == whole.features.shape
    state_a, state_b = models[0].state_dict(), models[1].state_dict()
    for name in state_a:
        torch.testing.assert_close(state_a[name], state_b[name], rtol=1e-4, atol=1e-6, msg=lambda m: f"{name}: {m}")
    torch.manual_seed(0)
    initial = build_model(cfg).state_dict()
    moved = [n for n in state_a if n.startswith("reference.") and not torch.equal(state_a[n], initial[n])]
    assert moved  # the EMA update happened (once: equal to the single-batch step's)


def test_micro_batch_is_outside_the_training_hash():
    """Changing how a step is computed keeps the run's identity, so an out-of-memory run can resume
    with more micro-batches or checkpointing."""
    cfg = nano()
    changed = merge(cfg, {"schedule": {"stages": {"0": {"micro_batch": 2}}}, "compute": {"checkpoint_encoder": True}})
    assert changed.training_hash() == cfg.training_hash()
    assert changed.stable_hash() != cfg.stable_hash()


def compiled_or_skip(run):
    """Run something that needs torch.compile (Inductor and, on CPU, a C compiler); skip, saying why,
    where they are missing."""
    import os
    import shutil

    import torch._dynamo.exc
    import torch._inductor.exc

    if not torch.cuda.is_available() and shutil.which(os.environ.get("CC", "gcc")) is None:
        pytest.skip("torch.compile on CPU needs a C compiler (gcc or $CC); none found")
    try:
        return run()
    except (torch._dynamo.exc.BackendCompilerFailed, torch._inductor.exc.InductorError) as err:
        pytest.skip(f"torch.compile cannot build kernels here: {str(err).splitlines()[0][:200]}")


@pytest.mark.slow
def test_flex_attention_block_masks_equal_dense_sdpa():
    """The encoder's frame-causal rule and the predictor's autoregressive cross-attention, as
    FlexAttention block masks, give SDPA's outputs with dense masks. Forward only: FlexAttention has
    no CPU backward (CUDA runs it: `nextvid bench gpu`). Sequences span several 128-token blocks,
    with frames that straddle block edges."""
    from nextvid.models.attention import FrameMask, attention

    torch.manual_seed(0)
    frames_q = torch.arange(1, 6).repeat_interleave(60)  # 300 queries, token-frames 1..5
    frames_k = torch.arange(0, 6).repeat_interleave(60)  # 360 keys, token-frames 0..5
    q, k, v = torch.randn(2, 2, 300, 16), torch.randn(2, 2, 360, 16), torch.randn(2, 2, 360, 16)
    for rule, fq, kk, vv in (("causal", frames_k, k, v), ("autoregressive", frames_q, k, v)):
        qq = q if len(fq) == 300 else torch.randn(2, 2, len(fq), 16)
        dense = attention(qq, kk, vv, FrameMask(fq, frames_k, rule, "sdpa"))
        flex = compiled_or_skip(lambda: attention(qq, kk, vv, FrameMask(fq, frames_k, rule, "flex")))
        torch.testing.assert_close(flex, dense, rtol=1e-5, atol=1e-5, msg=lambda m: f"{rule}: {m}")


def test_auto_kernel_is_dense_sdpa_on_cpu():
    from nextvid.models.attention import FrameMask

    mask = FrameMask(torch.arange(3), torch.arange(3), "causal", "auto")
    assert not mask.use_flex(torch.device("cpu")) and mask.use_flex(torch.device("cuda"))
    assert torch.equal(mask.dense, torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.bool))
    model = build_model(nano(compute={"attention": "flex"}))
    assert {m.attention_kernel for m in model.modules() if hasattr(type(m), "attention_kernel")} == {"flex"}


@pytest.mark.slow
def test_compiled_model_gives_the_eager_loss_and_gradients():
    """compute.compile: the trainer runs torch.compile(model); forward and backward match eager."""
    cfg = nano(model={"encoder": {"depth": 1}, "predictor": {"depth": 1}, "decoder": {"depth": 1}})
    video, masks, seeds = step_inputs(cfg, 2)
    loss_a, grads_a = loss_and_grads(cfg, video, masks, seeds)
    torch.manual_seed(0)
    model = build_model(cfg)
    compiled = torch.compile(model)
    loss_b, _ = compiled_or_skip(lambda: loss_and_grads(cfg, video, masks, seeds, model=compiled))
    grads_b = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    torch.testing.assert_close(loss_b, loss_a, rtol=1e-5, atol=1e-6)
    assert_grads_close(grads_a, grads_b, rtol=1e-3, atol=1e-5)
