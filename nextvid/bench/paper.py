"""`nextvid bench paper`: what the paper's pretraining run costs in FLOPs, the model FLOP utilisation
(MFU) its reported 146 h on 96 H100 imply, and the hours our implementation would need at the MFU
`nextvid bench train` measured.

FLOPs per clip come from `nextvid describe` (flop_counter on the meta device: forward + backward of
one training step, attention dense) for each stage of the preset's schedule (Table 8: batch 3072,
16 frames at 256 px, 4 tau draws in warm-up and stable-1, 1 after, cool-down at 64 frames and
batch 768). Visible-token counts are describe's (one clip's masks, seed 0).

Assumptions, stated in the result:
- H100 bf16 matrix-product rate: measured here when this machine has an H100 (a square bf16 product
  timed with CUDA events); otherwise the NVIDIA H100 SXM5 datasheet's dense BF16 tensor-core peak,
  989.4 TFLOP/s (1979 is the 2:4-sparse figure). A datasheet peak is an upper bound on any measured
  rate, so the implied MFU is then a lower bound and our hours an optimistic estimate.
- Our hours = total FLOPs / (GPUs x rate x our bf16 MFU). The MFU, per preset, is the first of:
  `--mfu` (a stated assumption); the MFU `nextvid bench gpu` measured for that preset on a GPU
  (`--gpu-result`); the MFU our step reaches on this CPU against its own bf16 matrix-product rate
  (`--train-result`), transferred to the H100's rate. The source is named in the result. It ignores
  what a cluster adds (communication, stragglers).
- The data loader: at that speed each GPU consumes (batch / GPUs) / step time clips per second in
  every stage; divided by one core's streaming decode rate from `nextvid bench data`
  (`--data-result`: decode + augment, clips/s per worker), that is the decode workers each GPU needs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

H100_BF16_DATASHEET = 989.4e12  # NVIDIA H100 SXM5, dense BF16 tensor core, FLOP/s
PAPER_HOURS, PAPER_GPUS = 146.0, 96  # paper Sec. 4.1 / Table 8


def configure(parser) -> None:
    parser.add_argument("--presets", default="vit_l,vit_h,vit_g", help="comma-separated presets (default %(default)s)")
    parser.add_argument(
        "--paper-hours", type=float, default=PAPER_HOURS, help="reported wall-clock hours (default %(default)s)"
    )
    parser.add_argument("--paper-gpus", type=int, default=PAPER_GPUS, help="reported GPUs (default %(default)s)")
    parser.add_argument(
        "--h100-bf16-tflops",
        type=float,
        default=None,
        help="H100 bf16 matrix-product rate (default: measured if an H100 is present, else the datasheet's 989.4)",
    )
    parser.add_argument("--mfu", type=float, default=None, help="our bf16 MFU (default: mfu_bf16 from --train-result)")
    parser.add_argument(
        "--train-result", default="results/bench/train.json", help="`nextvid bench train` output (default %(default)s)"
    )
    parser.add_argument(
        "--gpu-result",
        default="results/bench/gpu.json",
        help="`nextvid bench gpu` output, preferred where it has the preset (default %(default)s)",
    )
    parser.add_argument(
        "--data-result",
        default="results/bench/data.json",
        help="`nextvid bench data` output: decode rate per core (default %(default)s)",
    )


def h100_rate(override_tflops: float | None) -> tuple[float, str]:
    """(FLOP/s, where the figure comes from)."""
    if override_tflops is not None:
        return override_tflops * 1e12, "given (--h100-bf16-tflops)"
    import torch

    if torch.cuda.is_available() and "H100" in torch.cuda.get_device_name():
        return measure_gpu_matmul(), f"measured: bf16 8192^3 product on {torch.cuda.get_device_name()}"
    return H100_BF16_DATASHEET, "assumed: NVIDIA H100 SXM5 datasheet dense BF16 peak (no H100 on this machine)"


def measure_gpu_matmul(n: int = 8192, reps: int = 50) -> float:
    import torch

    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(5):
        a @ b
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        a @ b
    end.record()
    torch.cuda.synchronize()
    return 2 * n**3 * reps / (start.elapsed_time(end) / 1e3)


def our_mfu(args, preset: str) -> tuple[float, str]:
    if args.mfu is not None:
        return args.mfu, "given (--mfu)"
    gpu = Path(args.gpu_result)
    if gpu.is_file():
        result = json.loads(gpu.read_text())
        measured = [c for c in result.get("cases", []) if c["preset"] == preset and "mfu" in c]
        if measured:
            best = max(measured, key=lambda c: c["mfu"])
            return float(
                best["mfu"]
            ), f"measured by `nextvid bench gpu` on {result['device']} ({best['kernel']} attention, {gpu})"
    path = Path(args.train_result)
    if not path.is_file():
        raise SystemExit(
            f"nextvid bench paper: {path} not found; run `nextvid bench gpu` (on a GPU) or `nextvid bench train` first, or pass --mfu"
        )
    train = json.loads(path.read_text())
    if train.get("mfu_bf16") is None:
        why = train.get("bf16_note") or "run `nextvid bench train` with bf16"
        raise SystemExit(
            f"nextvid bench paper: {path} has no bf16 MFU ({why}); pass --mfu, or measure on a machine with native bf16"
        )
    return float(
        train["mfu_bf16"]
    ), f"mfu_bf16 of {path} (preset {train.get('preset')}, commit {train.get('environment', {}).get('git_commit')})"


def run_flops(preset: str) -> dict:
    """FLOPs of every stage of the preset's schedule and of the whole run."""
    from nextvid.config import merge
    from nextvid.describe import describe
    from nextvid.presets import get_preset
    from nextvid.train.schedule import stage_ends

    cfg = get_preset(preset)
    per_clip: dict[tuple[int, int], int] = {}
    stages, begin, total = [], 0, 0
    for stage, end in zip(cfg.schedule.stages, stage_ends(cfg.schedule)):
        key = (stage.frames, stage.tau_draws)
        if key not in per_clip:
            staged = merge(cfg, {"model": {"encoder": {"frames": stage.frames}}})
            per_clip[key] = describe(staged, tau_draws=stage.tau_draws)["train_flops_per_clip"]
        step_flops = per_clip[key] * stage.batch_size
        stages.append(
            {
                "stage": stage.name,
                "steps": end - begin,
                "batch_size": stage.batch_size,
                "frames": stage.frames,
                "tau_draws": stage.tau_draws,
                "flops_per_clip": per_clip[key],
                "flops_per_step": step_flops,
            }
        )
        total += step_flops * (end - begin)
        begin = end
    return {"total_steps": cfg.schedule.total_steps, "stages": stages, "total_flops": total}


def decode_rate_per_core(path: Path) -> tuple[float | None, str]:
    """Streaming (decode + augment) clips/s of one DataLoader worker from `nextvid bench data`."""
    if not path.is_file():
        return None, f"{path} not found: run `nextvid bench data` for decode workers per GPU"
    data = json.loads(path.read_text())
    workers = max(1, data["config"]["workers"])
    return data["streaming_clips_per_s"] / workers, (
        f"{path}: streaming {data['config']['frames']} frames at {data['config']['resolution']} px, {workers} worker(s)"
    )


def loader_demand(run: dict, gpus: int, rate: float, mfu: float, per_core: float | None) -> list[dict]:
    """Per stage: step time at this MFU, the clips/s each GPU consumes, the decode workers that takes."""
    out = []
    for s in run["stages"]:
        step_s = s["flops_per_step"] / (gpus * rate * mfu)
        clips = s["batch_size"] / gpus / step_s
        out.append(
            {
                "stage": s["stage"],
                "step_s": step_s,
                "clips_per_s_per_gpu": clips,
                "decode_workers_per_gpu": None if per_core is None else math.ceil(clips / per_core),
            }
        )
    return out


def measure(args) -> dict:
    rate, rate_source = h100_rate(args.h100_bf16_tflops)
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    mfus = {p: our_mfu(args, p) for p in presets}
    per_core, per_core_source = decode_rate_per_core(Path(args.data_result))
    gpu_seconds = args.paper_hours * 3600 * args.paper_gpus
    runs = {p: run_flops(p) for p in presets}
    return {
        "presets": presets,
        "runs": runs,
        "paper_hours": args.paper_hours,
        "paper_gpus": args.paper_gpus,
        "h100_bf16_flops_per_s": rate,
        "h100_rate_source": rate_source,
        "our_mfu_bf16": {p: m for p, (m, _) in mfus.items()},
        "our_mfu_source": {p: src for p, (_, src) in mfus.items()},
        "paper_implied_mfu": {p: r["total_flops"] / (gpu_seconds * rate) for p, r in runs.items()},
        "our_hours_estimate": {
            p: r["total_flops"] / (args.paper_gpus * rate * mfus[p][0]) / 3600 for p, r in runs.items()
        },
        "decode_clips_per_s_per_core": per_core,
        "decode_rate_source": per_core_source,
        "loader": {p: loader_demand(r, args.paper_gpus, rate, mfus[p][0], per_core) for p, r in runs.items()},
    }


def table(result: dict) -> str:
    lines = [
        f"paper run: {result['paper_hours']:g} h on {result['paper_gpus']} H100; H100 bf16 rate "
        f"{result['h100_bf16_flops_per_s'] / 1e12:.1f} TFLOP/s ({result['h100_rate_source']})",
        *(
            f"our bf16 MFU for {p}: {result['our_mfu_bf16'][p]:.1%} ({result['our_mfu_source'][p]})"
            for p in result["presets"]
        ),
        f"{'preset':<8} {'PFLOP/step (warm-up)':>21} {'total EFLOP':>12} {'paper MFU':>10} {'our hours':>10}",
    ]
    for p in result["presets"]:
        run = result["runs"][p]
        lines.append(
            f"{p:<8} {run['stages'][0]['flops_per_step'] / 1e15:>21.2f} {run['total_flops'] / 1e18:>12.0f} "
            f"{result['paper_implied_mfu'][p]:>10.1%} {result['our_hours_estimate'][p]:>10.0f}"
        )
    per_core = result["decode_clips_per_s_per_core"]
    lines.append(
        f"data loader at that speed (decode: {per_core and f'{per_core:.1f} clips/s per core'}; {result['decode_rate_source']})"
    )
    lines.append(f"{'preset':<8} {'stage':<9} {'step s':>7} {'clips/s per GPU':>16} {'decode workers/GPU':>19}")
    for p in result["presets"]:
        for s in result["loader"][p]:
            workers = "-" if s["decode_workers_per_gpu"] is None else s["decode_workers_per_gpu"]
            lines.append(f"{p:<8} {s['stage']:<9} {s['step_s']:>7.2f} {s['clips_per_s_per_gpu']:>16.1f} {workers:>19}")
    return "\n".join(lines)
