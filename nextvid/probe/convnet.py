"""A small 3D convolutional encoder for the supervised ceiling of a benchmark (`nextvid probe
--finetune --encoder convnet`), not part of the method.

Why it exists: a from-scratch ViT trained with labels on a benchmark's 800-1,600 training clips
memorises them instead of generalising (docs/benchmarks.md, "Floors and ceilings"), so its
finetuned accuracy sits at the floors and cannot say whether a benchmark has headroom. A network with
a convolutional bias learns from that little data, so its ceiling measures what the labels allow.
It outputs tokens like every other source, so the same attentive head reads it and the same probe
code trains and evaluates it.

Shape: a 2D stem at half resolution, then (3, 3, 3) convolutions that halve time and space
twice (so consecutive frames meet: motion is visible to it), a last spatial layer; BatchNorm and
ReLU after each.
"""

from __future__ import annotations

import torch
from torch import nn

WIDTHS = (32, 64, 128, 128)


def _layer(c_in: int, c_out: int, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> list[nn.Module]:
    padding = tuple(k // 2 for k in kernel)
    return [nn.Conv3d(c_in, c_out, kernel, stride, padding, bias=False), nn.BatchNorm3d(c_out), nn.ReLU(inplace=True)]


class ConvNetTokens(nn.Module):
    """clips (n, C, T, H, W) in [-1, 1] -> tokens (n, ceil(T/4) * ceil(H/8) * ceil(W/8), 128)."""

    def __init__(self, channels: int = 3, widths: tuple[int, ...] = WIDTHS):
        super().__init__()
        a, b, c, d = widths
        self.net = nn.Sequential(
            *_layer(channels, a, (1, 3, 3), (1, 2, 2)),
            *_layer(a, b, (3, 3, 3), (2, 2, 2)),
            *_layer(b, c, (3, 3, 3), (2, 2, 2)),
            *_layer(c, d, (1, 3, 3), (1, 1, 1)),
        )
        self.dim, self.widths = d, tuple(widths)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.net(clips).flatten(2).transpose(1, 2)
