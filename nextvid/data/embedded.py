"""Build the embedded default: four labelled probe benchmarks and a pretraining corpus, as real files.

Everything is H.264 mp4 (keyframe every second) or PNG plus manifests, so the embedded run goes
through the same decode path as Kinetics would. The build is a pure function of (sources, seed,
scale, GENERATOR_VERSION): every sample draws from its own seeded generator, so the result does not
depend on the number of workers or the order they finish in. The output directory is written in a
staging directory next to it and swapped in at the end: a reader (or a rerun after a kill) sees the
old build or the new one, never a mix. Layout and benchmark definitions: docs/benchmarks.md.
"""

from __future__ import annotations

import ctypes
import json
import logging
import multiprocessing
import os
import platform
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np
from PIL import Image

from nextvid.data import sources, synth
from nextvid.data.manifest import UNLABELLED, Sample, write_manifest
from nextvid.io import atomic_write_json, sha256_file
from nextvid.progress import Progress

log = logging.getLogger(__name__)

# Bump whenever a change alters any written byte or label; it is part of every file name and info JSON.
GENERATOR_VERSION = 1
FPS = 8  # synthetic clips: the paper samples 4 fps, i.e. a frame step of 2 here
SIZE = synth.SIZE
SPLITS = ("train", "val")
TRAIN_END, VAL_START = 0.70, 0.75  # each real video: train backgrounds from [0, 70%), val from [75%, 100%)
REAL_WINDOW_S, REAL_MIN_FRAMES = 8.0, 32  # real corpus clips: 8 s windows (half overlapping), >= 32 frames
# libx264, one thread: the output is then byte-identical for the same input (checked on PyAV 18.1 / FFmpeg 8).
# RGB -> YUV is done here in integer arithmetic: FFmpeg's swscale rgb24 path read uninitialised padding
# and made the encoded bytes vary between runs.
X264 = {"preset": "veryfast", "crf": "23", "threads": "1"}
_M_PERTURB = -6  # glibc mallopt parameter (see _worker_init)
_HAS_GLIBC = platform.libc_ver()[0] == "glibc"


@dataclass(frozen=True)
class Benchmark:
    name: str
    mirrors: str
    tests: str
    classes: tuple[str, ...]
    frames: int  # 1: a still image, written as PNG
    uid: int  # part of every sample's seed

    @property
    def is_image(self) -> bool:
        return self.frames == 1


FMNIST_CLASSES = ("t-shirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot")
BENCHMARKS = (
    Benchmark("images", "IN1K", "object class from a still image (image path)", FMNIST_CLASSES, 1, 1),
    Benchmark("appearance", "K400", "object class in a video with motion as nuisance", FMNIST_CLASSES, 32, 2),
    Benchmark("motion", "SSv2", "motion pattern; object class random: needs time", synth.MOTIONS, 32, 3),
    Benchmark("motion_sequence", "Diving48", "ordered pair of motions over a clip twice as long: needs temporal order",
              tuple(synth.sequence_name(p) for p in synth.SEQUENCES), 64, 4),
)
# samples per class (train, val)
SCALES: dict[str, dict[str, tuple[int, int]]] = {
    "default": {"images": (200, 50), "appearance": (100, 40), "motion": (125, 50), "motion_sequence": (80, 30)},
    "smoke": {"images": (4, 2), "appearance": (3, 2), "motion": (3, 2), "motion_sequence": (2, 1)},
}
# pretraining sources and weights, by their role in the paper's mixture [paper Table 6, docs/method.md §4]
MIXTURE = (
    ("real", 0.50, "InternVid 0.20 + in-house 0.32: uncurated real footage"),
    ("images", 0.25, "ImageNet-1K 0.25: still images"),
    ("appearance", 0.10, "K400 0.18 + SSv2 0.05: the probe benchmarks' training splits (0.25 together)"),
    ("motion", 0.10, "K400 0.18 + SSv2 0.05: the probe benchmarks' training splits (0.25 together)"),
    ("motion_sequence", 0.05, "K400 0.18 + SSv2 0.05: the probe benchmarks' training splits (0.25 together)"),
)


# --- real footage ---------------------------------------------------------------------------------

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
    key = (str(sources_dir.resolve()), tuple(record[f"videos/{sources.video_path(sources_dir, n).name}"]["sha256"]
                                             for n in sources.VIDEO_NAMES))
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
        a = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)[:, :plane.width]
        planes.append(np.asarray(Image.fromarray(np.ascontiguousarray(a)).resize(size, Image.BILINEAR, reducing_gap=2.0), dtype=np.int32))
    y, u, v = planes
    if frame.format.name == "yuvj420p":  # full range
        y, u, v = (y * 219 + 127) // 255 + 16, (u - 128) * 224 // 255 + 128, (v - 128) * 224 // 255 + 128
    c, d, e = y - 16, u - 128, v - 128
    rgb = np.stack([298 * c + 409 * e, 298 * c - 100 * d - 208 * e, 298 * c + 516 * d], axis=-1)
    return ((rgb + 128) >> 8).clip(0, 255).astype(np.uint8)


def background_clip(footage: tuple[Footage, ...], rng: np.random.Generator, split: str, frames: int) -> tuple[np.ndarray, dict]:
    """A SIZE x SIZE crop of a random real video from the split's time range; played forward then
    backward (ping-pong) when the range is shorter than the clip."""
    v = footage[int(rng.integers(len(footage)))]
    lo, hi = v.split_range(split)
    start = int(rng.integers(lo, hi))
    idx = lo + _pingpong(start - lo + np.arange(frames), hi - lo)
    h, w = v.frames.shape[1:3]
    y0, x0 = int(rng.integers(0, h - SIZE + 1)), int(rng.integers(0, w - SIZE + 1))
    flip = bool(rng.random() < 0.5)
    clip = v.frames[idx, y0:y0 + SIZE, x0:x0 + SIZE]
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


# --- writers ----------------------------------------------------------------------------------------

def rgb_to_yuv420p(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) RGB -> (T, 3H/2, W) yuv420p planes as PyAV lays them out. BT.601 limited range in
    integer arithmetic (bit-exact everywhere, always inside [16, 240]); chroma from 2x2 RGB means."""
    t, h, w = frames.shape[:3]
    r, g, b = (frames[..., i].astype(np.int32) for i in range(3))
    out = np.empty((t, h * 3 // 2, w), dtype=np.uint8)
    out[:, :h] = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16
    r, g, b = ((a[:, ::2, ::2] + a[:, 1::2, ::2] + a[:, ::2, 1::2] + a[:, 1::2, 1::2] + 2) >> 2 for a in (r, g, b))
    out[:, h:h + h // 4] = (((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128).reshape(t, h // 4, w)
    out[:, h + h // 4:] = (((112 * r - 94 * g - 18 * b + 128) >> 8) + 128).reshape(t, h // 4, w)
    return out


def encoder_name() -> str:
    if "libx264" in av.codecs_available:
        return "libx264"
    log.warning("this PyAV build has no libx264; writing MPEG-4 Part 2 instead (files are then not H.264)")
    return "mpeg4"


def write_video(path: Path, frames: np.ndarray, fps: float) -> None:
    """H.264 mp4, yuv420p, a keyframe every second (gop = fps, no scene-cut keyframes, no B-frames)."""
    h, w = frames.shape[1:3]
    gop = max(1, round(fps))
    codec = encoder_name()
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream(codec, rate=Fraction(round(fps * 1000), 1000))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.codec_context.thread_count = 1
        if codec == "libx264":
            stream.options = {**X264, "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:"
                              "colorprim=smpte170m:transfer=smpte170m:colormatrix=smpte170m:range=tv"}
        for f in rgb_to_yuv420p(frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="yuv420p")))
        container.mux(stream.encode())


def write_image(path: Path, image: np.ndarray) -> None:
    Image.fromarray(image).save(path, format="PNG", compress_level=6)


# --- samples ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Task:
    bench: str
    split: str
    index: int
    label: int
    fmnist_index: int
    relpath: str  # relative to the benchmark directory


_STATE: dict = {}  # read-only in workers (inherited through fork): footage, Fashion-MNIST, seed, staging dir


def _render_task(task: Task) -> tuple[str, str, dict]:
    """Render and write one sample; returns (relpath, sha256, metadata). Pure function of the task + seed."""
    bench = next(b for b in BENCHMARKS if b.name == task.bench)
    rng = np.random.default_rng([_STATE["seed"], bench.uid, SPLITS.index(task.split), task.index])
    images, labels = _STATE["fmnist"][task.split]
    tint = synth.random_tint(rng)
    sprite = synth.make_sprite(images[task.fmnist_index], tint)
    meta: dict = {"label": task.label, "fmnist_index": task.fmnist_index, "object_class": int(labels[task.fmnist_index]),
                  "tint": list(tint)}
    if bench.name == "images":
        traj = synth.still_pose(rng)
    elif bench.name == "appearance":
        traj = synth.appearance_trajectory(rng, bench.frames)
    elif bench.name == "motion":
        traj = synth.motion_trajectory(synth.MOTIONS[task.label], rng, bench.frames)
    else:
        traj, meta["switch_frame"] = synth.sequence_trajectory(synth.SEQUENCES[task.label], rng, bench.frames)
    background, meta["background"] = background_clip(_STATE["footage"], rng, task.split, bench.frames)
    frames = synth.render(sprite, traj, background)
    meta["trajectory"] = traj.summary()
    path = _STATE["staging"] / bench.name / task.relpath
    if bench.is_image:
        write_image(path, frames[0])
    else:
        write_video(path, frames, FPS)
    return task.relpath, sha256_file(path), meta


def _real_task(job: tuple[str, int, int, int]) -> tuple[str, str, dict]:
    name, k, start, end = job
    v = next(f for f in _STATE["footage"] if f.name == name)
    relpath = f"real/v{GENERATOR_VERSION}_{name}_{k:02d}.mp4"
    path = _STATE["staging"] / "corpus" / relpath
    write_video(path, v.frames[start:end], v.fps)
    meta = {"video": name, "start_frame": start, "end_frame": end, "fps": round(v.fps, 3), "size": list(v.frames.shape[1:3])}
    return relpath, sha256_file(path), meta


def plan(bench: Benchmark, split: str, seed: int, per_class: int, fmnist_labels: np.ndarray) -> list[Task]:
    """Balanced labels in a seeded order; the Fashion-MNIST image of each sample (class = label for
    images/appearance, random for the motion benchmarks) drawn without reuse where the label is the class."""
    rng = np.random.default_rng([seed, bench.uid, SPLITS.index(split), 1 << 20])
    labels = rng.permutation(np.repeat(np.arange(len(bench.classes)), per_class))
    if bench.name in ("images", "appearance"):
        pools = {c: rng.permutation(np.flatnonzero(fmnist_labels == c)) for c in range(len(bench.classes))}
        seen = {c: 0 for c in pools}
        objects = []
        for c in labels:
            objects.append(int(pools[c][seen[c]]))
            seen[c] += 1
    else:
        objects = [int(i) for i in rng.integers(0, len(fmnist_labels), size=len(labels))]
    ext = "png" if bench.is_image else "mp4"
    return [Task(bench.name, split, i, int(c), o, f"{split}/v{GENERATOR_VERSION}s{seed}_{i:05d}.{ext}")
            for i, (c, o) in enumerate(zip(labels, objects))]


# --- the build --------------------------------------------------------------------------------------

def build_embedded(out_dir: str | Path, sources_dir: str | Path | None = None, seed: int = 0,
                   scale: Literal["default", "smoke"] = "default", workers: int = 1) -> dict:
    """Build the four benchmarks, the pretraining corpus and `mixture.json` into `out_dir`; return the
    top-level info (also written to `out_dir/info.json`)."""
    if scale not in SCALES:
        raise ValueError(f"scale {scale!r}: choose from {', '.join(SCALES)}")
    t0 = time.perf_counter()
    src = Path(sources_dir) if sources_dir else sources.default_sources_dir()
    record = sources.require(src)
    out = Path(out_dir)
    staging = out.parent / f".{out.name}.building-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    timings: dict[str, float] = {}
    try:
        _STATE.update(seed=seed, staging=staging, footage=load_footage(src, record),
                      fmnist={"train": sources.load_fashion_mnist(src, "train"), "val": sources.load_fashion_mnist(src, "test")})
        timings["load_sources_s"] = time.perf_counter() - t0
        tasks = {(b.name, split): plan(b, split, seed, SCALES[scale][b.name][SPLITS.index(split)], _STATE["fmnist"][split][1])
                 for b in BENCHMARKS for split in SPLITS}
        real_jobs = [(v.name, k, s, e) for v in _STATE["footage"] for k, (s, e) in enumerate(real_windows(v, scale))]
        for b in BENCHMARKS:
            for split in SPLITS:
                (staging / b.name / split).mkdir(parents=True)
        (staging / "corpus" / "real").mkdir(parents=True)
        t1 = time.perf_counter()
        flat = [t for key in tasks for t in tasks[key]]
        with _pool(workers) as pool, Progress(len(flat) + len(real_jobs), f"embedded data ({scale})", "files") as progress:
            rendered, real = [], []
            for out_list, results_in_order in ((rendered, pool.map(_render_task, flat, chunksize=4)), (real, pool.map(_real_task, real_jobs))):
                for result in results_in_order:  # in submission order, as they finish
                    out_list.append(result)
                    progress.update(len(rendered) + len(real))
        timings["render_encode_s"] = time.perf_counter() - t1
        results = dict(zip([(t.bench, t.split, t.index) for t in flat], rendered))
        common = {"generator_version": GENERATOR_VERSION, "seed": seed, "scale": scale,
                  "encoder": {"codec": encoder_name(), **X264, "gop": "fps", "bframes": 0, "pix_fmt": "yuv420p",
                              "byte_identical": encoder_name() == "libx264" and _HAS_GLIBC,
                              "pyav": av.__version__, "ffmpeg": _ffmpeg_version()},
                  "sources": {k: v["sha256"] for k, v in sorted(record.items())}}
        info = {**common, "benchmarks": {}, "corpus": {}}
        for b in BENCHMARKS:
            info["benchmarks"][b.name] = _finish_benchmark(staging, b, tasks, results, common)
        info["corpus"] = _finish_corpus(staging, tasks, real, common)
        info["mixture"] = "mixture.json"
        timings["total_s"] = time.perf_counter() - t0
        info["timings"] = {k: round(v, 2) for k, v in timings.items()}
        atomic_write_json(staging / "info.json", info)
        _swap(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        _STATE.clear()
    log.info("embedded default (%s, seed %d) built in %s in %.1f s", scale, seed, out, timings["total_s"])
    return info


def _finish_benchmark(staging: Path, b: Benchmark, tasks: dict, results: dict, common: dict) -> dict:
    label_map = {name: i for i, name in enumerate(b.classes)}
    bdir = staging / b.name
    info = {**common, "benchmark": b.name, "mirrors": b.mirrors, "tests": b.tests, "num_classes": len(b.classes),
            "chance": round(1 / len(b.classes), 4), "frames": b.frames, "fps": None if b.is_image else FPS,
            "size": [SIZE, SIZE], "kind": "image" if b.is_image else "video", "classes": label_map,
            "backgrounds": {"train": f"first {TRAIN_END:.0%} of every source video", "val": f"last {1 - VAL_START:.0%}"},
            "objects": {"train": "Fashion-MNIST train split", "val": "Fashion-MNIST test split"},
            "manifests": {}, "files": {}}
    for split in SPLITS:
        split_tasks = tasks[(b.name, split)]
        samples = [Sample(t.relpath, t.label) for t in split_tasks]
        sha = write_manifest(bdir / f"{split}.tsv", samples, label_map)
        lines = [json.dumps({"path": t.relpath, **results[(b.name, split, t.index)][2]}, sort_keys=True) for t in split_tasks]
        (bdir / f"{split}.meta.jsonl").write_text("\n".join(lines) + "\n")
        counts = np.bincount([t.label for t in split_tasks], minlength=len(b.classes))
        info["manifests"][split] = {"path": f"{split}.tsv", "sha256": sha, "samples": len(samples), "per_class": counts.tolist()}
        info["files"].update({t.relpath: results[(b.name, split, t.index)][1] for t in split_tasks})
    atomic_write_json(bdir / "info.json", info)
    return {k: info[k] for k in ("mirrors", "num_classes", "chance", "frames")} | {
        "manifests": {s: {"path": f"{b.name}/{m['path']}", "sha256": m["sha256"], "samples": m["samples"]}
                      for s, m in info["manifests"].items()}}


def _finish_corpus(staging: Path, tasks: dict, real: list, common: dict) -> dict:
    cdir = staging / "corpus"
    manifests = {"real": ([Sample(p) for p, _, _ in real], [{"path": p, **m} for p, _, m in real])}
    for b in BENCHMARKS:  # the training splits only: nothing from a val split is seen in pretraining
        manifests[b.name] = ([Sample(f"../{b.name}/{t.relpath}") for t in tasks[(b.name, "train")]], None)
    info = {**common, "manifests": {}, "files": {p: sha for p, sha, _ in real},
            "real": {"window_s": REAL_WINDOW_S, "min_frames": REAL_MIN_FRAMES, "time_range": f"first {TRAIN_END:.0%}",
                     "size": f"short side {SIZE}, source aspect", "fps": "source fps", "clips": manifests["real"][1]}}
    for name, (samples, _) in manifests.items():
        sha = write_manifest(cdir / f"{name}.tsv", samples, {})
        info["manifests"][name] = {"path": f"{name}.tsv", "sha256": sha, "samples": len(samples), "label": UNLABELLED}
    atomic_write_json(cdir / "info.json", info)
    mixture = {"generator_version": GENERATOR_VERSION, "paths": "relative to this file",
               "sources": [{"name": n, "manifest": f"corpus/{n}.tsv", "weight": w} for n, w, _ in MIXTURE],
               "provenance": {n: {"mirrors": why, "sha256": info["manifests"][n]["sha256"], "samples": info["manifests"][n]["samples"]}
                              for n, _, why in MIXTURE}}
    atomic_write_json(staging / "mixture.json", mixture)
    return {n: {"path": f"corpus/{m['path']}", "sha256": m["sha256"], "samples": m["samples"]} for n, m in info["manifests"].items()}


def _pool(workers: int) -> ProcessPoolExecutor:
    """Forked worker processes (they share the decoded footage); used even for one worker so that
    `_worker_init`'s allocator setting stays out of the caller's process."""
    return ProcessPoolExecutor(max(1, workers), mp_context=multiprocessing.get_context("fork"), initializer=_worker_init)


def _worker_init() -> None:
    """Make libx264's output byte-identical from run to run. With one thread it still read some
    uninitialised heap memory here (PyAV 18.1 / FFmpeg 8): the same clip encoded to different bytes
    depending on what the process had freed before. glibc's M_PERTURB fills every allocation with a
    fixed byte, which made repeated builds identical in every trial. Elsewhere (no glibc) the files
    may differ in their bytes; the manifests never do."""
    if _HAS_GLIBC:
        ctypes.CDLL("libc.so.6").mallopt(_M_PERTURB, 0x5A)


def _swap(staging: Path, out: Path) -> None:
    """Replace `out` by the finished staging directory (two renames; the old build is removed last)."""
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        os.replace(out, old)
    os.replace(staging, out)
    shutil.rmtree(old, ignore_errors=True)


def _ffmpeg_version() -> str:
    try:
        return ".".join(str(x) for x in av.library_versions["libavcodec"])
    except (AttributeError, KeyError):
        return "unknown"


# --- command line (`nextvid data embedded`) ----------------------------------------------------------

def configure_embedded(parser) -> None:
    parser.add_argument("--sources", default=None, help="fetched sources (`nextvid data fetch`); default $NEXTVID_SOURCES or ~/.cache/nextvid/sources")
    parser.add_argument("--out", required=True, help="output directory (replaced as a whole when the build finishes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", choices=sorted(SCALES), default="default", help="default: ~1k train clips per benchmark; smoke: tens, for CI")
    parser.add_argument("--workers", type=int, default=1, help="processes rendering and encoding (the output does not depend on it)")


def run_embedded(args) -> int:
    try:
        info = build_embedded(args.out, args.sources, seed=args.seed, scale=args.scale, workers=args.workers)
    except sources.SourceError as err:
        print(f"nextvid: {err}", file=sys.stderr)
        return 1
    for name, b in info["benchmarks"].items():
        for split, m in b["manifests"].items():
            print(f"{m['sha256']}  {m['samples']:>5}  {Path(args.out) / m['path']}  ({name} {split})")
    for name, m in info["corpus"].items():
        print(f"{m['sha256']}  {m['samples']:>5}  {Path(args.out) / m['path']}  (corpus {name})")
    return 0
