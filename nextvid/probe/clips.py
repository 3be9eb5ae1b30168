"""Clip sets for the probe, built from manifests and the protocol.

Stop-gap until `nextvid.data.datasets` provides the evaluation dataset: frames come from the data
layer's readers (`nextvid.data.video.open_frames`: decord, PyAV fallback, images as one-frame
videos), and this module implements the `ClipSet` interface (nextvid.probe.features) with the
V-JEPA evaluation geometry: segments evenly spaced over the video (one segment: centred); one
view: the centre crop after resizing the short side to 256/224 of the resolution; several views:
spread along the long side after resizing the short side to the resolution. A video shorter than a
clip repeats its last frame. Training views of augmenting protocols use a random resized crop (+
flip) seeded by (seed, epoch, sample), so an epoch's views are reproducible. An unreadable sample
stops the run (BadInputError naming the file and the reason): skipping it would silently change
the benchmark.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from nextvid.config import ConfigError
from nextvid.data.manifest import Manifest, read_manifest
from nextvid.data.video import open_frames
from nextvid.models.nextvid import mix_seed
from nextvid.probe.protocol import ProbeProtocol
from nextvid.probe.run import ProbeData


def segment_indices(num_frames: int, frames: int, step: int, segments: int) -> list[list[int]]:
    """Frame indices of each segment: evenly spaced starts (one segment: centred), clamped to the
    last frame when the video is shorter than a clip."""
    span = (frames - 1) * step + 1
    room = max(0, num_frames - span)
    starts = [room // 2] if segments == 1 else [round(k * room / (segments - 1)) for k in range(segments)]
    return [[min(s + step * i, num_frames - 1) for i in range(frames)] for s in starts]


def spatial_views(video: torch.Tensor, size: int, views: int) -> list[torch.Tensor]:
    """(C, T, H, W) float -> `views` crops of size x size [V-JEPA eval]: one view is the centre crop
    after resizing the short side to size * 256/224; several are spread along the long side after
    resizing the short side to `size`."""
    c, t, h, w = video.shape
    scale = (size if views > 1 else round(size * 256 / 224)) / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    x = F.interpolate(video.transpose(0, 1), size=(nh, nw), mode="bilinear", antialias=True, align_corners=False).transpose(0, 1)
    out = []
    for v in range(views):
        frac = 0.5 if views == 1 else v / (views - 1)
        top, left = round((nh - size) * (frac if nh > nw else 0.5)), round((nw - size) * (frac if nw >= nh else 0.5))
        out.append(x[:, :, top:top + size, left:left + size])
    return out


def random_resized_crop(video: torch.Tensor, size: int, protocol: ProbeProtocol, g: torch.Generator) -> torch.Tensor:
    c, t, h, w = video.shape
    lo, hi = math.log(protocol.crop_aspect[0]), math.log(protocol.crop_aspect[1])
    ch, cw = h, w
    for _ in range(10):  # torchvision's rejection sampling, with our generator
        area = h * w * (protocol.crop_scale[0] + (protocol.crop_scale[1] - protocol.crop_scale[0]) * torch.rand(1, generator=g).item())
        aspect = math.exp(lo + (hi - lo) * torch.rand(1, generator=g).item())
        cw, ch = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            break
    else:
        ch, cw = min(h, w), min(h, w)
    top = int(torch.randint(h - ch + 1, (1,), generator=g))
    left = int(torch.randint(w - cw + 1, (1,), generator=g))
    crop = video[:, :, top:top + ch, left:left + cw].transpose(0, 1)
    crop = F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True, align_corners=False).transpose(0, 1)
    if protocol.hflip and torch.rand(1, generator=g).item() < 0.5:
        crop = crop.flip(-1)
    return crop


class ManifestClips:
    """segments x views clips per manifest row (segment-major), in [-1, 1] (mean 0.5, std 0.5)."""

    def __init__(self, manifest: Manifest, protocol: ProbeProtocol, views: int, augment_epoch: Optional[int] = None):
        self.manifest, self.protocol = manifest, protocol
        self.segments, self.views = protocol.segments, views
        self.labels = [s.label for s in manifest.samples]
        self.augment_epoch = augment_epoch

    def __len__(self) -> int:
        return len(self.manifest.samples)

    def __getitem__(self, i: int) -> dict:
        p, sample = self.protocol, self.manifest.samples[i]
        reader = open_frames(self.manifest.resolve(sample))  # opened here: never before a worker forks
        try:
            start = sample.start_frame or 0
            end = reader.num_frames if sample.end_frame is None else min(sample.end_frame, reader.num_frames)
            segments = [[0] * p.frames] if p.image else segment_indices(max(1, end - start), p.frames, p.frame_step, p.segments)
            frames = torch.from_numpy(np.ascontiguousarray(reader.get(start + np.asarray(segments).reshape(-1))))
        finally:
            reader.close()
        frames = frames.view(len(segments), p.frames, *frames.shape[1:]).permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0
        g = None if self.augment_epoch is None else torch.Generator().manual_seed(mix_seed(p.seed, self.augment_epoch, i))
        clips = []
        for video in frames:  # (C, T, H, W) per segment
            clips += [random_resized_crop(video, p.resolution, p, g)] if g is not None else spatial_views(video, p.resolution, self.views)
        return {"video": torch.stack(clips), "label": sample.label, "index": i}


def probe_data(protocol: ProbeProtocol) -> ProbeData:
    """The train/held-out/val clip sets of the protocol's manifests."""
    for key in ("train_manifest", "val_manifest"):
        if not getattr(protocol, key):
            raise ConfigError(f"{key}: no manifest given (set it in the protocol or pass --{key.replace('_', '-')})")
    train, val = read_manifest(protocol.train_manifest), read_manifest(protocol.val_manifest)
    for m in (train, val):
        if any(s.label < 0 for s in m.samples):
            raise ConfigError(f"{m.path}: the probe needs labelled samples (found label -1)")
    num_classes = max(train.num_classes, max(s.label for s in train.samples + val.samples) + 1)
    if protocol.augment:
        train_clips = lambda epoch: ManifestClips(train, protocol, 1, augment_epoch=epoch)  # noqa: E731
    else:
        fixed = ManifestClips(train, protocol, 1)
        train_clips = lambda epoch: fixed  # noqa: E731
    record = {
        "train_manifest": str(train.path), "train_sha256": train.sha256,
        "val_manifest": str(val.path), "val_sha256": val.sha256,
        "clip_reader": "nextvid.probe.clips over nextvid.data.video.open_frames",
    }
    return ProbeData(train_clips, ManifestClips(val, protocol, protocol.views), num_classes, ManifestClips(train, protocol, protocol.views), record)
