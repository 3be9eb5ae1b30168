"""The probe's clip sets from its manifests, through the data layer: the same readers (decord,
PyAV fallback), segment sampling, transforms and normalisation as pretraining (docs/data.md).

Every split is a `nextvid.data.datasets.EvalClips` over a `ManifestSource`: one item per sample
holding its segments x views clips (segment-major), so a sample is counted once however it is
batched, and a marker instead of a sample that cannot be read (the probe's loader drops and counts
it). Geometry [V-JEPA evaluation]: segment s of S centred on the s-th of S equal parts of the video,
short videos padded with their last frame; one view: short side resized to resolution x 256/224,
then the centre crop; several views: short side resized to the resolution, crops spread along the
long side. Training views of an augmenting protocol: one random resized crop (+ flip) per segment,
drawn from (seed, epoch, sample).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from nextvid.config import ConfigError
from nextvid.data.datasets import EvalClips, ManifestSource
from nextvid.data.manifest import read_manifest
from nextvid.data.sampling import ClipSpec
from nextvid.data.transforms import RandomResizedCropFlip
from nextvid.data.video import Backend
from nextvid.probe.features import ClipSet
from nextvid.probe.protocol import ProbeProtocol


@dataclass
class ProbeData:
    """train_clips(epoch): the training split, one view of all segments per sample (augmented when
    the protocol says so, else the same deterministic clips every epoch). heldout_clips: the training
    split with the evaluation views (S x V, deterministic), same positions; needed only when the
    training views differ from them. val_clips: the evaluation split, S x V deterministic views."""

    train_clips: Callable[[int], ClipSet]
    val_clips: ClipSet
    num_classes: int
    heldout_clips: Optional[ClipSet] = None
    record: dict[str, Any] = field(default_factory=dict)  # manifests and their sha256, sizes


def eval_short_side(resolution: int, views: int) -> int:
    """Short side before cropping [V-JEPA eval]: resolution x 256/224 for one view, else the resolution."""
    return round(resolution * 256 / 224) if views == 1 else resolution


def eval_clips(
    protocol: ProbeProtocol,
    source: ManifestSource,
    views: int,
    epoch: int = 0,
    augment: RandomResizedCropFlip | None = None,
) -> EvalClips:
    """One split's clips as the protocol reads them: its clip spec, resolution and segments, `views`
    deterministic views (or one `augment`ed view per segment, drawn from the protocol's seed and `epoch`)."""
    short = 0 if augment is not None else eval_short_side(protocol.resolution, views)
    spec = ClipSpec(protocol.frames, frame_step=protocol.frame_step)
    return EvalClips(
        source,
        spec,
        protocol.resolution,
        protocol.segments,
        views,
        augment=augment,
        seed=protocol.seed,
        epoch=epoch,
        short_side=short,
    )


def probe_data(protocol: ProbeProtocol, backend: Backend = "auto") -> ProbeData:
    """The train / held-out / val clip sets of the protocol's manifests."""
    for key in ("train_manifest", "val_manifest"):
        if not getattr(protocol, key):
            raise ConfigError(f"{key}: no manifest given (set it in the protocol or pass --{key.replace('_', '-')})")
    train, val = read_manifest(protocol.train_manifest), read_manifest(protocol.val_manifest)
    for m in (train, val):
        if not m.samples:
            raise ConfigError(f"{m.path}: the manifest has no samples")
        if any(s.label < 0 for s in m.samples):
            raise ConfigError(f"{m.path}: the probe needs labelled samples (found label -1)")
    num_classes = max(train.num_classes, max(s.label for s in train.samples + val.samples) + 1)
    train_source, val_source = ManifestSource(train, backend), ManifestSource(val, backend)

    if protocol.augment:
        crop = RandomResizedCropFlip(protocol.resolution, protocol.crop_scale, protocol.crop_aspect, protocol.hflip)
        train_clips = lambda epoch: eval_clips(protocol, train_source, 1, epoch, crop)  # noqa: E731
    else:
        fixed = eval_clips(protocol, train_source, 1)
        train_clips = lambda epoch: fixed  # noqa: E731
    record = {
        "train_manifest": str(train.path),
        "train_sha256": train.sha256,
        "val_manifest": str(val.path),
        "val_sha256": val.sha256,
        "clip_reader": "nextvid.data.datasets.EvalClips over ManifestSource",
        "backend": backend,
    }
    return ProbeData(
        train_clips,
        eval_clips(protocol, val_source, protocol.views),
        num_classes,
        eval_clips(protocol, train_source, protocol.views),
        record,
    )
