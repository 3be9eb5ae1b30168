"""The `nextvid` command. Each subcommand lives in its own module; modules import torch and other
heavy dependencies inside `run`, so `nextvid --help` and argument errors stay fast."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from nextvid.errors import UserInputError

# name -> (module, one-line help). A module exposes `configure(parser)` and `run(args) -> int`.
COMMANDS: dict[str, tuple[str, str]] = {
    "describe": ("nextvid.commands.describe", "parameter and FLOP counts of a preset or config"),
    "config": ("nextvid.commands.config", "print a resolved config (preset + file + overrides)"),
    "pretrain": ("nextvid.commands.pretrain", "pretrain an encoder (debug, local or SLURM launcher)"),
    "probe": ("nextvid.commands.probe", "attentive probe of a frozen encoder on one benchmark"),
    "data": (
        "nextvid.commands.data",
        "convert benchmarks to manifests, check files, cache decoded clips, fetch sources",
    ),
    "bench": ("nextvid.commands.bench", "benchmarks (data loading, ...): a table, results/bench/<name>.json"),
    "generate": (
        "nextvid.commands.generate",
        "next-frame generations from a checkpoint's flow decoder (Fig. 5 samples)",
    ),
    "report": ("nextvid.commands.report", "tables beside the paper's, figures, findings, t-SNE features"),
    "vae": ("nextvid.commands.vae", "train the small VAE of the `vae` generation target on a mixture's frames"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nextvid", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an input error (a bad config, override or file)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        p.set_defaults(_module=module_name)
        importlib.import_module(module_name).configure(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except UserInputError as err:  # the message names the key or file; a traceback would only bury it
        if args.debug:
            raise
        print(f"nextvid: {err.kind}: {err}", file=sys.stderr)
        return err.status
