"""`nextvid probe`: attentive probe of a frozen encoder on one benchmark -> OUT/metrics.json.

The encoder is a checkpoint's EMA reference encoder by default (what V-JEPA-style papers probe),
its online encoder, a seeded random-init encoder (`--checkpoint random:PRESET`) or none at all
(`--encoder pixels`: raw tubelet pixels). `--finetune` trains the encoder and the head end to end
with labels instead (the benchmark's supervised ceiling, nextvid.probe.finetune). The protocol is the benchmark's preset plus an optional
YAML file plus `--set KEY=VALUE` overrides; errors name the key. See docs/probe.md."""

from __future__ import annotations

import json
import sys


def add_probe_arguments(parser) -> None:
    """The arguments that choose what is probed and how (shared with `nextvid bench probe`)."""
    parser.add_argument("--checkpoint", required=True, help="a nextvid checkpoint (.pt), or random:PRESET for a seeded random-init encoder")
    # dest: `nextvid bench` keeps the name of the bench in args.benchmark
    parser.add_argument("--benchmark", dest="probe_benchmark", required=True, help="k400, ssv2, diving48, in1k, images, appearance, motion, motion_sequence, or a name for --protocol")
    parser.add_argument("--encoder", choices=["reference", "online", "pixels"], default="reference", help="reference: the EMA encoder (default); pixels: no encoder")
    parser.add_argument("--protocol", help="YAML file applied on top of the benchmark's protocol (may name `preset:`)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override one protocol key, e.g. epochs=5 or grid.lr=[1e-3] (repeatable)")
    parser.add_argument("--train-manifest", help="overrides the protocol's train_manifest")
    parser.add_argument("--val-manifest", help="overrides the protocol's val_manifest")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--workers", type=int, default=0, help="data-loader processes for decoding")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's); on cores shared with other jobs, 1 is often much faster")
    parser.add_argument("--extract-batch", type=int, default=4, help="samples per encoder forward (does not change the protocol)")
    parser.add_argument("--backend", choices=["auto", "decord", "pyav"], default="auto", help="video decoder (auto: decord, PyAV where decord cannot)")


def configure(parser) -> None:
    add_probe_arguments(parser)
    parser.add_argument("--out", required=True, help="output directory (metrics.json, features/)")
    parser.add_argument("--recompute-features", action="store_true", help="recompute the training features every epoch even where they could be cached")
    parser.add_argument("--finetune", action="store_true",
                        help="train the encoder and the head end to end with labels (the supervised ceiling); metrics.json says mode: finetune")
    parser.add_argument("--encoder-lr-scale", type=float, default=1.0, help="--finetune: the encoder's learning rate is the grid's times this (default 1)")


def resolve_probe(args):
    """(protocol, token source, clip sets, device) from the arguments; a config error exits with
    status 2, an unusable manifest or checkpoint with status 1, each with a message (`nextvid` prints
config and manifest errors)."""
    import torch

    from nextvid.probe.data import probe_data
    from nextvid.probe.encoders import load_token_source
    from nextvid.probe.protocol import load_protocol
    from nextvid.train.checkpoint import CheckpointError

    overrides = list(args.overrides)
    for key, value in (("train_manifest", args.train_manifest), ("val_manifest", args.val_manifest)):
        if value is not None:
            overrides.append(f"{key}={json.dumps(value)}")
    try:
        protocol = load_protocol(args.probe_benchmark, args.protocol, overrides)
        source = load_token_source(args.checkpoint, args.encoder, protocol)
        data = probe_data(protocol, args.backend)
    except (CheckpointError, FileNotFoundError) as err:  # input errors (config, manifest) reach `nextvid`
        print(f"nextvid: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    return protocol, source, data, device


def run(args) -> int:
    from nextvid.config import ConfigError
    from nextvid.data.badinput import TooManyBadInputs
    from nextvid.probe.finetune import run_finetune
    from nextvid.probe.run import run_probe

    if args.finetune and args.recompute_features:
        raise ConfigError("--recompute-features: a finetune caches no features (the encoder changes every step); drop one of the two")
    if args.encoder_lr_scale != 1.0 and not args.finetune:
        raise ConfigError("--encoder-lr-scale: only a finetune trains the encoder (add --finetune)")
    if args.finetune and args.encoder == "pixels":
        raise ConfigError("--finetune: raw pixels have no encoder to train; finetune a checkpoint or random:PRESET")
    protocol, source, data, device = resolve_probe(args)
    try:
        if args.finetune:
            metrics = run_finetune(source, protocol, data, args.out, device=device, workers=args.workers, encoder_lr_scale=args.encoder_lr_scale)
        else:
            metrics = run_probe(
                source, protocol, data, args.out, device=device, chunk=args.extract_batch, workers=args.workers,
                cache_train=False if args.recompute_features else None,
            )
    except TooManyBadInputs as err:  # bad samples are skipped and counted; this many means the data needs fixing
        print(f"nextvid probe: {err}", file=sys.stderr)
        return 1
    print(json.dumps({"benchmark": protocol.benchmark, "mode": metrics["mode"], "out": args.out, **{name: rule["top1"] for name, rule in metrics["results"].items()},
                      "skipped": metrics["data"]["skipped"]}))
    return 0
