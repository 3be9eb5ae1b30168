"""`nextvid describe`: parameter and FLOP counts of a preset or config."""

from __future__ import annotations

import json
import sys

from nextvid.config import add_config_arguments, resolve_config


def configure(parser) -> None:
    add_config_arguments(parser)
    parser.add_argument(
        "--tau-draws", type=int, default=None, help="tau draws per condition (default: the first stage's)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--memory",
        action="store_true",
        help="GPU memory of every schedule stage at its per-GPU batch, and the settings that fit",
    )
    parser.add_argument(
        "--gpus",
        type=int,
        default=None,
        help="--memory: GPUs sharing each step's batch (default: the config's launch.nodes x launch.gpus_per_node)",
    )
    parser.add_argument(
        "--gpu-mem", type=float, default=None, help="--memory: GB of one GPU (default: the config's launch.gpu_mem_gb)"
    )
    parser.add_argument(
        "--kernel",
        choices=("flex", "sdpa"),
        default="flex",
        help="--memory: attention kernel (sdpa also keeps its dense mask; default %(default)s)",
    )


def run(args) -> int:
    from nextvid.describe import describe

    cfg = resolve_config(args)
    if args.memory:
        return _memory(cfg, args)
    info = describe(cfg, tau_draws=args.tau_draws)
    if args.json:
        print(json.dumps(info))
        return 0
    width = max(map(len, info))
    for key, value in info.items():
        shown = f"{value:,}" if isinstance(value, int) else value
        print(f"{key:<{width}}  {shown}")
    return 0


def _memory(cfg, args) -> int:
    from nextvid.config import ConfigError
    from nextvid.memory_fit import memory_plan

    gpus = args.gpus or cfg.launch.nodes * cfg.launch.gpus_per_node
    try:
        plan = memory_plan(cfg, gpus, cfg.launch.gpu_mem_gb if args.gpu_mem is None else args.gpu_mem, args.kernel)
    except ConfigError as err:
        print(f"nextvid: config error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(plan))
        return 0
    print(memory_table(plan))
    return 0


def memory_table(plan: dict) -> str:
    """The memory plan as a text table in GiB (docs/performance.md shows the paper presets')."""
    parts = ("params", "grads", "adamw", "ema", "encoder", "predictor", "decoder", "peak")
    lines = [
        f"{plan['gpus']} GPUs of {plan['gpu_mem_gb']:g} GB (budget {plan['budget_gib']} GiB), {'bf16' if plan['bf16'] else 'fp32'}, "
        f"{plan['kernel']} attention; GiB per GPU at the config's settings",
        f"{'stage':<9} {'clips/GPU':>9} {'micro':>5} {'ckpt':<6}"
        + "".join(f" {p:>9}" for p in parts)
        + "  fits  fitting setting",
    ]
    for s in plan["stages"]:
        fix = s["fitting_setting"]
        fix_text = (
            "none"
            if fix is None
            else f"checkpoint {'+'.join(fix['checkpoint']) or '-'}, micro-batch {fix['micro_batch']} ({fix['peak_gib']} GiB)"
        )
        ckpt = "+".join(m[0] for m in s["setting"]["checkpoint"]) or "-"
        lines.append(
            f"{s['stage']:<9} {s['batch_per_gpu']:>9} {s['setting']['micro_batch']:>5} {ckpt:<6}"
            + "".join(f" {s['gib'][p]:>9}" for p in parts)
            + f"  {'yes' if s['fits'] else 'NO':<4}  {fix_text}"
        )
    return "\n".join(lines)
