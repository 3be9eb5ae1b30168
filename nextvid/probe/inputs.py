"""What a probe run takes, from command-line arguments: the protocol (benchmark preset, YAML file,
overrides), the token source, the clip sets and the device. Shared by `nextvid probe` and
`nextvid bench probe`, so both probe the same thing from the same arguments (docs/probe.md)."""

from __future__ import annotations

import json
import sys

from nextvid.catalog import PROBE_ENCODERS
from nextvid.config_engine import add_overrides_argument


def add_probe_arguments(parser) -> None:
    """The arguments that choose what is probed and how (shared with `nextvid bench probe`)."""
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="a nextvid checkpoint (.pt), or random:PRESET for a seeded random-init encoder",
    )
    # dest: `nextvid bench` keeps the name of the bench in args.benchmark
    parser.add_argument(
        "--benchmark",
        dest="probe_benchmark",
        required=True,
        help="k400, ssv2, diving48, in1k, images, appearance, motion, motion_sequence, or a name for --protocol",
    )
    parser.add_argument(
        "--encoder",
        choices=PROBE_ENCODERS,
        default="reference",
        help="reference: the EMA encoder (default); pixels: no encoder; convnet: a seeded small 3D CNN (the --finetune ceiling)",
    )
    parser.add_argument("--protocol", help="YAML file applied on top of the benchmark's protocol (may name `preset:`)")
    add_overrides_argument(parser, "override one protocol key, e.g. epochs=5 or grid.lr=[1e-3] (repeatable)")
    parser.add_argument("--train-manifest", help="overrides the protocol's train_manifest")
    parser.add_argument("--val-manifest", help="overrides the protocol's val_manifest")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--workers", type=int, default=0, help="data-loader processes for decoding")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: torch's); on cores shared with other jobs, 1 is often much faster",
    )
    parser.add_argument(
        "--extract-batch", type=int, default=4, help="samples per encoder forward (does not change the protocol)"
    )
    parser.add_argument(
        "--backend",
        choices=["auto", "decord", "pyav"],
        default="auto",
        help="video decoder (auto: decord, PyAV where decord cannot)",
    )


def resolve_probe(args):
    """(protocol, token source, clip sets, device) from the arguments; a config error exits with
        status 2, an unusable manifest or checkpoint with status 1, each with a message (`nextvid` prints
    config and manifest errors)."""
    import torch

    from nextvid.probe.clips import probe_data
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
