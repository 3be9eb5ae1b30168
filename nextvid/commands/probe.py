"""`nextvid probe`: attentive probe of a frozen encoder on one benchmark -> OUT/metrics.json.

The encoder is a checkpoint's EMA reference encoder by default (what V-JEPA-style papers probe),
its online encoder, a seeded random-init encoder (`--checkpoint random:PRESET`) or none at all
(`--encoder pixels`: raw tubelet pixels). The protocol is the benchmark's preset plus an optional
YAML file plus `--set KEY=VALUE` overrides; errors name the key. See docs/probe.md."""

from __future__ import annotations

import json
import sys

from nextvid.probe.inputs import add_probe_arguments, resolve_probe


def configure(parser) -> None:
    add_probe_arguments(parser)
    parser.add_argument("--out", required=True, help="output directory (metrics.json, features/)")
    parser.add_argument("--recompute-features", action="store_true", help="recompute the training features every epoch even where they could be cached")


def run(args) -> int:
    from nextvid.data.badinput import TooManyBadInputs
    from nextvid.probe.run import run_probe

    protocol, source, data, device = resolve_probe(args)
    try:
        metrics = run_probe(
            source, protocol, data, args.out, device=device, chunk=args.extract_batch, workers=args.workers,
            cache_train=False if args.recompute_features else None,
        )
    except TooManyBadInputs as err:  # bad samples are skipped and counted; this many means the data needs fixing
        print(f"nextvid probe: {err}", file=sys.stderr)
        return 1
    print(json.dumps({"benchmark": protocol.benchmark, "out": args.out, **{name: rule["top1"] for name, rule in metrics["results"].items()},
                      "skipped": metrics["data"]["skipped"]}))
    return 0
