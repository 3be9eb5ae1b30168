"""`nextvid bench gpu`: the paper-scale step on one GPU, in a few minutes, whenever a GPU is lent.

For each preset (default ViT-L, then ViT-G): the first stage's step (16 frames at 256 px, 4 tau
draws) at the paper's per-GPU batch (batch 3072 over `--gpus` 96 = 32 clips) with the preset's own
micro-batches and checkpointing, masks drawn for the global batch as the trainer does, the trainer's
`train_step` (bf16 autocast, AdamW, EMA). It reports
- step time and clips/s;
- MFU: model FLOPs of the step (flop_counter on the meta device, attention dense as SDPA computes
  it) over the step time, against a bf16 8192^3 matrix product timed on the same GPU;
- peak memory (torch.cuda.max_memory_allocated over the timed steps) against the memory model's
  estimate for the same setting on one GPU (no DDP buckets);
- for the first preset, FlexAttention against the dense-mask SDPA kernel (the same step, equal
  numbers asked of both; an out-of-memory kernel is recorded, not fatal).
Without CUDA it records that it skipped and exits 0. `--device cpu` runs the same code on a CPU
preset (for tests; the figures then mean nothing for GPUs).
"""

from __future__ import annotations

import dataclasses
import functools
import time

KERNELS = ("flex", "sdpa")


def configure(parser) -> None:
    parser.add_argument("--presets", default="vit_l,vit_g", help="comma-separated presets (default %(default)s)")
    parser.add_argument(
        "--gpus", type=int, default=96, help="GPUs the global batch is split over (default %(default)s: the paper's)"
    )
    parser.add_argument("--steps", type=int, default=3, help="timed steps per case (default %(default)s)")
    parser.add_argument(
        "--warmup", type=int, default=2, help="untimed steps first: compilation, allocator (default %(default)s)"
    )
    parser.add_argument(
        "--kernels",
        default=",".join(KERNELS),
        help="attention kernels compared on the first preset (default %(default)s)",
    )
    parser.add_argument(
        "--device", choices=("cuda", "cpu"), default="cuda", help="cpu: a code-path check on a CPU preset only"
    )


def measure(args) -> dict:
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        return {"skipped": "no CUDA device on this machine"}
    device = torch.device(args.device)
    kernels = [k.strip() for k in args.kernels.split(",") if k.strip()]
    bad = [k for k in kernels if k not in KERNELS]
    if bad or not kernels:
        raise SystemExit(f"nextvid bench gpu: --kernels must be a subset of {','.join(KERNELS)}, got {args.kernels!r}")
    rate, rate_source = matmul_rate(device)
    cases = []
    for i, preset in enumerate(p.strip() for p in args.presets.split(",") if p.strip()):
        for kernel in kernels if i == 0 else kernels[:1]:
            cases.append({"preset": preset, "kernel": kernel, **run_case(preset, kernel, args, device, rate)})
    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "bf16_matmul_flops_per_s": rate,
        "matmul_source": rate_source,
        "gpus_assumed": args.gpus,
        "cases": cases,
    }


def matmul_rate(device) -> tuple[float, str]:
    if device.type == "cuda":
        from nextvid.bench.paper import measure_gpu_matmul

        return measure_gpu_matmul(), "measured: bf16 8192^3 product, CUDA events"
    import torch

    from nextvid.bench.timing import matmul

    run, n = matmul(torch.bfloat16, 1024), 1024
    start = time.perf_counter()
    for _ in range(5):
        run()
    return 5 * 2 * n**3 / (time.perf_counter() - start), "measured: bf16 1024^3 product on CPU"


def run_case(preset: str, kernel: str, args, device, rate: float) -> dict:
    """One preset's first-stage step with one attention kernel: timings, MFU, memory, or the error."""
    import torch

    from nextvid.config import merge
    from nextvid.masking import MaskSampler
    from nextvid.memory import clip_shapes, estimate
    from nextvid.memory_fit import current_setting
    from nextvid.models.nextvid import build_model
    from nextvid.presets import get_preset
    from nextvid.provenance import mix_seed
    from nextvid.train.precision import resolve
    from nextvid.train.schedule import plan
    from nextvid.train.step import train_step

    cfg = merge(get_preset(preset), {"compute": {"attention": kernel}})
    p = plan(cfg.schedule, 0)
    if p.batch_size % args.gpus:
        raise SystemExit(f"nextvid bench gpu: {preset}'s batch {p.batch_size} is not divisible by --gpus {args.gpus}")
    per_gpu = p.batch_size // args.gpus
    setting = current_setting(cfg, 0, per_gpu)
    enc = cfg.model.encoder
    masks = MaskSampler(cfg.masking, (enc.image_size // enc.patch_size,) * 2, seed=cfg.seed)(p.batch_size, 0)
    masks = [m[:per_gpu].to(device) for m in masks]
    est = estimate(
        cfg,
        setting.micro_batch,
        p.frames,
        p.tau_draws,
        gpus=1,
        kernel=kernel,
        checkpoint=setting.checkpoint,
        shapes=clip_shapes(cfg, p.frames, p.batch_size),
    )
    result = {
        "batch_per_gpu": per_gpu,
        "micro_batch": setting.micro_batch,
        "checkpoint": sorted(setting.checkpoint),
        "frames": p.frames,
        "tau_draws": p.tau_draws,
        "estimate_peak_gib": round(est.peak / 2**30, 2),
    }
    flops = step_flops(cfg, masks, p) * per_gpu
    result["flops_per_step"] = flops
    model = optimizer = None
    try:
        torch.manual_seed(cfg.seed)
        with device:
            model = build_model(cfg)
        optimizer = torch.optim.AdamW(
            model.param_groups(cfg.schedule.weight_decay),
            lr=p.lr,
            betas=cfg.schedule.betas,
            fused=device.type == "cuda",
        )
        video = torch.rand(per_gpu, enc.in_chans, p.frames, enc.image_size, enc.image_size, device=device) * 2 - 1
        seeds = [mix_seed(cfg.seed, i) for i in range(per_gpu)]
        precision = resolve(cfg.schedule.precision, device, "schedule.precision")

        step = functools.partial(train_step, model, optimizer, video, masks, p, cfg, seeds, precision=precision)

        for _ in range(args.warmup):
            step()
        synchronize(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        synchronize(device)
        seconds = (time.perf_counter() - start) / args.steps
        result.update(step_s=seconds, clips_per_s=per_gpu / seconds, mfu=flops / seconds / rate)
        if device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(device)
            result.update(peak_gib=round(peak / 2**30, 2), peak_vs_estimate=peak / est.peak)
    except torch.cuda.OutOfMemoryError as err:
        result["error"] = f"out of memory: {str(err).splitlines()[0][:200]}"
    except Exception as err:  # a kernel or compile failure on one case must not hide the others
        result["error"] = f"{type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''}"
    finally:
        del model, optimizer
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return result


def step_flops(cfg, masks, p) -> int:
    """Model FLOPs of one clip's training step (forward + backward), counted on the meta device with
    the step's own (batch-truncated) masks: no memory, no compute."""
    import torch

    from nextvid.bench.train import count_step_flops
    from nextvid.config import merge
    from nextvid.models.nextvid import build_model

    cfg = merge(cfg, {"compute": {"attention": "sdpa", "compile": False}})
    enc = cfg.model.encoder
    with torch.device("meta"):
        model = build_model(cfg)
        video = torch.empty(1, enc.in_chans, p.frames, enc.image_size, enc.image_size)
    one = dataclasses.replace(p, batch_size=1)
    return count_step_flops(model, video, [m[:1].to("meta") for m in masks], one, None)  # no seeded generators on meta


def synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def table(result: dict) -> str:
    if "skipped" in result:
        return f"bench gpu skipped: {result['skipped']}"
    lines = [
        f"{result['device']}: bf16 matmul {result['bf16_matmul_flops_per_s'] / 1e12:.0f} TFLOP/s ({result['matmul_source']}); "
        f"per-GPU batch of {result['gpus_assumed']} GPUs",
        f"{'preset':<7} {'kernel':<5} {'clips':>5} {'micro':>5} {'step s':>7} {'clips/s':>8} {'MFU':>6} {'peak GiB':>9} {'model GiB':>9}",
    ]
    for c in result["cases"]:
        head = f"{c['preset']:<7} {c['kernel']:<5} {c['batch_per_gpu']:>5} {c['micro_batch']:>5}"
        if "error" in c:
            lines.append(f"{head}  {c['error']}")
            continue
        peak = f"{c['peak_gib']:>9}" if "peak_gib" in c else f"{'-':>9}"
        lines.append(
            f"{head} {c['step_s']:>7.2f} {c['clips_per_s']:>8.1f} {c['mfu']:>6.1%} {peak} {c['estimate_peak_gib']:>9}"
        )
    return "\n".join(lines)
