"""`nextvid probe`: attentive probe of a frozen encoder on one benchmark -> OUT/metrics.json.

The encoder is a checkpoint's EMA reference encoder by default (what V-JEPA-style papers probe),
its online encoder, a seeded random-init encoder (`--checkpoint random:PRESET`) or none at all
(`--encoder pixels`: raw tubelet pixels). `--finetune` trains the encoder and the head end to end
with labels instead (the benchmark's supervised ceiling, nextvid.probe.finetune). The protocol is the benchmark's preset plus an optional
YAML file plus `--set KEY=VALUE` overrides; errors name the key. See docs/probe.md."""

from __future__ import annotations

import json
import sys

from nextvid.probe.inputs import add_probe_arguments, resolve_probe


def configure(parser) -> None:
    add_probe_arguments(parser)
    parser.add_argument("--out", required=True, help="output directory (metrics.json, features/)")
    parser.add_argument(
        "--recompute-features",
        action="store_true",
        help="recompute the training features every epoch even where they could be cached",
    )
    parser.add_argument(
        "--finetune",
        action="store_true",
        help="train the encoder and the head end to end with labels (the supervised ceiling); metrics.json says mode: finetune",
    )
    parser.add_argument(
        "--encoder-lr-scale",
        type=float,
        default=1.0,
        help="--finetune: the encoder's learning rate is the grid's times this (default 1)",
    )


def run(args) -> int:
    from nextvid.config import ConfigError
    from nextvid.data.badinput import TooManyBadInputs
    from nextvid.probe.finetune import run_finetune
    from nextvid.probe.run import run_probe

    if args.finetune and args.recompute_features:
        raise ConfigError(
            "--recompute-features: a finetune caches no features (the encoder changes every step); drop one of the two"
        )
    if args.encoder_lr_scale != 1.0 and not args.finetune:
        raise ConfigError("--encoder-lr-scale: only a finetune trains the encoder (add --finetune)")
    if args.finetune and args.encoder == "pixels":
        raise ConfigError("--finetune: raw pixels have no encoder to train; finetune a checkpoint or random:PRESET")
    protocol, source, data, device = resolve_probe(args)
    try:
        if args.finetune:
            metrics = run_finetune(
                source,
                protocol,
                data,
                args.out,
                device=device,
                workers=args.workers,
                encoder_lr_scale=args.encoder_lr_scale,
            )
        else:
            metrics = run_probe(
                source,
                protocol,
                data,
                args.out,
                device=device,
                chunk=args.extract_batch,
                workers=args.workers,
                cache_train=False if args.recompute_features else None,
            )
    except TooManyBadInputs as err:  # bad samples are skipped and counted; this many means the data needs fixing
        print(f"nextvid probe: {err}", file=sys.stderr)
        return 1
    print(
        json.dumps(
            {
                "benchmark": protocol.benchmark,
                "mode": metrics["mode"],
                "out": args.out,
                **{name: rule["top1"] for name, rule in metrics["results"].items()},
                "skipped": metrics["data"]["skipped"],
            }
        )
    )
    return 0
