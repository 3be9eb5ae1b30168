"""Flow-matching DiT decoder [paper; layout ours after DiT]: generates the next token-frame's target
from noise, conditioned token-wise on z_t (channel concat with the noisy target) and on the flow
time tau through adaLN-Zero. Attention stays inside a token-frame [paper]; our extra Table 5 row lets
noisy targets also attend to earlier token-frames. The paper's simplified model (Tables 4 and 5)
conditions by cross-attention instead (`condition: cross`): the noisy targets of token-frame t are the
queries, z_t of the same token-frame the keys and values, with (`attention: frame`, "cross-self") or
without (`attention: none`) self-attention among the noisy targets of the frame.

Linear path: x_tau = (1 - tau) h0 + tau h1, h0 ~ N(0, I), tau ~ U(0, 1) (tau = 1 is data); the network
predicts the velocity h1 - h0. Sampling integrates the ODE with Euler steps from tau = 0 to 1.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from timm.layers import Mlp
from torch import nn
from torch.nn.functional import linear, mse_loss

from nextvid.config import DecoderConfig
from nextvid.models.attention import CrossAttention, FrameMask, Kernel, RopeAttention, call_block
from nextvid.models.encoder import init_vit_weights
from nextvid.models.rope import Rope3D


def _tokens(c: torch.Tensor) -> torch.Tensor:
    """A per-sequence condition (B, D) broadcasts over tokens; a per-token one (B, N, D) is used as is."""
    return c.unsqueeze(1) if c.dim() == 2 else c


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + _tokens(scale)) + _tokens(shift)


class TimestepEmbedder(nn.Module):
    """Sinusoidal features of 1000 * tau -> MLP (DiT)."""

    def __init__(self, dim: int, freq_dim: int = 256):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, tau: torch.Tensor) -> torch.Tensor:
        half = self.freq_dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=tau.device, dtype=torch.float32) / half)
        args = 1000.0 * tau.float()[:, None] * freqs[None]
        return self.mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=-1))


class DiTBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = RopeAttention(dim, heads, qkv_bias=True, num_prefix_tokens=0)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=lambda: nn.GELU(approximate="tanh"))
        self.adaln = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x, cond, rope, attn_mask=None):
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaln(cond).chunk(6, dim=-1)
        x = x + _tokens(gate1) * self.attn(modulate(self.norm1(x), shift1, scale1), rope=rope, attn_mask=attn_mask)
        return x + _tokens(gate2) * self.mlp(modulate(self.norm2(x), shift2, scale2))


class CrossDiTBlock(nn.Module):
    """A DiT block whose condition z_t comes in through cross-attention (noisy targets are the queries,
    z_t the keys and values), optionally after self-attention among the noisy targets; every sub-layer
    is adaLN-modulated by tau and gated (adaLN-Zero)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, self_attention: bool):
        super().__init__()
        self.attn = RopeAttention(dim, heads, qkv_bias=True, num_prefix_tokens=0) if self_attention else None
        self.norm_self = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6) if self_attention else None
        self.norm_cross = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.norm_context = nn.LayerNorm(dim)
        self.cross = CrossAttention(dim, heads)
        self.norm_mlp = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=lambda: nn.GELU(approximate="tanh"))
        self.adaln = nn.Sequential(nn.SiLU(), nn.Linear(dim, (9 if self_attention else 6) * dim))

    def forward(self, x, cond, rope, context):
        mods = self.adaln(cond).chunk(9 if self.attn is not None else 6, dim=-1)
        if self.attn is not None:
            shift, scale, gate = mods[:3]
            x = x + _tokens(gate) * self.attn(modulate(self.norm_self(x), shift, scale), rope=rope)
            mods = mods[3:]
        shift1, scale1, gate1, shift2, scale2, gate2 = mods
        ctx = self.norm_context(context)
        x = x + _tokens(gate1) * self.cross(modulate(self.norm_cross(x), shift1, scale1), ctx, rope, rope)
        return x + _tokens(gate2) * self.mlp(modulate(self.norm_mlp(x), shift2, scale2))


class FinalLayer(nn.Module):
    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.adaln = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.linear = nn.Linear(dim, out_dim)

    def forward(self, x, cond):
        shift, scale = self.adaln(cond).chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))


class FlowDecoder(nn.Module):
    # how, not what (config `compute`, set by `models.nextvid.build_model`)
    checkpoint_blocks: bool = False
    attention_kernel: Kernel = "sdpa"

    def __init__(self, cfg: DecoderConfig, cond_dim: int, target_dim: int, rope_base: float = 10000.0):
        super().__init__()
        self.cfg = cfg
        self.target_dim = target_dim
        self.t_embed = TimestepEmbedder(cfg.width)
        self.rope = Rope3D(cfg.width // cfg.heads, rope_base)
        if cfg.condition == "cross":  # z_t only as keys/values, projected once
            self.input = nn.Linear(target_dim, cfg.width)
            self.context = nn.Linear(cond_dim, cfg.width)
            self.blocks = nn.ModuleList(
                CrossDiTBlock(cfg.width, cfg.heads, cfg.mlp_ratio, cfg.attention == "frame") for _ in range(cfg.depth)
            )
        else:
            self.input = nn.Linear(cond_dim + target_dim, cfg.width)
            self.blocks = nn.ModuleList(DiTBlock(cfg.width, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.final = FinalLayer(cfg.width, target_dim)
        self.apply(init_vit_weights)
        nn.init.normal_(self.t_embed.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embed.mlp[2].weight, std=0.02)
        for module in [*(b.adaln[-1] for b in self.blocks), self.final.adaln[-1], self.final.linear]:
            nn.init.zeros_(module.weight)  # adaLN-Zero: every block starts as the identity
            nn.init.zeros_(module.bias)

    def forward(
        self, x_tau: torch.Tensor, cond: torch.Tensor, tau: torch.Tensor, positions: torch.Tensor
    ) -> torch.Tensor:
        """Velocity for noisy targets x_tau (B, F, P, C_t) given z (B, F, P, D), tau (B, F) and
        positions (B, F, P, 3) of F token-frames with P positions each."""
        B, F, P, _ = x_tau.shape
        if self.cfg.condition == "cross":
            return self._forward_cross(x_tau, cond, tau, positions)
        # the input layer on the channel concat [z_t, x_tau], as two products: no concatenated copy
        w, D = self.input.weight, cond.shape[-1]
        x = linear(x_tau, w[:, D:]) + linear(cond, w[:, :D], self.input.bias)
        if self.cfg.attention == "frame":
            # attention only within a token-frame: each frame is its own sequence
            x, positions, c, mask = x.reshape(B * F, P, -1), positions.reshape(B * F, P, 3), tau.reshape(B * F), None
            c = self.t_embed(c)
        else:
            frames = positions[0, :, :, 0].reshape(F * P)
            mask = FrameMask(frames, frames, "causal", self.attention_kernel)
            x, positions = x.reshape(B, F * P, -1), positions.reshape(B, F * P, 3)
            # one tau per frame: modulate every token with its own frame's timestep embedding
            c = self.t_embed(tau.reshape(B * F)).reshape(B, F, 1, -1).expand(B, F, P, -1).reshape(B, F * P, -1)
        rope = self.rope.cis(positions)
        for block in self.blocks:
            x = call_block(block, self.checkpoint_blocks, x, c, rope, mask)
        return self.final(x, c).reshape(B, F, P, -1)

    def _forward_cross(self, x_tau, cond, tau, positions):
        """Every token-frame is its own sequence: its noisy targets attend to its own z_t (and, with
        `attention: frame`, to each other); nothing crosses token-frames."""
        B, F, P, _ = x_tau.shape
        x = self.input(x_tau).reshape(B * F, P, -1)
        context = self.context(cond).reshape(B * F, P, -1)
        c = self.t_embed(tau.reshape(B * F))
        rope = self.rope.cis(positions.reshape(B * F, P, 3))
        for block in self.blocks:
            x = call_block(block, self.checkpoint_blocks, x, c, rope, context)
        return self.final(x, c).reshape(B, F, P, -1)

    def loss(
        self,
        cond,
        target,
        positions,
        draws: int,
        generator: Optional[torch.Generator] = None,
        seeds: Optional[Sequence[int]] = None,
    ) -> torch.Tensor:
        """Flow-matching loss averaged over tokens, frames and `draws` tau draws per condition.
        With `seeds` (one per sample) tau and noise are a function of the sample alone, so a batch
        split over DDP ranks draws exactly what one process would for the whole batch."""
        B, F, P, C = target.shape
        if seeds is None:
            tau = torch.rand(draws * B, F, device=target.device, generator=generator)
            noise = torch.randn(draws * B, F, P, C, device=target.device, generator=generator)
        else:
            tau, noise = per_sample_noise(seeds, draws, (F, P, C), target.device)
        # draw-major: row d*B + b is sample b's d-th draw. The target is broadcast over the draws, not
        # repeated, and the full-size tensors get one kernel each (docs/performance.md)
        h0 = noise.to(target.dtype).view(draws, B, F, P, C)
        velocity_target = target.unsqueeze(0) - h0  # h1 - h0
        x_tau = torch.addcmul(
            h0, tau.view(draws, B, F, 1, 1).to(target.dtype), velocity_target
        )  # (1 - tau) h0 + tau h1
        cond, positions = (t.repeat(draws, *([1] * (t.dim() - 1))) for t in (cond, positions))
        velocity = self(x_tau.flatten(0, 1), cond, tau, positions)
        return mse_loss(velocity.float(), velocity_target.flatten(0, 1).float())

    @torch.no_grad()
    def sample(
        self, cond, positions, steps: Optional[int] = None, generator: Optional[torch.Generator] = None
    ) -> torch.Tensor:
        """Euler ODE from noise (tau = 0) to data (tau = 1); no guidance."""
        steps = steps or self.cfg.sample_steps
        B, F, P, _ = cond.shape
        x = torch.randn(B, F, P, self.target_dim, device=cond.device, generator=generator)
        for i in range(steps):
            tau = torch.full((B, F), i / steps, device=cond.device)
            x = x + self(x, cond, tau, positions) / steps
        return x


def per_sample_noise(
    seeds: Sequence[int], draws: int, shape: tuple[int, int, int], device
) -> tuple[torch.Tensor, torch.Tensor]:
    """tau (draws*B, F) and noise (draws*B, F, P, C), draw-major like `Tensor.repeat(draws, ...)`,
    each sample's values drawn from its own generator. One small loop over the batch, not tokens."""
    taus, noises = [], []
    for seed in seeds:
        g = torch.Generator(device=device).manual_seed(int(seed))
        taus.append(torch.rand(draws, shape[0], generator=g, device=device))
        noises.append(torch.randn(draws, *shape, generator=g, device=device))
    return torch.stack(taus, 1).flatten(0, 1), torch.stack(noises, 1).flatten(0, 1)
