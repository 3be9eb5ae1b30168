"""`nextvid bench <name>`: measure one part of the system and record the numbers.

Benchmarks are sibling subcommands, one module each, listed in BENCHMARKS. Each prints a table,
writes its result with the environment to results/bench/<name>.json (atomically) and, with --json,
prints the result as one JSON line last.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

# name -> (module in nextvid.bench, one-line help). A module exposes configure, measure and table.
BENCHMARKS: dict[str, tuple[str, str]] = {
    "data": ("nextvid.bench.data", "clips/s of raw decoding, streaming (decode + augment) and the uint8 shard cache"),
    "train": ("nextvid.bench.train", "steps/s and MFU of a full training step, fp32 vs bf16 autocast"),
    "encoder": ("nextvid.bench.encoder", "encoder forward+backward against timm's ViT of the same size"),
    "gpu": (
        "nextvid.bench.gpu",
        "one paper-scale step per preset on one GPU: step time, MFU, peak memory vs the memory model, flex vs SDPA",
    ),
    "paper": ("nextvid.bench.paper", "FLOPs of the paper's training run, the MFU its 146 h imply, our estimated hours"),
    "probe": (
        "nextvid.bench.probe",
        "attentive probe: cached features + head grid vs features recomputed every epoch for one head",
    ),
}


def configure(parser) -> None:
    sub = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for name, (module_name, help_text) in BENCHMARKS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--out", default=f"results/bench/{name}.json", help="result file (default: %(default)s)")
        p.add_argument("--json", action="store_true", help="print the result as one JSON line, last")
        importlib.import_module(module_name).configure(p)


def run(args) -> int:
    from nextvid.bench import environment
    from nextvid.data.badinput import TooManyBadInputs
    from nextvid.io import atomic_write_json

    module = importlib.import_module(BENCHMARKS[args.benchmark][0])
    try:
        result = {"benchmark": args.benchmark, **module.measure(args), "environment": environment()}
    except TooManyBadInputs as err:  # bad files are skipped and counted; this many means the data needs fixing
        print(f"nextvid bench {args.benchmark}: {err}", file=sys.stderr)
        return 1
    print(module.table(result))
    atomic_write_json(Path(args.out), result)
    print(f"wrote {args.out}")
    if args.json:
        print(json.dumps(result, sort_keys=True))
    return 0
