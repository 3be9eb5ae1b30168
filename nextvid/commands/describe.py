"""`nextvid describe`: parameter and FLOP counts of a preset or config."""

from __future__ import annotations

import json

from nextvid.commands.common import add_config_arguments, resolve_config


def configure(parser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--tau-draws", type=int, default=None, help="tau draws per condition (default: the first stage's)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args) -> int:
    from nextvid.describe import describe

    info = describe(resolve_config(args), tau_draws=args.tau_draws)
    if args.json:
        print(json.dumps(info))
        return 0
    width = max(map(len, info))
    for key, value in info.items():
        shown = f"{value:,}" if isinstance(value, int) else value
        print(f"{key:<{width}}  {shown}")
    return 0
