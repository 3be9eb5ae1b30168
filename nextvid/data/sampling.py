"""Which frames a clip takes: frame-step or target-fps index math, random training clips,
deterministic evaluation segments, and short videos.

A clip of `frames` frames at step `s` (frames, possibly fractional: a 30 fps video sampled at 4 fps
has s = 7.5) takes the frames `start + floor(i * s + 1/2)`, i < frames; it spans
`floor((frames - 1) * s + 1/2) + 1` frames.

Short videos (fewer frames than the span) are not bad input. They are *padded* by repeating the
last frame by default: a loop's wrap-around is a jump back in time, which in direction-sensitive
benchmarks (SSv2's "left to right", the embedded motion benchmarks) reads as the opposite motion,
whereas a frozen tail adds no motion that is not in the video; padding is also V-JEPA's
evaluation convention, so probe numbers stay comparable. `short="loop"` is available.

Evaluation segment s of S covers the s-th of S equal parts of the video: its clip is centred on that
part's centre (shifted, where the clip is longer than the part, just enough to stay inside the
video), so the segments always contain their parts' centres and are evenly spread.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

log = logging.getLogger(__name__)

ShortMode = Literal["pad", "loop"]


@dataclass(frozen=True)
class ClipSpec:
    """How clips are cut from a video: `frames` frames, every `frame_step`-th frame when > 0, else
    sampled at `fps` frames per second of the video's own time base."""

    frames: int
    frame_step: int = 0
    fps: float = 0.0
    short: ShortMode = "pad"

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise ValueError(f"frames must be >= 1, got {self.frames}")
        if (self.frame_step > 0) == (self.fps > 0):
            raise ValueError(
                f"set exactly one of frame_step (> 0) and fps (> 0); got frame_step={self.frame_step}, fps={self.fps}"
            )
        if self.short not in ("pad", "loop"):
            raise ValueError(f"short must be 'pad' or 'loop', got {self.short!r}")

    def step(self, video_fps: float) -> float:
        """The step in frames of a video with `video_fps` frames per second."""
        if self.frame_step > 0:
            return float(self.frame_step)
        if video_fps <= 0:
            log.warning("a video has no frame rate; sampling every frame instead of at %g fps", self.fps)
            return 1.0
        return video_fps / self.fps


def offsets(frames: int, step: float) -> np.ndarray:
    """Frame offsets of a clip from its first frame."""
    return np.floor(np.arange(frames) * step + 0.5).astype(np.int64)


def span(frames: int, step: float) -> int:
    return int(offsets(frames, step)[-1]) + 1


def clip_indices(start: int, frames: int, step: float, num_frames: int, short: ShortMode = "pad") -> np.ndarray:
    """Indices of a clip starting at `start`, within [0, num_frames): past the end, `pad` repeats
    the last frame and `loop` wraps around to the first."""
    if num_frames < 1:
        raise ValueError("a video with no frames has no clips")
    idx = start + offsets(frames, step)
    return idx % num_frames if short == "loop" else np.minimum(idx, num_frames - 1)


def random_start(num_frames: int, clip_span: int, rng: np.random.Generator) -> int:
    """A uniformly drawn first frame such that the clip fits (0 for a short video)."""
    return int(rng.integers(0, max(num_frames - clip_span, 0) + 1))


def segment_starts(num_frames: int, clip_span: int, segments: int) -> list[int]:
    """First frames of `segments` deterministic clips, the s-th centred on the s-th equal part."""
    if segments < 1:
        raise ValueError(f"segments must be >= 1, got {segments}")
    last_start = max(num_frames - clip_span, 0)
    starts = []
    for s in range(segments):
        centre = (s + 0.5) * num_frames / segments  # in frame-boundary coordinates
        starts.append(min(max(math.floor(centre - clip_span / 2 + 0.5), 0), last_start))
    return starts


def _step(spec: ClipSpec, num_frames: int, video_fps: float) -> float:
    # a one-frame video (an image) has no frame rate and needs none: every index is its frame
    return 1.0 if num_frames <= 1 else spec.step(video_fps)


def random_clip(num_frames: int, spec: ClipSpec, video_fps: float, rng: np.random.Generator) -> np.ndarray:
    step = _step(spec, num_frames, video_fps)
    start = random_start(num_frames, span(spec.frames, step), rng)
    return clip_indices(start, spec.frames, step, num_frames, spec.short)


def segment_clips(num_frames: int, spec: ClipSpec, video_fps: float, segments: int) -> list[np.ndarray]:
    step = _step(spec, num_frames, video_fps)
    starts = segment_starts(num_frames, span(spec.frames, step), segments)
    return [clip_indices(s, spec.frames, step, num_frames, spec.short) for s in starts]


def sample_rng(*key: int) -> np.random.Generator:
    """A generator that is a pure function of the integers in `key` (seed, epoch, index, ...):
    no global RNG, so a sample is the same in any worker, process or resumed run."""
    return np.random.default_rng([int(k) & 0xFFFFFFFFFFFFFFFF for k in key])
