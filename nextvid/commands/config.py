"""`nextvid config`: print the resolved config (YAML) and its stable hash, or validate a file."""

from __future__ import annotations

from nextvid.commands.common import add_config_arguments, resolve_config


def configure(parser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--hash", action="store_true", help="print only the config's stable hash")


def run(args) -> int:
    import yaml

    cfg = resolve_config(args)
    if args.hash:
        print(cfg.stable_hash())
    else:
        print(f"# hash: {cfg.stable_hash()}")
        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
    return 0
