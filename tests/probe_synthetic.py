"""Synthetic clip sets for the probe tests: each "clip" is already a (N, D) token map (stored as a
(N, D, 1, 1) video), and `Identity` is the token source, so every test goes through the real
extraction, caching and evaluation code without paying for an encoder."""

from __future__ import annotations

import torch
from torch import nn

from nextvid.data.badinput import BadInputError, bad_marker
from nextvid.probe.encoders import TokenSource


class TokenClips:
    """Per sample, segments x views token maps; the first quarter of the tokens carry a
    class-dependent mean (`separation` scales it), the rest is noise."""

    def __init__(
        self,
        n: int,
        classes: int,
        segments: int = 1,
        views: int = 1,
        tokens: int = 12,
        dim: int = 16,
        seed: int = 0,
        separation: float = 1.5,
    ):
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(classes, (n,), generator=g).tolist()
        self.segments, self.views = segments, views
        self.means = torch.randn(classes, dim, generator=torch.Generator().manual_seed(1234)) * separation
        self.tokens, self.dim, self.seed = tokens, dim, seed

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        x = torch.randn(self.segments * self.views, self.tokens, self.dim, generator=g)
        x[:, : self.tokens // 4] += self.means[self.labels[i]]
        return {"video": x[..., None, None], "label": self.labels[i], "index": i}


class WithBad:
    """A clip set whose samples at `bad` positions cannot be read (markers, as the data layer gives)."""

    def __init__(self, clips, bad: set[int]):
        self.clips, self.bad = clips, set(bad)
        self.segments, self.views, self.labels = clips.segments, clips.views, clips.labels

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict:
        if i in self.bad:
            return bad_marker(i, BadInputError(f"sample_{i}.mp4", "decode_error", "synthetic"))
        return self.clips[i]


class Identity(nn.Module):
    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return clips[..., 0, 0]


def token_source(dim: int = 16) -> TokenSource:
    return TokenSource(Identity(), dim, "synthetic", 2, {"path": "synthetic", "step": 0, "sha256": None})
