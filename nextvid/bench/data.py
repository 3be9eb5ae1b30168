"""`nextvid bench data`: clips/s of the three ways a training clip can be produced, in one run on
the same clips: raw decoding (decord/PyAV only, no transform), streaming (decode + random resized
crop + flip + normalise: the training path for large corpora) and cached (the same augmentation on
clips read from the uint8 shard cache: the path for small corpora).

The clips are the pretraining mixture's draws for global indices 0..clips-1 over one source, batched
by the same DataLoader settings, so the three rates and their ratios are comparable. Without
--manifest, small H.264 videos (a keyframe every second, as the embedded default writes them) are
generated in a temporary folder. Unreadable files of a manifest are skipped and counted per path, as
pretraining and the probe do (`--max-bad-fraction` of the clips at most); the rates count good clips.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from nextvid.bench.timing import threads


def configure(parser) -> None:
    parser.add_argument("--manifest", help="benchmark this manifest's files instead of generated videos")
    parser.add_argument("--videos", type=int, default=4, help="generated videos (default %(default)s)")
    parser.add_argument(
        "--video-size", type=int, default=256, help="generated videos' side in pixels (default %(default)s)"
    )
    parser.add_argument(
        "--video-frames", type=int, default=100, help="generated videos' length at 25 fps (default %(default)s)"
    )
    parser.add_argument("--frames", type=int, default=16, help="frames per clip (default %(default)s)")
    parser.add_argument("--frame-step", type=int, default=4, help="frame step (default %(default)s)")
    parser.add_argument("--resolution", type=int, default=224, help="training crop size (default %(default)s)")
    parser.add_argument("--clips", type=int, default=96, help="clips timed per path (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers (0: in this process, one core)")
    parser.add_argument("--backend", choices=("auto", "decord", "pyav"), default="auto")
    parser.add_argument(
        "--cache-size",
        type=int,
        default=None,
        help="cache frames resized to this square size (needed when the videos differ in size)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--max-bad-fraction",
        type=float,
        default=0.05,
        help="stop with an error when more of the clips are unreadable (default %(default)s)",
    )


def measure(args) -> dict:
    """The three rates, decoding on one torch thread per process (as the DataLoader's workers do); the
    caller's thread count is restored, so an in-process call leaves no process-wide state behind."""
    with threads(1):
        return _measure(args)


def _measure(args) -> dict:
    from nextvid.data.converters import from_folder
    from nextvid.data.datasets import ManifestSource, TrainClips, make_loader
    from nextvid.data.mixture import MixtureDataset
    from nextvid.data.sampling import ClipSpec
    from nextvid.data.shards import ShardSource, extract

    with tempfile.TemporaryDirectory(prefix="nextvid-bench-data-") as tmp:
        tmp = Path(tmp)
        if args.manifest:
            manifest = Path(args.manifest)
        else:
            write_videos(tmp / "videos", args.videos, args.video_size, args.video_frames, args.seed)
            manifest = tmp / "videos.tsv"
            from_folder(tmp / "videos").write(manifest)
        t0 = time.perf_counter()
        index = extract(
            manifest,
            tmp / "cache",
            step=1,
            size=args.cache_size,
            backend=args.backend,
            workers=args.workers,
            max_bad_fraction=args.max_bad_fraction,
        )
        cache_s = time.perf_counter() - t0
        spec = ClipSpec(args.frames, frame_step=args.frame_step)
        stream = ManifestSource(manifest, args.backend)
        cached = ShardSource(tmp / "cache")
        datasets = {
            "raw": MixtureDataset([_RawClips(stream, spec, args.resolution, seed=args.seed)], [1.0], args.seed),
            "streaming": MixtureDataset([TrainClips(stream, spec, args.resolution, seed=args.seed)], [1.0], args.seed),
            "cached": MixtureDataset([TrainClips(cached, spec, args.resolution, seed=args.seed)], [1.0], args.seed),
        }
        measured = {name: _clips_per_s(ds, args, make_loader, name) for name, ds in datasets.items()}
        rates = {name: rate for name, (rate, _) in measured.items()}
    frames = sum(s["frames"] for s in index["shards"])
    return {
        "raw_clips_per_s": rates["raw"],
        "streaming_clips_per_s": rates["streaming"],
        "cached_clips_per_s": rates["cached"],
        "streaming_vs_raw": rates["streaming"] / rates["raw"],
        "cached_vs_raw": rates["cached"] / rates["raw"],
        "cached_vs_streaming": rates["cached"] / rates["streaming"],
        "cache_build_s": cache_s,
        "cache_bytes": frames * index["height"] * index["width"] * 3,
        # unreadable clips skipped per path (the cache holds only the files that decoded)
        "skipped": {name: skipped for name, (_, skipped) in measured.items()},
        "config": {
            "manifest": str(args.manifest) if args.manifest else None,
            "videos": len(index["samples"]),
            "video_size": None if args.manifest else args.video_size,
            "video_frames": None if args.manifest else args.video_frames,
            "frames": args.frames,
            "frame_step": args.frame_step,
            "resolution": args.resolution,
            "clips": args.clips,
            "batch_size": args.batch_size,
            "workers": args.workers,
            "backend": args.backend,
            "cache_size": args.cache_size,
            "max_bad_fraction": args.max_bad_fraction,
        },
    }


def table(result: dict) -> str:
    c = result["config"]
    lines = [
        f"data loading: {c['videos']} videos, clips of {c['frames']} frames (step {c['frame_step']}) at "
        f"{c['resolution']}px, batch {c['batch_size']}, {c['workers']} workers, backend {c['backend']}",
        f"{'path':<10} {'clips/s':>9} {'vs raw':>7}",
    ]
    for name in ("raw", "streaming", "cached"):
        rate = result[f"{name}_clips_per_s"]
        lines.append(f"{name:<10} {rate:>9.1f} {rate / result['raw_clips_per_s']:>7.2f}")
    lines.append(f"cache: built in {result['cache_build_s']:.1f} s, {result['cache_bytes'] / (1 << 20):.1f} MiB")
    if any(result["skipped"].values()):
        lines.append("unreadable clips skipped: " + ", ".join(f"{k} {v}" for k, v in result["skipped"].items()))
    return "\n".join(lines)


def _clips_per_s(dataset, args, make_loader, name: str) -> tuple[float, int]:
    """Good clips per second over global indices [batch, batch + clips) and the clips skipped as
    unreadable (TooManyBadInputs past --max-bad-fraction): the first batch (worker start, lazy
    imports) is not timed."""
    from torch.utils.data import BatchSampler

    from nextvid.data.badinput import SkipLog

    b = args.batch_size
    skips = SkipLog(args.max_bad_fraction, total=args.clips + b, name=f"bench data, {name} path")
    batches = BatchSampler(range(args.clips + b), b, drop_last=False)
    it = iter(make_loader(dataset, batch_sampler=batches, workers=args.workers))
    skips.consume(next(it))
    t0 = time.perf_counter()
    n = 0
    for batch in it:
        skips.consume(batch)
        n += batch["size"]
    return n / (time.perf_counter() - t0), skips.bad


class _RawClips:
    """Decodes the same clips as TrainClips, without any transform: the decoder's own rate."""

    def __init__(self, source, spec, size: int, seed: int):
        self.source, self.spec, self.seed = source, spec, seed

    def __len__(self) -> int:
        return len(self.source)

    def load(self, i: int, rng: np.random.Generator, index: int) -> dict:
        import torch

        from nextvid.data.badinput import BadInputError, bad_marker
        from nextvid.data.sampling import random_clip

        try:
            reader = self.source.open(i)
            try:
                frames = reader.get(random_clip(reader.num_frames, self.spec, reader.fps, rng))
            finally:
                reader.close()
        except BadInputError as err:  # skipped and counted, as TrainClips does
            return bad_marker(index, err)
        return {"video": torch.from_numpy(np.ascontiguousarray(frames)), "index": index}


def write_videos(folder: Path, count: int, size: int, frames: int, seed: int) -> list[Path]:
    """`count` H.264 videos of a smooth random texture drifting under a moving bright square, 25 fps,
    a keyframe every second: content that compresses like real footage, not like a flat colour."""
    from nextvid.data.video import write_video

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(count):
        rng = np.random.default_rng([seed, k])
        coarse = rng.integers(0, 256, (size // 16 + 2, size // 16 + 2, 3)).astype(np.float32)
        texture = np.kron(coarse, np.ones((16, 16, 1), np.float32))
        dx, dy = rng.integers(-3, 4, 2)
        video = np.empty((frames, size, size, 3), np.uint8)
        for t in range(frames):
            y0, x0 = (16 + t * dy) % 16, (16 + t * dx) % 16
            frame = texture[y0 : y0 + size, x0 : x0 + size].copy()
            s = size // 6
            cy, cx = (size // 2 + int(size / 3 * np.sin(t / 9 + k))), (size // 2 + int(size / 3 * np.cos(t / 7 + k)))
            frame[max(cy - s, 0) : cy + s, max(cx - s, 0) : cx + s] = 255
            video[t] = np.clip(frame + rng.normal(0, 4, frame.shape), 0, 255)
        path = folder / f"bench{k:02d}.mp4"
        write_video(path, video, fps=25, options={"preset": "veryfast"})
        paths.append(path)
    return paths
