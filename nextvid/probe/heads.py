"""The attentive probe [paper: one learnable query cross-attends to all encoder tokens, then a linear
classifier; V-JEPA 2 pooler layout: `q + xattn(q, LN(x))`, `q + MLP(LN(q))`], and a grid of such heads
trained together on the same minibatches.

`AttentiveProbe.forward` is the textbook computation with `nextvid.models.attention.CrossAttention`.
`ProbeGrid.forward` computes the same function for every head at once, cheaply: with one query the
key projection can be moved onto the query (q.k_i = (W_k^T q).x_i + const) and the value projection
after the pooling (sum_i a_i W_v x_i = W_v sum_i a_i x_i), and the context LayerNorm's affine folds
into both, so the only work over the N tokens is two matmuls against the LayerNormed features shared
by all heads: O(N D heads) per head instead of O(N D^2). A test checks both paths agree.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from timm.layers import Mlp, trunc_normal_
from timm.optim import param_groups_weight_decay
from torch import nn

from nextvid.models.attention import CrossAttention
from nextvid.models.encoder import init_vit_weights


class AttentiveProbe(nn.Module):
    def __init__(self, dim: int, num_classes: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"heads: probe width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.query = nn.Parameter(torch.zeros(1, 1, dim))
        self.norm_ctx = nn.LayerNorm(dim, eps=1e-6)
        self.attn = CrossAttention(dim, heads)
        self.norm_mlp = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.norm_out = nn.LayerNorm(dim, eps=1e-6)
        self.classifier = nn.Linear(dim, num_classes)
        self.apply(init_vit_weights)
        trunc_normal_(self.query, std=0.02)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, N, D) encoder tokens -> (B, num_classes) logits (reference path)."""
        q = self.query.expand(tokens.shape[0], -1, -1)
        q = q + self.attn(q, self.norm_ctx(tokens))
        return self.finish(q[:, 0])

    def finish(self, q: torch.Tensor) -> torch.Tensor:
        """The pooled query (B, D) after attention -> logits."""
        q = q + self.mlp(self.norm_mlp(q))
        return self.classifier(self.norm_out(q))

    def input_space_queries(self) -> torch.Tensor:
        """(heads, D): per attention head, the query moved through W_k, the 1/sqrt(d) scale and the
        context LayerNorm's gain, to be dotted with LayerNormed (non-affine) tokens."""
        D, H = self.query.shape[-1], self.heads
        q = self.attn.q(self.query[0, 0]).view(H, D // H)  # (H, d)
        w_k = self.attn.kv.weight[:D].view(H, D // H, D)  # (H, d, D)
        return torch.einsum("hd,hdD->hD", q, w_k) * self.norm_ctx.weight / math.sqrt(D // H)

    def from_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        """(B, heads, D) attention-weighted means of LayerNormed (non-affine) tokens -> logits."""
        D, H = self.query.shape[-1], self.heads
        x = pooled * self.norm_ctx.weight + self.norm_ctx.bias  # the context LN's affine, after pooling
        w_v = self.attn.kv.weight[D:].view(H, D // H, D)
        v = torch.einsum("bhD,hdD->bhd", x, w_v) + self.attn.kv.bias[D:].view(H, D // H)
        out = self.attn.proj(v.reshape(x.shape[0], D))
        return self.finish(self.query[0] + out)


class ProbeGrid(nn.Module):
    """Independent heads from one initialisation (they differ only by their optimiser settings)."""

    def __init__(self, dim: int, num_classes: int, heads: int, mlp_ratio: float, count: int, seed: int = 0):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            first = AttentiveProbe(dim, num_classes, heads, mlp_ratio)
        self.probes = nn.ModuleList([first] + [copy.deepcopy(first) for _ in range(count - 1)])
        self.attn_heads = heads

    def __len__(self) -> int:
        return len(self.probes)

    @staticmethod
    def normalize(tokens: torch.Tensor) -> torch.Tensor:
        """The heads' shared first op (the context LayerNorm without its affine, which each head folds
        in): parameter-free, so frozen features can be normalised once for every epoch."""
        return F.layer_norm(tokens.float(), (tokens.shape[-1],), eps=1e-6)

    def forward(self, tokens: torch.Tensor, normalized: bool = False) -> torch.Tensor:
        """(B, N, D) tokens (or their `normalize`d form) -> (G, B, num_classes) logits of every head."""
        B, N, D = tokens.shape
        x = tokens if normalized else self.normalize(tokens)  # shared by all heads
        queries = torch.cat([p.input_space_queries() for p in self.probes])  # (G*H, D)
        attn = torch.softmax(x @ queries.T, dim=1)  # (B, N, G*H): softmax over tokens
        pooled = attn.transpose(1, 2) @ x  # (B, G*H, D)
        pooled = pooled.view(B, len(self.probes), self.attn_heads, D)
        return torch.stack([p.from_pooled(pooled[:, g]) for g, p in enumerate(self.probes)])


def make_optimizer(grid: ProbeGrid, pairs: list[tuple[float, float]], betas: tuple[float, float]) -> torch.optim.AdamW:
    """AdamW with each head's own (lr, wd): two groups per head (no decay on biases, norms, the
    query), tagged with the head's index and base LR for the schedule. The fused kernel (CPU and
    CUDA): the heads' step is small, so the unfused per-tensor update was 16-23% of it on CPU."""
    if len(pairs) != len(grid):
        raise ValueError(f"{len(pairs)} (lr, wd) pairs for {len(grid)} heads")
    groups = []
    for g, (probe, (lr, wd)) in enumerate(zip(grid.probes, pairs)):
        for group in param_groups_weight_decay(probe, wd, no_weight_decay_list=("query",)):
            group.update(lr=lr, base_lr=lr, head=g)
            groups.append(group)
    fused = all(p.device.type in ("cpu", "cuda") for p in grid.parameters())
    return torch.optim.AdamW(groups, betas=betas, fused=fused)


def lr_factor(step: int, total_steps: int, warmup_steps: int, schedule: str) -> float:
    """Pure function of the step: linear warm-up from 1/warmup, then constant or cosine to 0."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
