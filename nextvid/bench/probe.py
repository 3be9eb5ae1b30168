"""`nextvid bench probe`: what feature caching and the head grid buy, measured in one run on the
benchmark's real clips (the same manifests, data layer and protocol as `nextvid probe`).

(a) the probe as it runs: features computed once (train and val), the whole (lr, wd) grid trained
over them, with its held-out selection copies; (b) the naive probe: one head, the training features
recomputed every epoch, as one would without a cache (run for the (lr, wd) that (a) selects on the
held-out part). Getting (a)'s G results the naive way takes G runs like (b), so
`speedup = G * time(b) / time(a)`; `speedup_one_head = time(b) / time(a)` is the raw ratio.
(c) the same one head as (b) over (a)'s cached features (reused, not recomputed; not timed):
`accuracy_delta = |val top-1 of (c) - val top-1 of (b)|` isolates caching and is expected to be 0.
`accuracy_delta_vs_grid` compares (b) with the same (lr, wd) head inside (a)'s grid: the grid
computes all heads in shared matrix products whose shapes depend on the number of heads, which
changes float rounding (~1e-7), and over hundreds of steps that can move a few predictions.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import torch

from nextvid.config import merge
from nextvid.probe.clips import ProbeData
from nextvid.probe.encoders import TokenSource
from nextvid.probe.protocol import ProbeProtocol
from nextvid.probe.run import run_probe

log = logging.getLogger(__name__)


def bench_probe(
    source: TokenSource,
    protocol: ProbeProtocol,
    data: ProbeData,
    device: str | torch.device = "cpu",
    chunk: int = 1,
    workers: int = 0,
    work_dir: Optional[str | Path] = None,
) -> dict[str, Any]:
    if protocol.augment:
        raise ValueError("bench probe compares caching with recomputing: use a protocol without augmentation")
    root = Path(tempfile.mkdtemp(prefix="bench_probe_", dir=work_dir))
    try:
        t = time.perf_counter()
        grid = run_probe(source, protocol, data, root / "cached_grid", device, chunk, workers, cache_train=True)
        time_grid = time.perf_counter() - t
        chosen = grid["results"]["heldout_selected" if "heldout_selected" in grid["results"] else "best_on_val"]
        single = merge(
            protocol,
            {"grid": {"lr": [chosen["lr"]], "weight_decay": [chosen["weight_decay"]]}, "holdout_fraction": 0.0},
        )
        t = time.perf_counter()
        naive = run_probe(source, single, data, root / "recompute_one_head", device, chunk, workers, cache_train=False)
        time_naive = time.perf_counter() - t
        same = run_probe(
            source, single, data, root / "cached_grid", device, chunk, workers, cache_train=True
        )  # (a)'s features
    finally:
        shutil.rmtree(root, ignore_errors=True)
    heads = len(protocol.grid.pairs())
    grid_top1 = grid["heads"][chosen["head"]]["val_top1"]
    cached_top1, naive_top1 = same["results"]["best_on_val"]["top1"], naive["results"]["best_on_val"]["top1"]
    result = {
        "benchmark": protocol.benchmark,
        "encoder": source.kind,
        "heads": heads,
        "epochs": protocol.epochs,
        "num_train": grid["data"]["num_train"],
        "num_val": grid["data"]["num_val"],
        "cached_grid_s": time_grid,
        "recompute_one_head_s": time_naive,
        "speedup": heads * time_naive / time_grid,
        "speedup_one_head": time_naive / time_grid,
        "lr": chosen["lr"],
        "weight_decay": chosen["weight_decay"],
        "top1_cached": cached_top1,
        "top1_recomputed": naive_top1,
        "top1_in_grid": grid_top1,
        "accuracy_delta": abs(cached_top1 - naive_top1),
        "val_nll_delta": abs(
            same["results"]["best_on_val"]["nll"] - naive["results"]["best_on_val"]["nll"]
        ),  # 0: bit-identical heads
        "accuracy_delta_vs_grid": abs(grid_top1 - naive_top1),
        # the precision both runs computed in, and whether bf16 is native here (where it is not,
        # `precision: auto` ran fp32; a forced bf16 run's times would measure torch's emulation)
        "precision": grid["features"]["precision"]["resolved"],
        "bf16_native": grid["features"]["precision"]["bf16_native"],
        "timing_cached_s": grid["timing_s"],
        "timing_recomputed_s": naive["timing_s"],
    }
    log.info(
        "bench probe: speedup %.1fx (%d heads), one head %.1fx, accuracy delta %.3f",
        result["speedup"],
        heads,
        result["speedup_one_head"],
        result["accuracy_delta"],
    )
    return result


# `nextvid bench probe` (nextvid.commands.bench adds --out and --json)


def configure(parser) -> None:
    """What to probe: the arguments of `nextvid probe`; plus where the two runs write their features."""
    from nextvid.probe.inputs import add_probe_arguments

    add_probe_arguments(parser)
    parser.add_argument(
        "--work-dir",
        default=None,
        help="where the two runs' features go while they run (default: the system's temp dir); removed after",
    )


def measure(args) -> dict[str, Any]:
    from nextvid.probe.inputs import resolve_probe

    protocol, source, data, device = resolve_probe(args)
    result = bench_probe(
        source, protocol, data, device, chunk=args.extract_batch, workers=args.workers, work_dir=args.work_dir
    )
    result["probe_benchmark"] = result.pop("benchmark")  # the command's "benchmark" key names the bench: probe
    return {
        **result,
        "checkpoint": args.checkpoint,
        "train_manifest": protocol.train_manifest,
        "val_manifest": protocol.val_manifest,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "extract_batch": args.extract_batch,
        "workers": args.workers,
    }


def table(result: dict[str, Any]) -> str:
    r = result
    lines = [
        f"probe caching: {r.get('probe_benchmark', r['benchmark'])} ({r['encoder']} encoder, {r['num_train']} train / {r['num_val']} val samples, "
        f"{r['epochs']} epochs, {r['heads']} heads)",
        f"{'run':<44} {'seconds':>9} {'val top-1':>10}",
        f"{'(a) cached features + grid of ' + str(r['heads']) + ' heads':<44} {r['cached_grid_s']:>9.1f} {r['top1_cached']:>10.2f}",
        f"{'(b) features recomputed every epoch, 1 head':<44} {r['recompute_one_head_s']:>9.1f} {r['top1_recomputed']:>10.2f}",
        f"{'(c) that head over (a) cached features':<44} {'-':>9} {r['top1_cached']:>10.2f}",
        f"speedup {r['speedup']:.1f}x for the grid (G x (b) / (a)), {r['speedup_one_head']:.1f}x for one head; "
        f"accuracy delta (c) vs (b) {r['accuracy_delta']:.3f} points; the head inside (a)'s grid: {r['top1_in_grid']:.2f} "
        f"(delta {r['accuracy_delta_vs_grid']:.3f}, float rounding of the shared products)",
        f"precision {r['precision']} (bf16 native: {r['bf16_native']}"
        + (
            ""
            if r["bf16_native"] or r["precision"] == "fp32"
            else "; bf16 is emulated here: these times measure the emulation"
        )
        + ")",
    ]
    return "\n".join(lines)
