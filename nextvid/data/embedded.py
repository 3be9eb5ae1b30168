"""Build the embedded default: four labelled probe benchmarks and a pretraining corpus, as real files.

Everything is H.264 mp4 (keyframe every second) or PNG plus manifests, so the embedded run goes
through the same decode path as Kinetics would. The build is a pure function of (sources, seed,
scale, GENERATOR_VERSION): every sample draws from its own seeded generator, so the result does not
depend on the number of workers or the order they finish in. The output directory is written in a
staging directory next to it and swapped in at the end: a reader (or a rerun after a kill) sees the
old build or the new one, never a mix (nextvid.io.atomic_dir). Layout and benchmark definitions:
docs/benchmarks.md; what is built: embedded_catalogue; from what: embedded_footage; how one sample is
rendered and written: embedded_render.
"""

from __future__ import annotations

import ctypes
import json
import logging
import multiprocessing
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Literal

import av
import numpy as np

from nextvid.catalog import SPLITS
from nextvid.data import sources
from nextvid.data.embedded_catalogue import (
    BENCHMARKS,
    FPS,
    GENERATOR_VERSION,
    MIXTURE,
    REAL_MIN_FRAMES,
    REAL_WINDOW_S,
    SCALES,
    SIZE,
    TRAIN_END,
    VAL_START,
    Benchmark,
)
from nextvid.data.embedded_footage import load_footage, real_windows
from nextvid.data.embedded_render import _STATE, X264, _real_task, _render_task, encoder_name, plan
from nextvid.data.manifest import UNLABELLED, Sample, write_manifest
from nextvid.io import atomic_dir, atomic_write_json
from nextvid.progress import Progress

log = logging.getLogger(__name__)

_M_PERTURB = -6  # glibc mallopt parameter (see _worker_init)
_HAS_GLIBC = platform.libc_ver()[0] == "glibc"


# --- the build --------------------------------------------------------------------------------------


def build_embedded(
    out_dir: str | Path,
    sources_dir: str | Path | None = None,
    seed: int = 0,
    scale: Literal["default", "smoke", "large"] = "default",
    workers: int = 1,
) -> dict:
    """Build the four benchmarks, the pretraining corpus and `mixture.json` into `out_dir`; return the
    top-level info (also written to `out_dir/info.json`)."""
    if scale not in SCALES:
        raise ValueError(f"scale {scale!r}: choose from {', '.join(SCALES)}")
    t0 = time.perf_counter()
    src = Path(sources_dir) if sources_dir else sources.default_sources_dir()
    record = sources.require(src)
    out = Path(out_dir)
    timings: dict[str, float] = {}
    try:
        with atomic_dir(out) as staging:
            _STATE.update(
                seed=seed,
                staging=staging,
                footage=load_footage(src, record),
                fmnist={
                    "train": sources.load_fashion_mnist(src, "train"),
                    "val": sources.load_fashion_mnist(src, "test"),
                },
            )
            timings["load_sources_s"] = time.perf_counter() - t0
            tasks = {
                (b.name, split): plan(
                    b, split, seed, SCALES[scale][b.name][SPLITS.index(split)], _STATE["fmnist"][split][1]
                )
                for b in BENCHMARKS
                for split in SPLITS
            }
            real_jobs = [
                (v.name, k, s, e) for v in _STATE["footage"] for k, (s, e) in enumerate(real_windows(v, scale))
            ]
            for b in BENCHMARKS:
                for split in SPLITS:
                    (staging / b.name / split).mkdir(parents=True)
            (staging / "corpus" / "real").mkdir(parents=True)
            t1 = time.perf_counter()
            flat = [t for key in tasks for t in tasks[key]]
            with (
                _pool(workers) as pool,
                Progress(len(flat) + len(real_jobs), f"embedded data ({scale})", "files") as progress,
            ):
                rendered, real = [], []
                for out_list, results_in_order in (
                    (rendered, pool.map(_render_task, flat, chunksize=4)),
                    (real, pool.map(_real_task, real_jobs)),
                ):
                    for result in results_in_order:  # in submission order, as they finish
                        out_list.append(result)
                        progress.update(len(rendered) + len(real))
            timings["render_encode_s"] = time.perf_counter() - t1
            results = dict(zip([(t.bench, t.split, t.index) for t in flat], rendered))
            common = {
                "generator_version": GENERATOR_VERSION,
                "seed": seed,
                "scale": scale,
                "encoder": {
                    "codec": encoder_name(),
                    **X264,
                    "gop": "fps",
                    "bframes": 0,
                    "pix_fmt": "yuv420p",
                    "byte_identical": encoder_name() == "libx264" and _HAS_GLIBC,
                    "pyav": av.__version__,
                    "ffmpeg": _ffmpeg_version(),
                },
                "sources": {k: v["sha256"] for k, v in sorted(record.items())},
            }
            info = {**common, "benchmarks": {}, "corpus": {}}
            for b in BENCHMARKS:
                info["benchmarks"][b.name] = _finish_benchmark(staging, b, tasks, results, common)
            info["corpus"] = _finish_corpus(staging, tasks, real, common)
            info["mixture"] = "mixture.json"
            timings["total_s"] = time.perf_counter() - t0
            info["timings"] = {k: round(v, 2) for k, v in timings.items()}
            atomic_write_json(staging / "info.json", info)
    finally:
        _STATE.clear()
    log.info("embedded default (%s, seed %d) built in %s in %.1f s", scale, seed, out, timings["total_s"])
    return info


def _finish_benchmark(staging: Path, b: Benchmark, tasks: dict, results: dict, common: dict) -> dict:
    label_map = {name: i for i, name in enumerate(b.classes)}
    bdir = staging / b.name
    info = {
        **common,
        "benchmark": b.name,
        "mirrors": b.mirrors,
        "tests": b.tests,
        "num_classes": len(b.classes),
        "chance": round(1 / len(b.classes), 4),
        "frames": b.frames,
        "fps": None if b.is_image else FPS,
        "size": [SIZE, SIZE],
        "kind": "image" if b.is_image else "video",
        "classes": label_map,
        "backgrounds": {"train": f"first {TRAIN_END:.0%} of every source video", "val": f"last {1 - VAL_START:.0%}"},
        "objects": {"train": "Fashion-MNIST train split", "val": "Fashion-MNIST test split"},
        "manifests": {},
        "files": {},
    }
    for split in SPLITS:
        split_tasks = tasks[(b.name, split)]
        samples = [Sample(t.relpath, t.label) for t in split_tasks]
        sha = write_manifest(bdir / f"{split}.tsv", samples, label_map)
        lines = [
            json.dumps({"path": t.relpath, **results[(b.name, split, t.index)][2]}, sort_keys=True) for t in split_tasks
        ]
        (bdir / f"{split}.meta.jsonl").write_text("\n".join(lines) + "\n")
        counts = np.bincount([t.label for t in split_tasks], minlength=len(b.classes))
        info["manifests"][split] = {
            "path": f"{split}.tsv",
            "sha256": sha,
            "samples": len(samples),
            "per_class": counts.tolist(),
        }
        info["files"].update({t.relpath: results[(b.name, split, t.index)][1] for t in split_tasks})
    atomic_write_json(bdir / "info.json", info)
    return {k: info[k] for k in ("mirrors", "num_classes", "chance", "frames")} | {
        "manifests": {
            s: {"path": f"{b.name}/{m['path']}", "sha256": m["sha256"], "samples": m["samples"]}
            for s, m in info["manifests"].items()
        }
    }


def _finish_corpus(staging: Path, tasks: dict, real: list, common: dict) -> dict:
    cdir = staging / "corpus"
    manifests = {"real": ([Sample(p) for p, _, _ in real], [{"path": p, **m} for p, _, m in real])}
    for b in BENCHMARKS:  # the training splits only: nothing from a val split is seen in pretraining
        manifests[b.name] = ([Sample(f"../{b.name}/{t.relpath}") for t in tasks[(b.name, "train")]], None)
    info = {
        **common,
        "manifests": {},
        "files": {p: sha for p, sha, _ in real},
        "real": {
            "window_s": REAL_WINDOW_S,
            "min_frames": REAL_MIN_FRAMES,
            "time_range": f"first {TRAIN_END:.0%}",
            "size": f"short side {SIZE}, source aspect",
            "fps": "source fps",
            "clips": manifests["real"][1],
        },
    }
    for name, (samples, _) in manifests.items():
        sha = write_manifest(cdir / f"{name}.tsv", samples, {})
        info["manifests"][name] = {"path": f"{name}.tsv", "sha256": sha, "samples": len(samples), "label": UNLABELLED}
    atomic_write_json(cdir / "info.json", info)
    mixture = {
        "generator_version": GENERATOR_VERSION,
        "paths": "relative to this file",
        "sources": [{"name": n, "manifest": f"corpus/{n}.tsv", "weight": w} for n, w, _ in MIXTURE],
        "provenance": {
            n: {"mirrors": why, "sha256": info["manifests"][n]["sha256"], "samples": info["manifests"][n]["samples"]}
            for n, _, why in MIXTURE
        },
    }
    atomic_write_json(staging / "mixture.json", mixture)
    return {
        n: {"path": f"corpus/{m['path']}", "sha256": m["sha256"], "samples": m["samples"]}
        for n, m in info["manifests"].items()
    }


def _pool(workers: int) -> ProcessPoolExecutor:
    """Forked worker processes (they share the decoded footage); used even for one worker so that
    `_worker_init`'s allocator setting stays out of the caller's process."""
    return ProcessPoolExecutor(
        max(1, workers), mp_context=multiprocessing.get_context("fork"), initializer=_worker_init
    )


def _worker_init() -> None:
    """Make libx264's output byte-identical from run to run. With one thread it still read some
    uninitialised heap memory here (PyAV 18.1 / FFmpeg 8): the same clip encoded to different bytes
    depending on what the process had freed before. glibc's M_PERTURB fills every allocation with a
    fixed byte, which made repeated builds identical in every trial. Elsewhere (no glibc) the files
    may differ in their bytes; the manifests never do."""
    if _HAS_GLIBC:
        ctypes.CDLL("libc.so.6").mallopt(_M_PERTURB, 0x5A)


def _ffmpeg_version() -> str:
    try:
        return ".".join(str(x) for x in av.library_versions["libavcodec"])
    except (AttributeError, KeyError):
        return "unknown"


# --- command line (`nextvid data embedded`) ----------------------------------------------------------


def configure_embedded(parser) -> None:
    parser.add_argument(
        "--sources",
        default=None,
        help="fetched sources (`nextvid data fetch`); default $NEXTVID_SOURCES or ~/.cache/nextvid/sources",
    )
    parser.add_argument("--out", required=True, help="output directory (replaced as a whole when the build finishes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--scale",
        choices=sorted(SCALES),
        default="default",
        help="default: ~1k train clips per benchmark; large: ~10k (the probe is less starved, val 2.5-4x); smoke: tens, for CI",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="processes rendering and encoding (the output does not depend on it)"
    )


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
