"""The flow-matching decoder learns a small conditional distribution: per condition, targets are
N(mu_c, sigma_c^2) with different means and spreads; after a few hundred Adam steps on
FlowDecoder.loss the Euler sampler reproduces each condition's mean and standard deviation. Also the
sampler's integration rule, the adaLN-Zero start, and per-sample noise seeds."""

from __future__ import annotations

import pytest
import torch

from nextvid.config import DecoderConfig
from nextvid.models.decoder import FlowDecoder, per_sample_noise
from nextvid.models.encoder import token_positions

pytestmark = pytest.mark.usefixtures("single_thread")  # see conftest.py

C_T, P, F, D = 2, 4, 1, 8  # target channels, positions per frame, frames, condition width
MU = torch.tensor([[2.0, -1.0], [-1.5, 0.5], [0.0, 2.5]])
SIGMA = torch.tensor([[0.2, 0.2], [0.5, 0.3], [0.1, 0.6]])
CONDS = torch.eye(3, D) * 2  # one-hot-ish condition vectors


def positions(batch: int, frames: int = F) -> torch.Tensor:
    return token_positions(None, frames, (2, 2), batch, first_frame=1).view(batch, frames, P, 3)


def small_decoder(**kw) -> FlowDecoder:
    return FlowDecoder(DecoderConfig(width=64, depth=2, heads=2, **kw), cond_dim=D, target_dim=C_T)


def toy_batch(batch: int, g: torch.Generator):
    c = torch.randint(0, 3, (batch,), generator=g)
    cond = CONDS[c][:, None, None].expand(batch, F, P, D)
    target = MU[c][:, None, None] + SIGMA[c][:, None, None] * torch.randn(batch, F, P, C_T, generator=g)
    return cond, target


def test_flow_decoder_learns_a_conditional_gaussian_mixture():
    torch.manual_seed(0)
    decoder = small_decoder()
    steps, batch = 500, 48
    opt = torch.optim.Adam(decoder.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=1e-4)
    g = torch.Generator().manual_seed(0)
    pos = positions(batch)
    losses = []
    for _ in range(steps):
        cond, target = toy_batch(batch, g)
        loss = decoder.loss(cond, target, pos, draws=2, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    assert sum(losses[-20:]) / 20 < 0.5 * sum(losses[:20]) / 20

    n = 250
    for k in range(3):
        cond = CONDS[k].expand(n, F, P, D)
        sample = decoder.sample(cond, positions(n), steps=50, generator=torch.Generator().manual_seed(k))
        assert sample.shape == (n, F, P, C_T)  # the Euler output has the target's shape
        x = sample.reshape(-1, C_T)
        mean, std = x.mean(0), x.std(0)
        assert (mean - MU[k]).abs().max() < 0.12, (k, mean, MU[k])
        assert ((std / SIGMA[k]) - 1).abs().max() < 0.35, (k, std, SIGMA[k])


def test_euler_sampler_integrates_from_noise_at_tau0_to_data_at_tau1():
    decoder = small_decoder(sample_steps=5)
    seen = []
    velocity = torch.tensor([0.5, -2.0])

    def constant_field(x_tau, cond, tau, pos):
        seen.append(tau.clone())
        return velocity.expand_as(x_tau)

    decoder.forward = constant_field  # the instance attribute shadows nn.Module.__call__'s target
    cond = torch.zeros(3, F, P, D)
    out = decoder.sample(cond, positions(3), generator=torch.Generator().manual_seed(0))
    noise = torch.randn(3, F, P, C_T, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, noise + velocity)  # x_1 = x_0 + integral of a constant field
    assert [t.unique().item() for t in seen] == torch.arange(5, dtype=torch.float32).div(5).tolist()
    assert all(t.shape == (3, F) for t in seen)


def test_adaln_zero_start_predicts_zero_velocity():
    decoder = small_decoder()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 2, P, C_T, generator=g)
    cond = torch.randn(2, 2, P, D, generator=g)
    out = decoder(x, cond, torch.rand(2, 2, generator=g), positions(2, 2))
    assert out.shape == x.shape and torch.equal(out, torch.zeros_like(out))
    # so the initial loss is E|h1 - h0|^2 = E|h1|^2 + 1 for a unit-noise path
    target = torch.full((64, 2, P, C_T), 3.0)
    loss = decoder.loss(torch.zeros(64, 2, P, D), target, positions(64, 2), draws=4, generator=g)
    assert abs(loss.item() - 10.0) < 0.3


def test_per_sample_seeds_make_the_loss_independent_of_batch_composition():
    """With seeds, each sample's tau and noise depend on its seed alone, so half batches (two DDP
    ranks) average to the full-batch loss."""
    torch.manual_seed(0)
    decoder = small_decoder()
    with torch.no_grad():
        for p in decoder.parameters():
            p.add_(torch.randn_like(p) * 0.05)  # leave adaLN-Zero so the prediction matters
    g = torch.Generator().manual_seed(0)
    cond, target = toy_batch(4, g)
    pos, seeds = positions(4), [11, 12, 13, 14]
    full = decoder.loss(cond, target, pos, draws=3, seeds=seeds)
    halves = [
        decoder.loss(cond[i : i + 2], target[i : i + 2], pos[i : i + 2], draws=3, seeds=seeds[i : i + 2])
        for i in (0, 2)
    ]
    torch.testing.assert_close(full, sum(halves) / 2)
    tau, noise = per_sample_noise([11, 12], draws=3, shape=(F, P, C_T), device="cpu")
    tau2, _ = per_sample_noise([12, 11], draws=3, shape=(F, P, C_T), device="cpu")
    assert tau.shape == (6, F) and noise.shape == (6, F, P, C_T)
    torch.testing.assert_close(tau[0::2], tau2[1::2])  # draw-major layout, each sample its own stream
