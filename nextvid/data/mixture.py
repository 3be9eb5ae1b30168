"""The pretraining mixture: sources sampled by weight [paper Table 6: weights, not epochs].

Global sample g is a pure function of (seed, g): a generator seeded with (seed, g) picks the source
with probability proportional to its weight, then a sample of that source uniformly, then the clip
and its augmentation. The trainer's data position is therefore just a sample count: a resumed run,
any number of workers and any split over ranks read exactly the clips an uninterrupted single
process reads. Sampling is with replacement: each draw is independent, so no per-epoch state exists
that a resume would have to restore.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from torch.utils.data import Dataset

from nextvid.data.badinput import SkipLog
from nextvid.data.datasets import TrainClips, open_source
from nextvid.data.mixture_file import read_mixture
from nextvid.data.sampling import ClipSpec, sample_rng
from nextvid.data.transforms import RandomResizedCropFlip

log = logging.getLogger(__name__)

_SALT = 0x6D6978  # keeps the mixture's streams apart from other users of (seed, index)
ENDLESS = 1 << 62  # len() of the mixture: indexed by global sample index, never exhausted


@dataclass(frozen=True)
class Draw:
    source: int
    sample: int


class MixtureSampler:
    """(seed, global index) -> (source, sample) and the generator the clip draws continue from."""

    def __init__(self, weights: Sequence[float], sizes: Sequence[int], seed: int):
        w = np.asarray(weights, dtype=np.float64)
        if len(w) == 0 or len(w) != len(sizes):
            raise ValueError(f"need one weight per source, got {len(w)} weights for {len(sizes)} sources")
        if (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"weights must be >= 0 with a positive sum, got {list(weights)}")
        empty = [k for k, (wk, n) in enumerate(zip(w, sizes)) if wk > 0 and n == 0]
        if empty:
            raise ValueError(f"sources {empty} have a positive weight but no samples")
        self.probs = w / w.sum()
        self.cum = np.cumsum(self.probs)
        self.cum[-1] = 1.0
        self.sizes, self.seed = list(sizes), seed

    def draw(self, index: int) -> tuple[Draw, np.random.Generator]:
        rng = sample_rng(self.seed, _SALT, index)
        k = int(np.searchsorted(self.cum, rng.random(), side="right"))
        k = min(k, len(self.cum) - 1)
        return Draw(k, int(rng.integers(self.sizes[k]))), rng

    def draws(self, begin: int, end: int) -> list[Draw]:
        return [self.draw(g)[0] for g in range(begin, end)]


class MixtureDataset(Dataset):
    """Indexed by global sample index g: {"video", "label", "index": g, "source": k, "sample": j}."""

    def __init__(self, sources: Sequence[TrainClips], weights: Sequence[float], seed: int, names: Sequence[str] = ()):
        self.sources = list(sources)
        self.names = list(names) or [f"source{k}" for k in range(len(self.sources))]
        self.sampler = MixtureSampler(weights, [len(s) for s in self.sources], seed)
        for name, s in zip(self.names, self.sources):
            for rec in s.source.rejected:
                log.warning("%s: skipped %s: %s (%s)", name, rec.path, rec.reason, rec.detail)

    def __len__(self) -> int:
        return ENDLESS

    def __getitem__(self, index: int) -> dict:
        d, rng = self.sampler.draw(index)
        item = self.sources[d.source].load(d.sample, rng, index=index)
        if "video" in item:
            item["source"], item["sample"] = d.source, d.sample
        return item

    def skip_log(self, max_fraction: float = 0.05, min_seen: int = 200) -> SkipLog:
        """A SkipLog for the endless stream: the limit applies to the samples seen so far. Rows the
        sources rejected up front (labels outside the label map, files a shard extraction could not
        read) are logged at construction and counted under `rejected` in describe(); they are never
        drawn, so they do not count against the stream."""
        return SkipLog(max_fraction, total=None, min_seen=min_seen, name="pretraining mixture")

    def describe(self) -> dict:
        return {
            "seed": self.sampler.seed,
            "sources": [
                {
                    "name": n,
                    "weight": float(p),
                    "samples": len(s),
                    "rejected": len(s.source.rejected),
                    **s.source.describe(),
                }
                for n, p, s in zip(self.names, self.sampler.probs, self.sources)
            ],
        }


def pretraining_dataset(cfg, frames: int) -> MixtureDataset:
    """The trainer's dataset factory (nextvid.train.loop.DatasetFactory): `cfg.data.sources` at
    `frames` frames, `cfg.model.encoder.image_size` pixels, augmented as `cfg.data` says."""
    data, size = cfg.data, cfg.model.encoder.image_size
    if not data.sources:
        raise ValueError("data.sources: no pretraining sources configured")
    spec = (
        ClipSpec(frames, frame_step=data.frame_step) if data.frame_step > 0 else ClipSpec(frames, fps=data.sample_fps)
    )
    augment = RandomResizedCropFlip(size, tuple(data.crop_scale), tuple(data.crop_aspect), data.hflip)
    sources = [
        TrainClips(open_source(Path(s.manifest), s.shards or None), spec, size, augment, cfg.seed) for s in data.sources
    ]
    return MixtureDataset(sources, [s.weight for s in data.sources], cfg.seed, [s.name for s in data.sources])


def cache_mixture(
    mixture: str | Path,
    out_dir: str | Path,
    *,
    step: int = 1,
    size: Optional[int] = None,
    backend: str = "auto",
    workers: int = 0,
    max_bad_fraction: float = 0.05,
) -> Path:
    """Decode every source of a mixture once into a shard cache (nextvid.data.shards) and write
    `out_dir/mixture.json`: the same sources and weights, each with its `shards`. Returns that path.

    Pays where decoding is a real share of a training step; measured for the embedded default and
    the tiny preset it is not (docs/data.md), so the workflow streams there."""
    import json

    from nextvid.data.shards import extract
    from nextvid.io import atomic_write_json

    out = Path(out_dir)
    entries = []
    for src in read_mixture(mixture):
        extract(
            src["manifest"],
            out / src["name"],
            step=step,
            size=size,
            backend=backend,
            workers=workers,
            max_bad_fraction=max_bad_fraction,
        )
        entries.append({**src, "shards": src["name"]})
    spec = json.loads(Path(mixture).read_text())
    spec.update(
        sources=entries, paths="shards relative to this file, manifests absolute", cache={"step": step, "size": size}
    )
    atomic_write_json(out / "mixture.json", spec)
    return out / "mixture.json"
