"""`nextvid pretrain`: pretrain an encoder, launched through submitit (debug: in this process;
local: a subprocess on this machine; slurm: a SLURM job). The config is resolved by
nextvid.config_resolve, as the workflow's plan resolves it; its errors (including missing data) are
reported before anything is submitted. Rerunning the command re-attaches to the live job, resubmits a
dead one (it resumes from its checkpoint) or returns at once when the run is complete."""

from __future__ import annotations

import json
import sys

from nextvid.config import add_config_arguments
from nextvid.config_resolve import resolve_pretrain_config


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
    # input errors (a bad key, a missing manifest, no data) reach `nextvid`, which prints them
    cfg = resolve_pretrain_config(args.preset, args.config, args.overrides, args.mixture)
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
