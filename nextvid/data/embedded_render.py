"""Rendering and writing one sample of the embedded default: a pure function of the task and the
build's seed (every sample draws from its own seeded generator), run in the build's worker processes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image

from nextvid.catalog import SPLITS
from nextvid.data import synth
from nextvid.data.embedded_catalogue import BENCHMARKS, FPS, GENERATOR_VERSION, Benchmark
from nextvid.data.embedded_footage import background_clip
from nextvid.data.video import write_video
from nextvid.io import sha256_file

log = logging.getLogger(__name__)

# libx264, one thread: the output is then byte-identical for the same input (checked on PyAV 18.1 / FFmpeg 8).
# RGB -> YUV is done in integer arithmetic (nextvid.data.video.rgb_to_yuv420p): FFmpeg's swscale rgb24 path read uninitialised padding
# and made the encoded bytes vary between runs.
X264 = {"preset": "veryfast", "crf": "23", "threads": "1"}


# --- writers ----------------------------------------------------------------------------------------


def encoder_name() -> str:
    if "libx264" in av.codecs_available:
        return "libx264"
    log.warning("this PyAV build has no libx264; writing MPEG-4 Part 2 instead (files are then not H.264)")
    return "mpeg4"


def write_clip(path: Path, frames: np.ndarray, fps: float) -> None:
    """H.264 mp4, yuv420p, a keyframe every second (gop = fps, no scene-cut keyframes, no B-frames),
    RGB -> YUV in integer arithmetic: the same frames always encode to the same bytes."""
    gop = max(1, round(fps))
    codec = encoder_name()
    options = None
    if codec == "libx264":
        options = {
            **X264,
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:"
            "colorprim=smpte170m:transfer=smpte170m:colormatrix=smpte170m:range=tv",
        }
    write_video(path, frames, fps, codec, keyframe_every=gop, options=options, exact_yuv=True)


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
    meta: dict = {
        "label": task.label,
        "fmnist_index": task.fmnist_index,
        "object_class": int(labels[task.fmnist_index]),
        "tint": list(tint),
    }
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
        write_clip(path, frames, FPS)
    return task.relpath, sha256_file(path), meta


def _real_task(job: tuple[str, int, int, int]) -> tuple[str, str, dict]:
    name, k, start, end = job
    v = next(f for f in _STATE["footage"] if f.name == name)
    relpath = f"real/v{GENERATOR_VERSION}_{name}_{k:02d}.mp4"
    path = _STATE["staging"] / "corpus" / relpath
    write_clip(path, v.frames[start:end], v.fps)
    meta = {
        "video": name,
        "start_frame": start,
        "end_frame": end,
        "fps": round(v.fps, 3),
        "size": list(v.frames.shape[1:3]),
    }
    return relpath, sha256_file(path), meta


def plan(bench: Benchmark, split: str, seed: int, per_class: int, fmnist_labels: np.ndarray) -> list[Task]:
    """Balanced labels in a seeded order; the Fashion-MNIST image of each sample (class = label for
    images/appearance, random for the motion benchmarks) drawn without reuse where the label is the class."""
    rng = np.random.default_rng([seed, bench.uid, SPLITS.index(split), 1 << 20])
    labels = rng.permutation(np.repeat(np.arange(len(bench.classes)), per_class))
    if bench.name in ("images", "appearance"):
        pools = {c: rng.permutation(np.flatnonzero(fmnist_labels == c)) for c in range(len(bench.classes))}
        if short := [c for c, pool in pools.items() if len(pool) < per_class]:
            raise ValueError(
                f"{bench.name} {split}: {per_class} images of class {short[0]} asked for, "
                f"Fashion-MNIST has {len(pools[short[0]])}"
            )
        seen = {c: 0 for c in pools}
        objects = []
        for c in labels:
            objects.append(int(pools[c][seen[c]]))
            seen[c] += 1
    else:
        objects = [int(i) for i in rng.integers(0, len(fmnist_labels), size=len(labels))]
    ext = "png" if bench.is_image else "mp4"
    return [
        Task(bench.name, split, i, int(c), o, f"{split}/v{GENERATOR_VERSION}s{seed}_{i:05d}.{ext}")
        for i, (c, o) in enumerate(zip(labels, objects))
    ]
