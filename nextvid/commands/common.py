"""Arguments shared by subcommands that take a config."""

from __future__ import annotations

import sys


def add_config_arguments(parser) -> None:
    parser.add_argument("--preset", help="named config (vit_l, vit_h, vit_g, tiny, nano, cpu); default vit_l or the file's `preset:`")
    parser.add_argument("--config", help="YAML file applied on top of the preset")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override one key, e.g. model.encoder.depth=4 (repeatable)")


def resolve_config(args):
    """The resolved config; a config error exits with status 2 and a message naming the key."""
    from nextvid.config import ConfigError, load

    try:
        return load(args.preset, args.config, args.overrides)
    except ConfigError as err:
        print(f"nextvid: config error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
