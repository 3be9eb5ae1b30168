"""The embedded default's real footage: the fetched source videos decoded once at short side SIZE,
cropped into the synthetic clips' backgrounds and cut into the corpus's real clips. Each video's
train range and val range are disjoint in time."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image

from nextvid.data import sources
from nextvid.data.embedded_catalogue import REAL_MIN_FRAMES, REAL_WINDOW_S, SIZE, TRAIN_END, VAL_START


@dataclass(frozen=True)
class Footage:
    """One source video decoded once, short side SIZE (aspect kept, even width)."""

    name: str
    fps: float
    frames: np.ndarray  # (n, SIZE, w, 3) uint8 for landscape sources

    def split_range(self, split: str) -> tuple[int, int]:
        n = len(self.frames)
        return (0, int(n * TRAIN_END)) if split == "train" else (int(np.ceil(n * VAL_START)), n)


_FOOTAGE_CACHE: dict[tuple, tuple[Footage, ...]] = {}


def load_footage(sources_dir: Path, record: dict) -> tuple[Footage, ...]:
    """Decode all source videos (cached per process: repeated builds, e.g. in tests, decode once)."""
    key = (
        str(sources_dir.resolve()),
        tuple(record[f"videos/{sources.video_path(sources_dir, n).name}"]["sha256"] for n in sources.VIDEO_NAMES),
    )
    if key not in _FOOTAGE_CACHE:
        _FOOTAGE_CACHE.clear()
        _FOOTAGE_CACHE[key] = tuple(_decode(n, sources.video_path(sources_dir, n)) for n in sources.VIDEO_NAMES)
    return _FOOTAGE_CACHE[key]


def _decode(name: str, path: Path) -> Footage:
    frames = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate)
        for frame in container.decode(stream):
            short = min(frame.width, frame.height)
            size = (round(frame.width * SIZE / short / 2) * 2, round(frame.height * SIZE / short / 2) * 2)
            frames.append(_small_rgb(frame, size))
    return Footage(name, fps, np.stack(frames))


def _small_rgb(frame: av.VideoFrame, size: tuple[int, int]) -> np.ndarray:
    """Resize the decoded planes first, then convert to RGB (BT.601 limited range, integer arithmetic):
    5x faster than FFmpeg's full-size conversion, and our own code, so bit-exact everywhere."""
    if frame.format.name not in ("yuv420p", "yuvj420p", "yuv422p", "yuv444p"):
        return np.asarray(frame.to_image().resize(size, Image.BILINEAR, reducing_gap=2.0))
    planes = []
    for plane in frame.planes:
        a = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
        planes.append(
            np.asarray(
                Image.fromarray(np.ascontiguousarray(a)).resize(size, Image.BILINEAR, reducing_gap=2.0), dtype=np.int32
            )
        )
    y, u, v = planes
    if frame.format.name == "yuvj420p":  # full range
        y, u, v = (y * 219 + 127) // 255 + 16, (u - 128) * 224 // 255 + 128, (v - 128) * 224 // 255 + 128
    c, d, e = y - 16, u - 128, v - 128
    rgb = np.stack([298 * c + 409 * e, 298 * c - 100 * d - 208 * e, 298 * c + 516 * d], axis=-1)
    return ((rgb + 128) >> 8).clip(0, 255).astype(np.uint8)


def background_clip(
    footage: tuple[Footage, ...], rng: np.random.Generator, split: str, frames: int
) -> tuple[np.ndarray, dict]:
    """A SIZE x SIZE crop of a random real video from the split's time range; played forward then
    backward (ping-pong) when the range is shorter than the clip."""
    v = footage[int(rng.integers(len(footage)))]
    lo, hi = v.split_range(split)
    start = int(rng.integers(lo, hi))
    idx = lo + _pingpong(start - lo + np.arange(frames), hi - lo)
    h, w = v.frames.shape[1:3]
    y0, x0 = int(rng.integers(0, h - SIZE + 1)), int(rng.integers(0, w - SIZE + 1))
    flip = bool(rng.random() < 0.5)
    clip = v.frames[idx, y0 : y0 + SIZE, x0 : x0 + SIZE]
    clip = np.ascontiguousarray(clip[:, :, ::-1] if flip else clip)
    return clip, {"video": v.name, "start": start, "x0": x0, "y0": y0, "flip": flip}


def _pingpong(i: np.ndarray, n: int) -> np.ndarray:
    if n <= 1:
        return np.zeros_like(i)
    m = i % (2 * (n - 1))
    return np.where(m < n, m, 2 * (n - 1) - m)


def real_windows(v: Footage, scale: str) -> list[tuple[int, int]]:
    """Train-range windows of the real corpus: 8 s, half overlapping (smoke: the first 32 frames only)."""
    lo, hi = v.split_range("train")
    if hi - lo < REAL_MIN_FRAMES:
        return []
    length = REAL_MIN_FRAMES if scale == "smoke" else min(hi - lo, max(REAL_MIN_FRAMES, round(REAL_WINDOW_S * v.fps)))
    starts = list(range(lo, hi - length + 1, max(1, length // 2)))
    if scale == "smoke":
        starts = starts[:1]
    elif starts[-1] + length < hi:
        starts.append(hi - length)
    return [(s, s + length) for s in starts]
