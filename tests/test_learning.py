"""The model learns: a reduced tiny preset lowers both losses on a fixed set of structured synthetic
clips in 100 CPU steps (AdamW on model.param_groups, EMA after every step). EMA momentum
1 freezes the reference bitwise and momentum 0 copies the online encoder. param_groups exempt biases,
norms and query tokens from weight decay and tag the flow decoder."""

from __future__ import annotations

import time

import pytest
import torch

from nextvid.config import merge
from nextvid.masking import MaskSampler
from nextvid.models.nextvid import build_model
from nextvid.presets import get_preset

pytestmark = pytest.mark.usefixtures("single_thread")  # see conftest.py

# tiny's widths, heads, tubelets, masks, EMA and losses; 64 px and shallower stacks: 100 steps take
# ~10-15 s on one thread
REDUCED_TINY = {
    "model": {"encoder": {"image_size": 64, "depth": 3}, "predictor": {"depth": 2}, "decoder": {"depth": 2}}
}


def moving_blobs(n: int, frames: int, size: int) -> torch.Tensor:
    """(n, 3, T, S, S) in [-1, 1]: a coloured Gaussian blob moving at constant velocity over a
    drifting sinusoidal background. Deterministic: the next frame is predictable from the past."""
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    clips = []
    for i in range(n):
        start = torch.rand(2, generator=g) * 1.2 - 0.6
        velocity = (torch.rand(2, generator=g) - 0.5) * 0.3
        colour = torch.rand(3, generator=g) * 2 - 1
        out = []
        for t in range(frames):
            cx, cy = (start + velocity * t).tolist()
            blob = torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.1)
            background = 0.3 * torch.sin(3 * xx + 0.5 * t + i)
            out.append(colour[:, None, None] * blob + background * (1 - blob))
        clips.append(torch.stack(out, dim=1))
    return torch.stack(clips).clamp(-1, 1)


def train(cfg, steps: int, batch: int = 4, momentum: float | None = None, lr: float = 5e-4):
    torch.manual_seed(cfg.seed)
    model = build_model(cfg)
    enc = cfg.model.encoder
    clips = moving_blobs(8, enc.frames, enc.image_size)
    optimizer = torch.optim.AdamW(model.param_groups(cfg.schedule.weight_decay), lr=lr, betas=cfg.schedule.betas)
    sampler = MaskSampler(cfg.masking, model.encoder.grid_hw, seed=cfg.seed)
    momentum = cfg.objective.ema_momentum if momentum is None else momentum
    history = []
    for step in range(steps):
        index = torch.arange(step * batch, (step + 1) * batch) % len(clips)
        out = model(clips[index], sampler(batch, step), tau_draws=1, generator=torch.Generator().manual_seed(step))
        optimizer.zero_grad(set_to_none=True)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.schedule.grad_clip)
        optimizer.step()
        model.update_reference(momentum)
        history.append({k: v.item() for k, v in out.items() if k != "context"})
    return model, history


def mean(history, key, part) -> float:
    values = [h[key] for h in history[part]]
    return sum(values) / len(values)


def test_reduced_tiny_lowers_both_losses():
    cfg = merge(get_preset("tiny"), REDUCED_TINY)
    start = time.perf_counter()
    _, history = train(cfg, steps=100, lr=1e-3)
    elapsed = time.perf_counter() - start
    first, last = slice(0, 10), slice(-10, None)
    flow0, flow1 = mean(history, "flow", first), mean(history, "flow", last)
    align0, align1 = mean(history, "align", first), mean(history, "align", last)
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in history)
    assert flow1 < 0.95 * flow0, (flow0, flow1)  # measured: 1.024 -> 0.914
    assert align1 < 0.6 * align0, (align0, align1)  # measured: 0.99 -> 0.32
    print(f"100 steps in {elapsed:.1f} s; flow {flow0:.3f} -> {flow1:.3f}; align {align0:.3f} -> {align1:.3f}")


def _encoder_state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_ema_momentum_one_freezes_and_zero_copies():
    cfg = get_preset("nano")
    frozen_model, _ = train(cfg, steps=0)
    before = _encoder_state(frozen_model.reference)
    model, _ = train(cfg, steps=3, momentum=1.0)
    after = model.reference.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # bitwise unchanged
    assert any(not torch.equal(before[k], v) for k, v in model.encoder.state_dict().items())  # online moved

    model, _ = train(cfg, steps=3, momentum=0.0)
    online = model.encoder.state_dict()
    assert all(torch.equal(online[k], v) for k, v in model.reference.state_dict().items())  # exact copy

    # in between: ref <- m * ref + (1 - m) * online
    model, _ = train(cfg, steps=2, momentum=1.0)
    ref0 = _encoder_state(model.reference)
    model.update_reference(0.75)
    online = model.encoder.state_dict()
    for k, v in model.reference.state_dict().items():
        torch.testing.assert_close(v, 0.75 * ref0[k] + 0.25 * online[k])


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"objective": {"method": "videomae"}, "masking": {"kind": "tube"}},
        {"objective": {"method": "ar_regression"}, "masking": {"kind": "none"}},
    ],
    ids=["nextvid", "videomae", "ar_regression"],
)
def test_param_groups_weight_decay_and_tags(overrides):
    model = build_model(merge(get_preset("nano"), overrides))
    names = {id(p): n for n, p in model.named_parameters()}
    groups = model.param_groups(0.04)
    seen = set()
    for group in groups:
        for p in group["params"]:
            name = names[id(p)]
            seen.add(name)
            no_decay = p.ndim <= 1 or name.endswith(".bias") or name.endswith(".query")
            assert group["weight_decay"] == (0.0 if no_decay else 0.04), name
            # only the flow head follows the decoder LR; VideoMAE's regression decoder trains at the main LR
            flow_head = (
                name.startswith("decoder.") and overrides.get("objective", {}).get("method", "nextvid") == "nextvid"
            )
            assert group["lr_group"] == ("decoder" if flow_head else "main"), name
            assert not name.startswith("reference.")
    assert seen == {n for n, p in model.named_parameters() if p.requires_grad}
    norms = [
        n
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.LayerNorm) and m.weight is not None and not n.startswith("reference.")
    ]
    assert norms and all(f"{n}.weight" in seen for n in norms)
    queries = [n for n in seen if n.endswith(".query")]
    assert queries  # every model here has a learnable query token, and it is never decayed
