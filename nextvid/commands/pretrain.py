"""`nextvid pretrain`: pretrain an encoder, launched through submitit (debug: in this process;
local: a subprocess on this machine; slurm: a SLURM job). Config errors (including missing data) are
reported before anything is submitted. Rerunning the command re-attaches to the live job, resubmits a
dead one (it resumes from its checkpoint) or returns at once when the run is complete."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from nextvid.config import add_config_arguments, resolve_config


def configure(parser) -> None:
    add_config_arguments(parser)
    parser.add_argument(
        "--mixture", help="mixture file (`nextvid data embedded` or `cache-mixture` output): sets data.sources"
    )
    parser.add_argument("--out", required=True, help="run directory (checkpoints, metrics.csv, job.json)")
    parser.add_argument("--launcher", choices=["debug", "local", "slurm"], default="local")
    parser.add_argument("--wait", action="store_true", help="block until the run finishes; fail with the job's error")
    parser.add_argument(
        "--no-snapshot",
        action="store_true",
        help="SLURM: run the live repository instead of a snapshot taken at submission",
    )


def run(args) -> int:
    from nextvid.config import merge
    from nextvid.data.mixture import absolute_sources, read_mixture

    cfg = resolve_config(args)  # here and below, input errors reach `nextvid`, which prints them
    if args.mixture:
        cfg = merge(cfg, {"data": {"sources": read_mixture(args.mixture)}})
    cfg = merge(cfg, {"data": {"sources": absolute_sources(cfg.data.sources)}})
    if cfg.target.kind == "vae":  # like the data: a SLURM job runs from a snapshot elsewhere
        cfg = merge(
            cfg,
            {
                "target": {
                    key: str(Path(getattr(cfg.target, key)).expanduser().resolve()) for key in ("vae_path", "vae_stats")
                }
            },
        )
    if not cfg.data.sources:
        print(
            "nextvid: config error: data.sources: no pretraining data (give --mixture or data.sources)", file=sys.stderr
        )
        return 2
    from nextvid.launch import LaunchError, launch

    try:
        record = launch(
            cfg, args.out, args.launcher, wait=args.wait or args.launcher == "debug", snapshot=not args.no_snapshot
        )
    except LaunchError as err:
        print(f"nextvid pretrain: {err}", file=sys.stderr)
        return 1
    print(json.dumps(record))
    return 0
