"""Frame readers: videos through decord (primary) or PyAV (fallback, same API), images as
frame-invariant one-frame videos.

Every reader has `num_frames`, `fps`, `get(indices) -> (T, H, W, 3) uint8` and `close()`, and raises
`BadInputError` with a reason (nextvid.data.badinput) for anything it cannot read. Readers are
opened per sample inside `Dataset.__getitem__` (never before a DataLoader forks) with one decoder
thread each: parallelism comes from worker processes, not decoder threads.

decord can report one frame more than it decodes (docs/data.md §10: box.mp4 456 vs 455); a `get` that fails
on the last reported frame retries once with that frame dropped. Indices past the end are clamped.
"""

from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path
from typing import Literal, Optional, Protocol

import numpy as np

from nextvid.data.badinput import BadInputError

log = logging.getLogger(__name__)

Backend = Literal["auto", "decord", "pyav"]
BACKENDS = ("auto", "decord", "pyav")
VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".ogv", ".flv", ".3gp", ".ts")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class Frames(Protocol):
    num_frames: int
    fps: float

    def get(self, indices: np.ndarray) -> np.ndarray: ...

    def close(self) -> None: ...


def is_image(path: str | Path) -> bool:
    return str(path).lower().endswith(IMAGE_SUFFIXES)


def open_frames(path: str | Path, backend: Backend = "auto") -> Frames:
    """A reader for a video or an image. `auto`: decord, and PyAV where decord is not installed or
    cannot open or decode the file (e.g. AV1, which decord 0.6's FFmpeg lacks)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    path = str(path)
    _check_file(path)
    if is_image(path):
        return ImageFrames(path)
    if backend == "pyav" or (backend == "auto" and not _has_decord()):
        return PyAVFrames(path)
    try:
        return DecordFrames(path, fallback=backend == "auto")
    except BadInputError as err:
        if backend == "decord":
            raise BadInputError(path, *_classify(path, err.detail)) from None
        reader = PyAVFrames(path)  # where PyAV cannot read it either, its error names the precise reason
        log.debug("%s: decord cannot open it (%s); decoding with PyAV", path, err.detail)
        return reader


def _check_file(path: str) -> None:
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise BadInputError(path, "missing_file") from None
    except OSError as err:
        raise BadInputError(path, "unreadable", str(err)) from None
    if size == 0:
        raise BadInputError(path, "empty_file")


def _has_decord() -> bool:
    try:
        import decord  # noqa: F401
    except ImportError:
        return False
    return True


def clamp(indices: np.ndarray, num_frames: int) -> np.ndarray:
    return np.clip(np.asarray(indices, dtype=np.int64), 0, max(num_frames - 1, 0))


class ImageFrames:
    """An image as a one-frame video: every index reads the same frame."""

    fps = 0.0
    num_frames = 1

    def __init__(self, path: str):
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as img:
                self._frame = np.asarray(img.convert("RGB"))
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:  # PIL raises all of these
            raise BadInputError(path, "unreadable_image", _first_line(err)) from None
        self.height, self.width = self._frame.shape[:2]

    def get(self, indices: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self._frame, (len(indices), *self._frame.shape))

    def close(self) -> None:
        pass


class DecordFrames:
    """decord's VideoReader. With `fallback` (backend auto), frames decord fails to decode are
    decoded with PyAV instead, and PyAV serves the reader from then on: decord 0.6 fails on some
    frame widths (48 or 72 px: "DECORDArrayCopyFromTo: The size must exactly match")."""

    def __init__(self, path: str, fallback: bool = False):
        import decord

        decord.logging.set_level(decord.logging.QUIET)
        self.path, self.fallback = path, fallback
        self._pyav: Optional[PyAVFrames] = None
        self._dropped_last = False
        try:
            self._vr = decord.VideoReader(path, num_threads=1, ctx=decord.cpu(0))
        except (RuntimeError, decord.DECORDError) as err:  # open failures are RuntimeError, the rest DECORDError
            raise BadInputError(path, "unreadable", _first_line(err)) from None
        self.num_frames = len(self._vr)
        if self.num_frames == 0:
            raise BadInputError(path, "no_frames", "decord found no frames")
        self.fps = float(self._vr.get_avg_fps())

    def get(self, indices: np.ndarray) -> np.ndarray:
        import decord

        if self._pyav is not None:
            return self._pyav.get(indices)
        idx = clamp(indices, self.num_frames)
        try:
            return self._vr.get_batch(idx.tolist()).asnumpy()
        except (RuntimeError, decord.DECORDError) as err:
            if not self._dropped_last and self.num_frames > 1 and idx.max() == self.num_frames - 1:
                # decord's frame count can include one frame that does not decode: drop it, retry once
                log.debug(
                    "%s: frame %d of %d does not decode; treating the video as %d frames",
                    self.path,
                    self.num_frames - 1,
                    self.num_frames,
                    self.num_frames - 1,
                )
                self.num_frames -= 1
                self._dropped_last = True
                return self.get(indices)
            if self.fallback:
                log.debug(
                    "%s: decord cannot decode frames %s (%s); decoding with PyAV",
                    self.path,
                    idx.tolist(),
                    _first_line(err),
                )
                self._pyav = PyAVFrames(self.path)
                self.num_frames = self._pyav.num_frames
                return self._pyav.get(indices)
            raise BadInputError(
                self.path, "decode_error", f"frames {idx.min()}..{idx.max()}: {_first_line(err)}"
            ) from None

    def close(self) -> None:
        del self._vr
        if self._pyav is not None:
            self._pyav.close()


class PyAVFrames:
    """Frame-exact random access with PyAV: a demux pass lists the packets' presentation times
    (frame i = the i-th smallest pts, as decord counts), `get` seeks to the keyframe before the
    first wanted frame and decodes forward, matching frames by pts."""

    def __init__(self, path: str):
        import av

        self.path = path
        try:
            self._container = av.open(path)
        except (av.FFmpegError, OSError) as err:
            raise BadInputError(path, "unreadable", _first_line(err)) from None
        try:
            streams = self._container.streams.video
            if not streams:
                raise BadInputError(path, "no_video_stream")
            self._stream = stream = streams[0]
            if stream.codec_context is None:
                raise BadInputError(path, "unsupported_codec", "FFmpeg has no decoder for its video codec")
            stream.codec_context.thread_count = 1
            try:
                pts = [p.pts for p in self._container.demux(stream) if p.size and p.pts is not None]
            except av.FFmpegError as err:
                raise BadInputError(path, "decode_error", f"demuxing: {_first_line(err)}") from None
            self._pts = np.sort(np.asarray(pts, dtype=np.int64))
            self.num_frames = len(self._pts)
            if self.num_frames == 0:
                raise BadInputError(path, "no_frames", "no video packets")
            rate = stream.average_rate or stream.guessed_rate
            self.fps = float(rate) if rate else 0.0
        except BadInputError:
            self._container.close()
            raise

    def get(self, indices: np.ndarray) -> np.ndarray:
        import av

        idx = clamp(indices, self.num_frames)
        wanted = {int(self._pts[i]): None for i in np.unique(idx)}
        first = int(self._pts[idx.min()])
        last_pts = max(wanted)
        decoded = 0
        frame = None
        try:
            self._container.seek(first, stream=self._stream, backward=True, any_frame=False)
            self._stream.codec_context.flush_buffers()
            for frame in self._container.decode(self._stream):
                decoded += 1
                if frame.pts in wanted:
                    wanted[frame.pts] = frame.to_ndarray(format="rgb24")
                if frame.pts is not None and frame.pts >= last_pts:
                    break
        except av.FFmpegError as err:
            reason = "no_frames" if decoded == 0 and idx.min() == 0 else "decode_error"
            raise BadInputError(self.path, reason, f"frames {idx.min()}..{idx.max()}: {_first_line(err)}") from None
        missing = [p for p, f in wanted.items() if f is None]
        if missing:
            got = [p for p, f in wanted.items() if f is not None]
            if got and min(missing) > max(got):
                # the index promises frames at the end that do not decode: clamp to the last decoded one
                n = int(np.searchsorted(self._pts, max(got))) + 1
                log.debug("%s: only %d of %d indexed frames decode; clamping", self.path, n, self.num_frames)
                self.num_frames = n
                return self.get(indices)
            reason = "no_frames" if decoded == 0 else "decode_error"
            raise BadInputError(self.path, reason, f"{len(missing)} of the wanted frames did not decode")
        return np.stack([wanted[int(self._pts[i])] for i in idx])

    def close(self) -> None:
        self._container.close()


def _classify(path: str, detail: str) -> tuple[str, str]:
    """Why decord cannot read a video, in our reasons, by asking PyAV (decord's errors do not say)."""
    try:
        info = probe(path, "pyav")
    except BadInputError as err:
        return err.reason, err.detail
    return "unsupported_codec", (
        f"decord cannot read it ({detail}) but PyAV decodes all {info['num_frames']} frames: use backend auto or pyav"
    )


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1][-300:] if lines else type(err).__name__


def probe(path: str | Path, backend: Backend = "auto") -> dict:
    """Open a file and decode its first and last frame: what `nextvid data check` verifies per file.
    Returns {"num_frames", "fps", "height", "width"}; raises BadInputError."""
    reader = open_frames(path, backend)
    try:
        try:
            first = reader.get(np.array([0]))
        except BadInputError as err:
            raise BadInputError(err.path, "no_frames", err.detail) from None
        reader.get(np.array([reader.num_frames - 1]))
        return {
            "num_frames": int(reader.num_frames),
            "fps": float(reader.fps),
            "height": int(first.shape[1]),
            "width": int(first.shape[2]),
        }
    finally:
        reader.close()


def read_all(
    path: str | Path, backend: Backend = "auto", step: int = 1, limit: Optional[int] = None
) -> tuple[np.ndarray, float]:
    """Every `step`-th frame (at most `limit`) and the video's fps: for extraction and tests."""
    reader = open_frames(path, backend)
    try:
        idx = np.arange(0, reader.num_frames, step)[:limit]
        return reader.get(idx), reader.fps
    finally:
        reader.close()


def write_video(
    path: str | Path,
    frames: np.ndarray,
    fps: float = 25,
    codec: str = "libx264",
    keyframe_every: Optional[int] = None,
    options: Optional[dict[str, str]] = None,
    exact_yuv: bool = False,
) -> None:
    """Encode (T, H, W, 3) uint8 frames (H, W even) with PyAV, yuv420p, a keyframe every second by
    default (docs/data.md §10: 25-35% faster random access than x264's default GOP), written atomically.
    `exact_yuv`: convert RGB -> YUV here (rgb_to_yuv420p) rather than in FFmpeg, whose rgb24 path
    reads uninitialised padding: the same frames then encode to the same bytes."""
    import av

    from nextvid.io import atomic_path

    frames = np.asarray(frames, dtype=np.uint8)
    path = Path(path)
    with atomic_path(path) as tmp:
        with av.open(str(tmp), "w", format=_FORMATS.get(path.suffix.lower())) as container:
            stream = container.add_stream(codec, rate=Fraction(round(fps * 1000), 1000))
            stream.height, stream.width = frames.shape[1:3]
            stream.pix_fmt = "yuv420p"
            stream.codec_context.gop_size = keyframe_every or max(1, round(fps))
            stream.codec_context.thread_count = 1
            if options:
                stream.options = dict(options)
            planes = (rgb_to_yuv420p(frames), "yuv420p") if exact_yuv else (frames, "rgb24")
            for f in planes[0]:
                for packet in stream.encode(av.VideoFrame.from_ndarray(f, format=planes[1])):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)


def rgb_to_yuv420p(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) RGB -> (T, 3H/2, W) yuv420p planes as PyAV lays them out. BT.601 limited range in
    integer arithmetic (bit-exact everywhere, always inside [16, 240]); chroma from 2x2 RGB means."""
    t, h, w = frames.shape[:3]
    r, g, b = (frames[..., i].astype(np.int32) for i in range(3))
    out = np.empty((t, h * 3 // 2, w), dtype=np.uint8)
    out[:, :h] = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16
    r, g, b = ((a[:, ::2, ::2] + a[:, 1::2, ::2] + a[:, ::2, 1::2] + a[:, 1::2, 1::2] + 2) >> 2 for a in (r, g, b))
    out[:, h : h + h // 4] = (((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128).reshape(t, h // 4, w)
    out[:, h + h // 4 :] = (((112 * r - 94 * g - 18 * b + 128) >> 8) + 128).reshape(t, h // 4, w)
    return out


_FORMATS = {".mp4": "mp4", ".webm": "webm", ".mkv": "matroska", ".avi": "avi", ".mov": "mov"}
