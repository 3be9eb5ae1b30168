"""The uint8 shard cache reproduces the decoded clips; the pretraining mixture is a pure function of
(seed, global sample index): deterministic, resumable from any position, worker-independent."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.utils.data import BatchSampler

from nextvid.data.datasets import EvalClips, ManifestSource, TrainClips, make_loader
from nextvid.data.manifest import Sample, read_manifest, write_manifest
from nextvid.data.mixture import Draw, MixtureDataset, MixtureSampler, pretraining_dataset
from nextvid.data.sampling import ClipSpec, sample_rng
from nextvid.data.shards import INDEX, ShardError, ShardSource, extract
from nextvid.data.transforms import centre_square
from nextvid.data.video import open_frames, read_all, write_video


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    for k, n in enumerate((30, 45, 12)):
        write_video(
            d / f"v{k}.mp4", rng.integers(0, 256, (n, 32, 40, 3), dtype=np.uint8), options={"preset": "ultrafast"}
        )
    from PIL import Image

    Image.fromarray(rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)).save(d / "img.png")
    rows = [
        Sample("v0.mp4", 0),
        Sample("v1.mp4", 1, 5, 40),
        Sample("v2.mp4", 0),
        Sample("img.png", 1),
        Sample("gone.mp4", 0),
    ]
    write_manifest(d / "m.tsv", rows, {"a": 0, "b": 1})
    return d


def test_cached_frames_equal_decoded_frames(corpus, tmp_path):
    index = extract(corpus / "m.tsv", tmp_path / "c1", max_bad_fraction=0.5)
    assert [r["reason"] for r in index["skips"]["records"]] == ["missing_file"]
    src = ShardSource(tmp_path / "c1", expect_manifest=read_manifest(corpus / "m.tsv"))
    assert len(src) == 4 and [src.label(i) for i in range(4)] == [0, 1, 0, 1]
    full, _ = read_all(corpus / "v1.mp4")
    assert np.array_equal(src.open(1).get(np.arange(35)), full[5:40])  # the row's [start, end) window
    assert src.open(3).num_frames == 1  # an image is one frame
    # step 2: every other frame, and a frame step of 4 becomes 2 in cached frames
    extract(corpus / "m.tsv", tmp_path / "c2", step=2, max_bad_fraction=0.5)
    src2 = ShardSource(tmp_path / "c2")
    full0, fps = read_all(corpus / "v0.mp4")
    assert np.array_equal(src2.open(0).get(np.arange(15)), full0[::2]) and src2.open(0).fps == fps / 2
    assert src2.adapt(ClipSpec(8, frame_step=4)).frame_step == 2
    with pytest.raises(ShardError, match="not a multiple"):
        src2.adapt(ClipSpec(8, frame_step=3))
    # size: the centre square, resized
    extract(corpus / "m.tsv", tmp_path / "c3", size=16, max_bad_fraction=0.5)
    assert np.array_equal(ShardSource(tmp_path / "c3").open(0).get(np.arange(30)), centre_square(full0, 16))


def test_cached_datasets_equal_streaming_datasets(corpus, tmp_path):
    extract(corpus / "m.tsv", tmp_path / "c", max_bad_fraction=0.5)
    stream, cached = ManifestSource(corpus / "m.tsv"), ShardSource(tmp_path / "c")
    stream_good = [i for i in range(len(stream)) if stream.manifest.samples[i].path != "gone.mp4"]
    spec = ClipSpec(6, frame_step=3)
    for j, i in enumerate(stream_good):
        a = TrainClips(stream, spec, 24, seed=3)[i]["video"]
        # the same (seed, epoch, index) draws on the cached sample give the same clip
        b = TrainClips(cached, spec, 24, seed=3).load(j, sample_rng(3, 0, i), j)["video"]
        assert torch.equal(b, a)
        assert torch.equal(EvalClips(stream, spec, 24, 2, 3)[i]["video"], EvalClips(cached, spec, 24, 2, 3)[j]["video"])


def test_cache_refuses_stale_or_incomplete_data(corpus, tmp_path):
    extract(corpus / "m.tsv", tmp_path / "c", max_bad_fraction=0.5)
    other = tmp_path / "other.tsv"
    write_manifest(other, [Sample(str(corpus / "v0.mp4"), 0)], {"a": 0, "b": 1})
    with pytest.raises(ShardError, match="stale"):
        ShardSource(tmp_path / "c", expect_manifest=read_manifest(other))
    index = json.loads((tmp_path / "c" / INDEX).read_text())
    shard = tmp_path / "c" / index["shards"][0]["file"]
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(ShardError, match="rebuild"):
        ShardSource(tmp_path / "c")
    with pytest.raises(ShardError, match="no index.json"):
        ShardSource(tmp_path / "nothing")


def test_reextraction_replaces_shards(corpus, tmp_path):
    first = extract(corpus / "m.tsv", tmp_path / "c", max_bad_fraction=0.5, shard_bytes=40 * 32 * 40 * 3)
    assert len(first["shards"]) > 1  # split into several shard files
    second = extract(corpus / "m.tsv", tmp_path / "c", max_bad_fraction=0.5)
    assert sorted(p.name for p in (tmp_path / "c").glob("shard-*")) == [s["file"] for s in second["shards"]]


def test_mixture_sampler_is_deterministic_resumable_and_weighted():
    weights, sizes = [0.25, 0.05, 0.18, 0.2, 0.32], [50, 7, 20, 1, 30]  # paper Table 6 weights (docs/method.md §4)
    a, b = MixtureSampler(weights, sizes, seed=11), MixtureSampler(weights, sizes, seed=11)
    full = a.draws(0, 6000)
    assert full == b.draws(0, 6000)
    assert b.draws(4321, 6000) == full[4321:]  # resume from a position: no replay needed
    assert full != MixtureSampler(weights, sizes, seed=12).draws(0, 6000)
    freq = np.bincount([d.source for d in full], minlength=5) / len(full)
    assert np.abs(freq - np.array(weights)).max() < 0.02
    assert all(0 <= d.sample < sizes[d.source] for d in full)
    never = MixtureSampler([1.0, 0.0], [5, 5], seed=0).draws(0, 500)
    assert {d.source for d in never} == {0}
    with pytest.raises(ValueError, match="no samples"):
        MixtureSampler([1.0, 1.0], [5, 0], seed=0)


def test_mixture_dataset_is_worker_independent(corpus, tmp_path):
    extract(corpus / "m.tsv", tmp_path / "c", max_bad_fraction=0.5)
    spec = ClipSpec(4, frame_step=2)
    stream = TrainClips(ManifestSource(corpus / "m.tsv"), spec, 16, seed=0)
    cached = TrainClips(ShardSource(tmp_path / "c"), spec, 16, seed=0)
    mix = MixtureDataset([stream, cached], [0.5, 0.5], seed=7, names=["stream", "cached"])  # draws gone.mp4 3 times

    def batches(workers):
        out = []
        for batch in make_loader(mix, batch_sampler=BatchSampler(range(100, 116), 4, False), workers=workers):
            out.append(batch)
        return out

    one, two = batches(0), batches(2)
    for x, y in zip(one, two):
        assert x["index"].tolist() == y["index"].tolist() and torch.equal(x["video"], y["video"])
    item = mix[107]
    assert item["index"] == 107 and {"source", "sample", "label"} <= set(item)
    skipped = sum(len(b["skipped"]) for b in one)
    assert skipped == 3 == sum(1 for g in range(100, 116) if mix.sampler.draw(g)[0] == Draw(0, 4))  # gone.mp4 only
    assert mix.describe()["sources"][1]["kind"] == "shards"


def test_pretraining_dataset_from_config(corpus, tmp_path):
    extract(corpus / "m.tsv", tmp_path / "c", max_bad_fraction=0.5)
    data = SimpleNamespace(
        sources=(
            SimpleNamespace(name="videos", manifest=str(corpus / "m.tsv"), weight=0.7, shards=""),
            SimpleNamespace(name="cached", manifest=str(corpus / "m.tsv"), weight=0.3, shards=str(tmp_path / "c")),
        ),
        frame_step=2,
        sample_fps=4.0,
        crop_scale=(0.3, 1.0),
        crop_aspect=(0.75, 1.35),
        hflip=True,
    )
    cfg = SimpleNamespace(data=data, seed=9, model=SimpleNamespace(encoder=SimpleNamespace(image_size=16)))
    ds = pretraining_dataset(cfg, frames=4)
    item = next(ds[g] for g in range(50) if "video" in ds[g])
    assert item["video"].shape == (3, 4, 16, 16)
    assert torch.equal(pretraining_dataset(cfg, frames=4)[item["index"]]["video"], item["video"])
    fps_cfg = SimpleNamespace(data=SimpleNamespace(**{**vars(data), "frame_step": 0}), seed=9, model=cfg.model)
    assert pretraining_dataset(fps_cfg, frames=4).sources[0].spec.fps == 4.0


def test_reader_for_the_cache_matches_the_video_reader(corpus, tmp_path):
    extract(corpus / "m.tsv", tmp_path / "c", max_bad_fraction=0.5)
    reader, cached = open_frames(corpus / "v2.mp4"), ShardSource(tmp_path / "c").open(2)
    assert cached.num_frames == reader.num_frames == 12 and cached.fps == reader.fps
    idx = np.array([0, 11, 13, 5])
    assert np.array_equal(cached.get(idx), reader.get(idx))
