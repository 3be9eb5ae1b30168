"""Arguments shared by subcommands that take a config."""

from __future__ import annotations


def add_config_arguments(parser) -> None:
    parser.add_argument("--preset", help="named config (vit_l, vit_h, vit_g, tiny, nano, cpu); default vit_l or the file's `preset:`")
    parser.add_argument("--config", help="YAML file applied on top of the preset")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override one key, e.g. model.encoder.depth=4 (repeatable)")


def resolve_config(args):
    """The resolved config; a ConfigError (naming the key or file) reaches `nextvid`, which prints it
    and exits with status 2."""
    from nextvid.config import load

    return load(args.preset, args.config, args.overrides)
