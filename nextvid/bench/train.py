"""`nextvid bench train`: steps/s and model FLOP utilisation (MFU) of a full NExT-Vid training step,
fp32 against bf16 autocast, in one run.

The step is the trainer's own `train_step`: encoder on the visible tokens of both mask views, EMA
reference encoder on the full clip, predictor, flow decoder with the stage's tau draws, backward,
gradient clipping, AdamW, EMA update. Model FLOPs are the forward and backward of that step counted
with `torch.utils.flop_counter` (attention counted as the SDPA kernel runs it: dense, masked-out
scores included). MFU = achieved FLOP/s / the FLOP/s of a large square matrix product timed in the
same run, in the same dtype, on the same threads.

Timing discipline (the machine is shared): the variants (fp32 step, bf16 step, fp32 and bf16 matrix
products) are interleaved round by round, the order reversed every other round, and each figure is
a median; every ratio therefore compares measurements taken under the same load. Figures from
process CPU time are reported beside the wall-clock ones (`cpu_time`): they do not count the time
other jobs hold the cores.

`bf16_native` says whether this CPU runs bf16 natively (nextvid.train.precision). Where it does not,
torch emulates bf16: the step is timed as it runs, but no bf16 MFU or speed-up is given (null in
--json, `bf16_note` says why): the emulated bf16 matrix product an MFU divides by is not a peak.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from nextvid.bench.timing import (
    DTYPES,
    add_timing_arguments,
    bf16_verdict,
    cpu_flags,
    interleaved,
    load_average,
    matmul,
    matmul_reps,
    median,
    parse_dtypes,
    threads,
    torch_dtype,
)
from nextvid.config import add_config_arguments, resolve_config


def configure(parser) -> None:
    add_config_arguments(parser)
    parser.set_defaults(preset="tiny")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per dtype and round (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default %(default)s)")
    parser.add_argument(
        "--step",
        type=int,
        default=0,
        help="schedule step whose stage sets batch, frames, tau draws (default %(default)s: warm-up, 4 draws)",
    )
    parser.add_argument("--batch-size", type=int, default=None, help="override the stage's batch size")
    parser.add_argument(
        "--malloc",
        choices=("default", "tuned"),
        default="default",
        help="glibc allocator: as the trainer runs today, or `tune_malloc` (large tensors from the heap, "
        "no trimming; docs/performance.md)",
    )
    add_timing_arguments(parser)


# ---------------------------------------------------------------------------------------- measure


def flop_counter():
    """FlopCounterMode that also counts the CPU flash-attention kernels (torch registers only the CUDA
    SDPA kernels; on CPU, attention would be silently missing from the count). Model FLOPs, not
    hardware FLOPs: the backward counts 4 products (torch's CUDA formula adds the flash kernel's
    recomputation of the scores), so the count is the same whichever attention path runs."""
    import torch
    from torch.utils import flop_counter as fc

    aten = torch.ops.aten

    def fwd(query, key, value, *args, out_shape=None, **kwargs) -> int:
        return fc.sdpa_flop_count(query, key, value)

    def bwd(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
        return 2 * fc.sdpa_flop_count(query, key, value)

    mapping = {}
    for name, fn in (
        ("_scaled_dot_product_flash_attention_for_cpu", fwd),
        ("_scaled_dot_product_flash_attention_for_cpu_backward", bwd),
    ):
        op = getattr(aten, name, None)
        if op is not None:
            mapping[op] = fn
    return fc.FlopCounterMode(display=False, custom_mapping=mapping)


def tune_malloc(mmap_threshold: int = 1 << 30, trim_threshold: int = 2**31 - 1) -> bool:
    """Make glibc serve large blocks from the heap and keep freed memory, process-wide. By default
    glibc maps every block above a dynamic threshold (at most 32 MiB) afresh and returns freed heap
    tops to the OS, so a training step's large activations (the decoder's 38 MB target-sized tensors
    on tiny) are page-faulted and zeroed again every step: 1.06x (fp32) and 1.16x (bf16) CPU time per
    step on this machine (docs/performance.md). The cost: the process keeps its peak memory.
    Returns False where glibc's mallopt is not available."""
    import ctypes
    import ctypes.util

    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(M_TRIM_THRESHOLD, trim_threshold))


def setup_step(cfg, step: int, batch_size: int | None, seed: int = 0):
    """A model, optimiser, clip batch, masks and noise seeds exactly as the trainer builds them."""
    import torch

    from nextvid.masking import MaskSampler
    from nextvid.models.nextvid import build_model
    from nextvid.provenance import mix_seed
    from nextvid.train.schedule import plan

    p = plan(cfg.schedule, step)
    if batch_size:
        p = dataclasses.replace(p, batch_size=batch_size)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg)
    optimizer = torch.optim.AdamW(model.param_groups(cfg.schedule.weight_decay), lr=p.lr, betas=cfg.schedule.betas)
    enc = cfg.model.encoder
    g = torch.Generator().manual_seed(seed)
    video = torch.rand(p.batch_size, enc.in_chans, p.frames, enc.image_size, enc.image_size, generator=g) * 2 - 1
    masks = MaskSampler(cfg.masking, model.encoder.grid_hw, seed=cfg.seed)(p.batch_size, step)
    seeds = [mix_seed(cfg.seed, i) for i in range(p.batch_size)]
    return model, optimizer, video, masks, seeds, p


def count_step_flops(model, video, masks, p, seeds) -> int:
    """Forward + backward FLOPs of one training step (the optimiser and EMA are elementwise: not counted)."""
    counter = flop_counter()
    with counter:
        out = model(video, masks, tau_draws=p.tau_draws, noise_seeds=seeds)
        out["loss"].backward()
    model.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def measure(args) -> dict:
    from nextvid.train.step import train_step

    cfg = resolve_config(args)
    dtypes = parse_dtypes(args.dtypes)
    malloc_tuned = tune_malloc() if args.malloc == "tuned" else False
    load_before = load_average()
    with threads(args.threads):
        model, optimizer, video, masks, seeds, p = setup_step(cfg, args.step, args.batch_size)
        flops = count_step_flops(model, video, masks, p, seeds)

        def step_fn(d):
            return lambda: train_step(model, optimizer, video, masks, p, cfg, seeds, precision=d)

        variants: dict[str, Callable[[], None]] = {}
        reps: dict[str, int] = {}
        for d in dtypes:
            variants[f"step_{d}"] = step_fn(d)
            variants[f"matmul_{d}"] = matmul(torch_dtype(d), args.matmul_size)
            reps[f"step_{d}"], reps[f"matmul_{d}"] = args.steps, matmul_reps(args.matmul_size)
        for d in dtypes:  # warm-up: the first step allocates and selects kernels
            variants[f"step_{d}"]()
        times, cpu_times = interleaved(variants, args.rounds, reps)
    mm_flops = 2 * args.matmul_size**3
    result: dict = {
        "preset": args.preset,
        "config_hash": cfg.stable_hash(),
        "batch_size": p.batch_size,
        "frames": p.frames,
        "image_size": cfg.model.encoder.image_size,
        "tau_draws": p.tau_draws,
        "visible_tokens_per_view": [int(m.shape[1]) for m in masks],
        "flops_per_step": flops,
        "flops_per_clip": flops / p.batch_size,
        "threads": args.threads,
        "malloc": "tuned" if malloc_tuned else "default",
        "steps": args.steps,
        "rounds": args.rounds,
        "matmul_size": args.matmul_size,
        "cpu": cpu_flags(),
        "load_average": {"before": load_before, "after": load_average()},
    }
    result["cpu_time"] = {}
    native = bf16_verdict(result, dtypes)
    for d in dtypes:
        step_s = median(times[f"step_{d}"])
        mm_rate = mm_flops / median(times[f"matmul_{d}"])
        step_cpu_s = median(cpu_times[f"step_{d}"])
        result[d] = {
            "step_s": step_s,
            "step_s_all": times[f"step_{d}"],
            "steps_per_s": 1 / step_s,
            "clips_per_s": p.batch_size / step_s,
            "achieved_flops_per_s": flops / step_s,
            "matmul_flops_per_s": mm_rate,
            "step_cpu_s": step_cpu_s,
            "matmul_flops_per_cpu_s": mm_flops / median(cpu_times[f"matmul_{d}"]),
        }
        meaningful = d == "fp32" or native
        result[f"mfu_{d}"] = flops / step_s / mm_rate if meaningful else None
        result["cpu_time"][f"mfu_{d}"] = (
            flops / step_cpu_s / result[d]["matmul_flops_per_cpu_s"] if meaningful else None
        )
    if "fp32" in dtypes and "bf16" in dtypes:
        result["bf16_speedup"] = result["fp32"]["step_s"] / result["bf16"]["step_s"] if native else None
        result["bf16_matmul_speedup"] = (
            result["bf16"]["matmul_flops_per_s"] / result["fp32"]["matmul_flops_per_s"] if native else None
        )
        result["cpu_time"]["bf16_speedup"] = (
            result["fp32"]["step_cpu_s"] / result["bf16"]["step_cpu_s"] if native else None
        )
    return result


def percent(value: float | None, width: int = 6) -> str:
    """A fraction as a percentage, or `-` where it is withheld (None)."""
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.1%}"


def table(result: dict) -> str:
    dtypes = [d for d in DTYPES if d in result]
    lines = [
        f"training step, preset {result['preset']}: batch {result['batch_size']}, {result['frames']} frames at "
        f"{result['image_size']}px, {result['tau_draws']} tau draws, visible tokens per view {result['visible_tokens_per_view']}",
        f"model FLOPs per step {result['flops_per_step'] / 1e9:.1f} G; {result['threads']} thread(s), malloc {result['malloc']}; medians of "
        f"{result['rounds']} interleaved rounds x {result['steps']} steps; load average {result['load_average']}",
        f"{'dtype':<6} {'step s':>8} {'steps/s':>8} {'clips/s':>8} {'GFLOP/s':>8} {'matmul GFLOP/s':>15} {'MFU':>6}"
        f" {'| CPU s':>8} {'MFU':>6}",
    ]
    for d in dtypes:
        r = result[d]
        lines.append(
            f"{d:<6} {r['step_s']:>8.3f} {r['steps_per_s']:>8.3f} {r['clips_per_s']:>8.2f} "
            f"{r['achieved_flops_per_s'] / 1e9:>8.1f} {r['matmul_flops_per_s'] / 1e9:>15.1f} {percent(result[f'mfu_{d}'])}"
            f" | {r['step_cpu_s']:>6.3f} {percent(result['cpu_time'][f'mfu_{d}'])}"
        )
    if result.get("bf16_speedup") is not None:
        lines.append(
            f"bf16 speedup {result['bf16_speedup']:.2f}x (CPU time {result['cpu_time']['bf16_speedup']:.2f}x; matrix product "
            f"alone {result['bf16_matmul_speedup']:.2f}x); CPU {result['cpu']['model']}: "
            f"avx512_bf16={result['cpu']['avx512_bf16']} amx_bf16={result['cpu']['amx_bf16']}"
        )
    lines.append(
        f"bf16 native: {result['bf16_native']}" + (f"; {result['bf16_note']}" if "bf16_note" in result else "")
    )
    return "\n".join(lines)
