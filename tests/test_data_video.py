"""Decoding: decord and PyAV agree frame for frame, frame-exact random access, clamping, images."""

from __future__ import annotations

import numpy as np
import pytest

from nextvid.data import video as V
from nextvid.data.badinput import BadInputError


def moving_pattern(n: int, h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    """Frames that differ from each other everywhere, so a wrong frame index is always visible."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h // 8, w // 8, 3)).repeat(8, 0).repeat(8, 1)
    t = np.arange(n)[:, None, None, None]
    return ((base[None] + 7 * t + np.arange(w)[None, None, :, None]) % 256).astype(np.uint8)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    frames = moving_pattern(60)
    # x264 "faster" uses B-frames (presentation order != decode order); a keyframe every second
    V.write_video(d / "h264.mp4", frames, fps=25, options={"preset": "faster"})
    V.write_video(d / "vp9.webm", frames, fps=25, codec="libvpx-vp9", options={"deadline": "realtime", "cpu-used": "8"})
    V.write_video(d / "mpeg4.avi", frames, fps=25, codec="mpeg4")
    from PIL import Image

    Image.fromarray(frames[0]).save(d / "still.jpg", quality=90)
    return d


INDICES = np.array([0, 1, 2, 24, 25, 26, 37, 3, 3, 59, 48])


@pytest.mark.parametrize("name", ["h264.mp4", "vp9.webm", "mpeg4.avi"])
def test_decord_and_pyav_decode_identical_frames(media, name):
    path = str(media / name)
    d, p = V.DecordFrames(path), V.PyAVFrames(path)
    assert d.num_frames == p.num_frames == 60
    assert d.fps == pytest.approx(25) and p.fps == pytest.approx(25)
    a, b = d.get(INDICES), p.get(INDICES)
    assert a.shape == (len(INDICES), 48, 64, 3) and a.dtype == np.uint8
    # bit-identical: both use FFmpeg's decoder and its yuv420p -> rgb24 conversion
    assert np.array_equal(a, b), f"max abs difference {np.abs(a.astype(int) - b).max()}"


def test_pyav_random_access_is_frame_exact(media):
    """Seeking + pts matching returns exactly the i-th frame of a sequential decode."""
    import av

    path = str(media / "h264.mp4")
    with av.open(path) as c:
        seq = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])])
    reader = V.PyAVFrames(path)
    for idx in ([30], [59], [24, 25], [50, 10, 11]):
        assert np.array_equal(reader.get(np.array(idx)), seq[idx])
    # the decoded frames are the ones written (up to compression): frame i is nearest to source frame i
    src = moving_pattern(60).astype(int)
    errs = np.abs(seq[:, None].astype(int) - src[None]).mean(axis=(2, 3, 4))
    assert (errs.argmin(axis=1) == np.arange(60)).all()


def test_indices_past_the_end_are_clamped(media):
    for reader in (V.DecordFrames(str(media / "h264.mp4")), V.PyAVFrames(str(media / "h264.mp4"))):
        out = reader.get(np.array([58, 59, 60, 75]))
        assert np.array_equal(out[1], out[2]) and np.array_equal(out[1], out[3])


def test_decord_frame_count_one_too_many_is_dropped(media):
    """decord can count a frame it cannot decode (docs/data.md §10: box.mp4 456 vs 455): the reader retries
    once without it and from then on reports one frame less."""
    import decord

    reader = V.DecordFrames(str(media / "h264.mp4"))
    real = reader._vr

    class Overcounting:
        def get_batch(self, idx):
            if max(idx) >= 60:
                raise decord.DECORDError("cannot decode the last frame")
            return real.get_batch(idx)

    reader._vr, reader.num_frames = Overcounting(), 61
    out = reader.get(np.array([0, 60]))
    assert reader.num_frames == 60
    assert np.array_equal(out, real.get_batch([0, 59]).asnumpy())


def test_auto_backend_falls_back_to_pyav(media, monkeypatch):
    """`auto` decodes with PyAV a file decord cannot open (e.g. AV1, missing from decord's FFmpeg)."""

    def refuse(self, path, fallback=False):
        raise BadInputError(path, "unreadable", "cannot find video stream")

    monkeypatch.setattr(V.DecordFrames, "__init__", refuse)
    reader = V.open_frames(media / "h264.mp4", "auto")
    assert isinstance(reader, V.PyAVFrames) and reader.num_frames == 60
    with pytest.raises(BadInputError) as err:  # strict decord: the failure is classified by asking PyAV
        V.open_frames(media / "h264.mp4", "decord")
    assert err.value.reason == "unsupported_codec"


def test_image_is_a_frame_invariant_video(media):
    reader = V.open_frames(media / "still.jpg")
    assert reader.num_frames == 1
    out = reader.get(np.array([0, 5, 9]))
    assert out.shape == (3, 48, 64, 3)
    assert np.array_equal(out[0], out[2])


def test_probe_reports_size_and_frames(media):
    info = V.probe(media / "vp9.webm")
    assert info == {"num_frames": 60, "fps": pytest.approx(25.0), "height": 48, "width": 64}


def test_decord_width_bug_falls_back_to_pyav(tmp_path):
    """decord 0.6 cannot copy out frames of some widths (48 px here); `auto` decodes them with PyAV,
    strict `decord` reports a decode error."""
    frames = moving_pattern(12, h=32, w=48)
    V.write_video(tmp_path / "w48.mp4", frames, options={"preset": "ultrafast"})
    reader = V.open_frames(tmp_path / "w48.mp4", "auto")
    out = reader.get(np.array([0, 11]))
    assert out.shape == (2, 32, 48, 3)
    assert np.array_equal(out, V.PyAVFrames(str(tmp_path / "w48.mp4")).get(np.array([0, 11])))
    with pytest.raises(BadInputError) as err:
        V.open_frames(tmp_path / "w48.mp4", "decord").get(np.array([0]))
    assert err.value.reason == "decode_error"
