"""Clip sampling and transforms: index math, short videos, deterministic evaluation segments and
views, one set of augmentation parameters per clip, the model's input convention."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF

from nextvid.data.datasets import EvalClips, ManifestSource, TrainClips
from nextvid.data.manifest import Sample, write_manifest
from nextvid.data.sampling import (
    ClipSpec,
    clip_indices,
    offsets,
    random_clip,
    sample_rng,
    segment_clips,
    segment_starts,
    span,
)
from nextvid.data.transforms import RandomResizedCropFlip, SpatialViews, as_tchw, view_origins
from nextvid.data.video import write_video


def test_frame_step_index_math():
    assert offsets(16, 4).tolist() == list(range(0, 64, 4))
    assert span(16, 4) == 61
    assert clip_indices(10, 4, 3, 100).tolist() == [10, 13, 16, 19]


def test_target_fps_index_math():
    spec = ClipSpec(5, fps=4.0)
    assert spec.step(30.0) == 7.5  # 30 fps sampled at 4 fps
    assert offsets(5, 7.5).tolist() == [0, 8, 15, 23, 30]  # round half up, no drift
    assert spec.step(4.0) == 1.0
    assert offsets(16, 7.5)[-1] == 113  # 15 * 7.5 = 112.5 -> 113: 16 frames cover 3.75 s + 1 frame
    with pytest.raises(ValueError):
        ClipSpec(16)  # neither frame_step nor fps
    with pytest.raises(ValueError):
        ClipSpec(16, frame_step=4, fps=4.0)  # both


def test_short_videos_pad_or_loop():
    assert clip_indices(0, 6, 2, 7, "pad").tolist() == [0, 2, 4, 6, 6, 6]
    assert clip_indices(0, 6, 2, 7, "loop").tolist() == [0, 2, 4, 6, 1, 3]
    rng = sample_rng(0, 1)
    assert random_clip(3, ClipSpec(4, frame_step=2), 25.0, rng).tolist() == [0, 2, 2, 2]
    assert random_clip(1, ClipSpec(4, frame_step=2), 25.0, rng).tolist() == [0, 0, 0, 0]  # an image


def test_random_clips_stay_inside_and_cover_all_starts():
    spec = ClipSpec(4, frame_step=3)  # span 10
    starts = set()
    for i in range(400):
        idx = random_clip(20, spec, 25.0, sample_rng(7, i))
        assert idx.min() >= 0 and idx.max() <= 19 and (np.diff(idx) == 3).all()
        starts.add(int(idx[0]))
    assert starts == set(range(11))
    # a pure function of the key
    assert np.array_equal(random_clip(20, spec, 25.0, sample_rng(7, 3)), random_clip(20, spec, 25.0, sample_rng(7, 3)))


@pytest.mark.parametrize(
    "n,clip_span,segments", [(100, 10, 4), (100, 61, 8), (300, 61, 2), (40, 61, 3), (17, 5, 3), (90, 30, 1)]
)
def test_segments_cover_their_parts(n, clip_span, segments):
    starts = segment_starts(n, clip_span, segments)
    assert starts == sorted(starts) and len(starts) == segments
    for s, start in enumerate(starts):
        centre = (s + 0.5) * n / segments
        assert 0 <= start <= max(n - clip_span, 0)
        if clip_span <= n:
            assert start <= centre <= start + clip_span  # the clip contains its part's centre
        if clip_span <= n / segments:  # clips fit in their parts: each lies inside its own part
            assert s * n / segments <= start + 0.5 and start + clip_span <= (s + 1) * n / segments + 0.5
    if segments == 1:
        assert abs(starts[0] - max(n - clip_span, 0) / 2) <= 0.5  # centred


def test_segment_clips_are_deterministic_and_even():
    spec = ClipSpec(4, frame_step=2)  # span 7
    clips = segment_clips(80, spec, 25.0, 4)
    assert [c.tolist() for c in clips] == [[7, 9, 11, 13], [27, 29, 31, 33], [47, 49, 51, 53], [67, 69, 71, 73]]
    assert [c.tolist() for c in segment_clips(80, spec, 25.0, 4)] == [c.tolist() for c in clips]


def test_view_origins_along_the_long_side():
    assert view_origins(32, 64, 32, 3) == [(0, 0), (0, 16), (0, 32)]  # landscape: left, centre, right
    assert view_origins(64, 32, 32, 3) == [(0, 0), (16, 0), (32, 0)]  # portrait: top, centre, bottom
    assert view_origins(40, 64, 32, 1) == [(4, 16)]  # one view: the centre


def test_random_resized_crop_params_and_ranges():
    aug = RandomResizedCropFlip(32)
    flips = 0
    for i in range(300):
        p = aug.params(120, 160, sample_rng(1, i))
        assert 0 <= p.top and p.top + p.height <= 120 and 0 <= p.left and p.left + p.width <= 160
        area = p.height * p.width / (120 * 160)
        assert 0.3 - 0.02 <= area <= 1.0 and 0.75 - 0.05 <= p.width / p.height <= 1.35 + 0.05
        flips += p.flip
    assert 100 < flips < 200


def test_one_crop_for_all_frames_and_the_output_convention():
    frames = np.random.default_rng(0).integers(0, 256, (6, 40, 56, 3), dtype=np.uint8)
    aug = RandomResizedCropFlip(24)
    out = aug(frames, sample_rng(3, 4))
    assert out.shape == (3, 6, 24, 24) and out.dtype == torch.float32 and out.is_contiguous()
    assert out.min() >= -1 and out.max() <= 1
    p = aug.params(40, 56, sample_rng(3, 4))  # the same draws
    for t in range(6):  # every frame alone, with the clip's one set of parameters
        one = TF.resized_crop(as_tchw(frames[t : t + 1]), p.top, p.left, p.height, p.width, [24, 24], antialias=True)
        if p.flip:
            one = one.flip(-1)
        assert torch.equal(out[:, t], one[0].float() / 127.5 - 1)


def test_normalisation_is_mean_half_std_half():
    frames = np.array([0, 255, 128], dtype=np.uint8).reshape(3, 1, 1, 1).repeat(3, 3).repeat(4, 1).repeat(4, 2)
    out = SpatialViews(4, 1)(frames)
    assert out.shape == (1, 3, 3, 4, 4)
    assert out[0, 0, :, 0, 0].tolist() == pytest.approx([-1.0, 1.0, (128 / 255 - 0.5) / 0.5], abs=1e-6)


@pytest.fixture(scope="module")
def clips_manifest(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    write_video(d / "wide.mp4", rng.integers(0, 256, (50, 32, 64, 3), dtype=np.uint8), options={"preset": "ultrafast"})
    from PIL import Image

    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(d / "img.png")
    write_manifest(d / "m.tsv", [Sample("wide.mp4", 0), Sample("img.png", 1)], {"a": 0, "b": 1})
    return d / "m.tsv"


def test_eval_clips_segments_times_views(clips_manifest):
    spec = ClipSpec(4, frame_step=3)
    ds = EvalClips(ManifestSource(clips_manifest), spec, 32, segments=2, views=3)
    item = ds[0]
    assert item["video"].shape == (6, 3, 4, 32, 32) and item["label"] == 0 and item["index"] == 0
    assert torch.equal(ds[0]["video"], item["video"])  # deterministic
    reader = ds.source.open(0)
    for s, idx in enumerate(segment_clips(reader.num_frames, spec, reader.fps, 2)):  # segment-major
        views = SpatialViews(32, 3)(reader.get(idx))
        for v in range(3):
            assert torch.equal(item["video"][s * 3 + v], views[v])
    assert not torch.equal(item["video"][0], item["video"][2])  # left and right views differ


def test_images_are_frame_invariant_clips(clips_manifest):
    train = TrainClips(ManifestSource(clips_manifest), ClipSpec(8, frame_step=2), 24, seed=5)
    video = train[1]["video"]
    assert video.shape == (3, 8, 24, 24)
    assert all(torch.equal(video[:, t], video[:, 0]) for t in range(8))
    ev = EvalClips(ManifestSource(clips_manifest), ClipSpec(8, frame_step=2), 24, segments=2, views=3)[1]["video"]
    assert ev.shape == (6, 3, 8, 24, 24) and torch.equal(ev[0], ev[3])  # both segments are the same image


def test_train_clips_depend_on_seed_epoch_and_index_only(clips_manifest):
    a = TrainClips(ManifestSource(clips_manifest), ClipSpec(4, frame_step=2), 24, seed=1)
    b = TrainClips(ManifestSource(clips_manifest), ClipSpec(4, frame_step=2), 24, seed=1)
    assert torch.equal(a[0]["video"], b[0]["video"])
    b.epoch = 1
    assert not torch.equal(a[0]["video"], b[0]["video"])
