"""`nextvid bench encoder`: forward + backward of our encoder (3D RoPE, frame-wise causal attention)
against timm's `VisionTransformer` of the same width, depth, heads, MLP size and token count, in one
run, fp32 and bf16 autocast.

timm's ViT gets the same FLOPs: its patch embedding sees `in_chans * tubelet` channels (the Conv2d
then costs what our tubelet Conv3d costs) on an image of `T' * H` by `W` pixels, so it has
`T' * H' * W'` tokens, no class token, a learned absolute position embedding and bidirectional
attention. Our encoder is also timed without the causal mask, which isolates what the mask costs.
`ratio_vs_timm` = timm's time / ours (> 1: ours is faster); `cpu_time` repeats the ratios on process
CPU time, which does not count the time other jobs hold the cores. Where this CPU emulates bf16
(`bf16_native: false`), the bf16 ratios are withheld (null, `bf16_note` says why): they would
compare two emulations, not the two encoders.
"""

from __future__ import annotations

import statistics
from typing import Callable

from nextvid.bench.timing import (
    add_timing_arguments,
    bf16_verdict,
    cpu_flags,
    interleaved,
    load_average,
    parse_dtypes,
    threads,
)


def configure(parser) -> None:
    from nextvid.config import add_config_arguments

    add_config_arguments(parser)
    parser.set_defaults(preset="tiny")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="clips per step (default: the first stage's batch)"
    )
    parser.add_argument(
        "--reps", type=int, default=3, help="timed forward+backward passes per variant and round (default %(default)s)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default %(default)s)")
    add_timing_arguments(parser, matmul=False)


def timm_twin(enc):
    """timm's ViT with our encoder's width, depth, heads, MLP hidden size and token count."""
    from timm.models.vision_transformer import VisionTransformer

    from nextvid.models.encoder import timm_mlp_ratio

    Tp, side = enc.frames // enc.tubelet, enc.image_size
    return VisionTransformer(
        img_size=(Tp * side, side),
        patch_size=enc.patch_size,
        in_chans=enc.in_chans * enc.tubelet,
        num_classes=0,
        global_pool="",
        embed_dim=enc.width,
        depth=enc.depth,
        num_heads=enc.heads,
        mlp_ratio=timm_mlp_ratio(enc.width, enc.mlp_ratio),
        qkv_bias=True,
        class_token=False,
    )


def fwd_bwd(model: "_Bound", x, autocast: bool) -> Callable[[], None]:
    import torch

    params = [p for p in model.parameters() if p.requires_grad]

    def run() -> None:
        for p in params:
            p.grad = None
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            out = model(x)
        out.float().square().mean().backward()

    return run


def measure(args) -> dict:
    import torch

    from nextvid.config import resolve_config
    from nextvid.models.encoder import Encoder
    from nextvid.train.schedule import plan

    cfg = resolve_config(args)
    enc = cfg.model.encoder
    dtypes = parse_dtypes(args.dtypes)
    batch = args.batch_size or plan(cfg.schedule, 0).batch_size
    Tp, side = enc.frames // enc.tubelet, enc.image_size
    load_before = load_average()
    with threads(args.threads):
        torch.manual_seed(0)
        ours = Encoder(enc)
        twin = timm_twin(enc)
        g = torch.Generator().manual_seed(0)
        video = torch.rand(batch, enc.in_chans, enc.frames, side, side, generator=g) * 2 - 1
        # the same pixels for timm, each tubelet's frames stacked on channels, token-frames stacked on height
        image = video.reshape(batch, enc.in_chans, Tp, enc.tubelet, side, side).permute(0, 1, 3, 2, 4, 5)
        image = image.reshape(batch, enc.in_chans * enc.tubelet, Tp * side, side).contiguous()
        with torch.no_grad():
            tokens = ours(video).shape[1]
            assert twin.forward_features(image).shape[1] == tokens, "timm twin has a different token count"
        models = {
            "ours": (_Bound(ours, ours), video),
            "ours_bidirectional": (_Bound(ours, lambda v: ours(v, causal=False)), video),
            "timm": (_Bound(twin, twin.forward_features), image),
        }
        variants, reps = {}, {}
        for d in dtypes:
            for name, (model, x) in models.items():
                variants[f"{name}_{d}"] = fwd_bwd(model, x, d == "bf16")
                reps[f"{name}_{d}"] = args.reps
        for fn in variants.values():  # warm-up
            fn()
        times, cpu_times = interleaved(variants, args.rounds, reps)
    med = {k: statistics.median(v) for k, v in times.items()}
    cpu = {k: statistics.median(v) for k, v in cpu_times.items()}
    result: dict = {
        "preset": args.preset,
        "width": enc.width,
        "depth": enc.depth,
        "heads": enc.heads,
        "tokens": tokens,
        "batch_size": batch,
        "causal": enc.causal,
        "params_ours": sum(p.numel() for p in ours.parameters()),
        "params_timm": sum(p.numel() for p in twin.parameters()),
        "threads": args.threads,
        "reps": args.reps,
        "rounds": args.rounds,
        "cpu": cpu_flags(),
        "load_average": {"before": load_before, "after": load_average()},
        "cpu_time": {},
    }
    native = bf16_verdict(result, dtypes)
    for d in dtypes:
        result[d] = {
            name: {"s": med[f"{name}_{d}"], "all": times[f"{name}_{d}"], "cpu_s": cpu[f"{name}_{d}"]} for name in models
        }
        suffix = "" if d == "fp32" else f"_{d}"
        meaningful = d == "fp32" or native
        for key, (num, den) in {
            "ratio_vs_timm": ("timm", "ours"),
            "causal_mask_cost": ("ours", "ours_bidirectional"),
        }.items():
            result[key + suffix] = med[f"{num}_{d}"] / med[f"{den}_{d}"] if meaningful else None
            result["cpu_time"][key + suffix] = cpu[f"{num}_{d}"] / cpu[f"{den}_{d}"] if meaningful else None
    if "ratio_vs_timm" not in result:  # bf16 only: the key still names the result
        result["ratio_vs_timm"] = result["ratio_vs_timm_bf16"]
    return result


class _Bound:
    """A callable with the parameters of `module` (for zeroing gradients)."""

    def __init__(self, module, fn):
        self.module, self.fn = module, fn

    def parameters(self):
        return self.module.parameters()

    def __call__(self, x):
        return self.fn(x)


def table(result: dict) -> str:
    lines = [
        f"encoder forward+backward, preset {result['preset']}: width {result['width']}, depth {result['depth']}, "
        f"heads {result['heads']}, {result['tokens']} tokens, batch {result['batch_size']}, {result['threads']} thread(s)",
        f"params ours {result['params_ours']:,} / timm {result['params_timm']:,}; medians of {result['rounds']} "
        f"interleaved rounds x {result['reps']}; load average {result['load_average']}",
        f"{'dtype':<6} {'ours s':>8} {'ours bidir s':>13} {'timm s':>8} {'timm/ours':>10} {'mask cost':>10}"
        f" {'| CPU time: timm/ours':>21} {'mask cost':>10}",
    ]
    for d in ("fp32", "bf16"):
        if d not in result:
            continue
        r = result[d]
        suffix = "" if d == "fp32" else f"_{d}"
        lines.append(
            f"{d:<6} {r['ours']['s']:>8.3f} {r['ours_bidirectional']['s']:>13.3f} {r['timm']['s']:>8.3f} "
            f"{_ratio(result['ratio_vs_timm' + suffix], 10)} {_ratio(result['causal_mask_cost' + suffix], 10)}"
            f" | {_ratio(result['cpu_time']['ratio_vs_timm' + suffix], 19)} {_ratio(result['cpu_time']['causal_mask_cost' + suffix], 10)}"
        )
    lines.append(
        f"bf16 native: {result['bf16_native']}" + (f"; {result['bf16_note']}" if "bf16_note" in result else "")
    )
    return "\n".join(lines)


def _ratio(value: float | None, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.3f}"
