"""`nextvid report`: the paper's tables with our numbers beside them, the figures, the findings page,
and the pooled features the t-SNE figure reads. Inputs are result files at nextvid.layout's paths
(the path says config / variant / seed / step / benchmark); outputs are written atomically.

    nextvid report tables   --metrics M.json... --out DIR [--runs RUN...] [--config C] [--step N] [--tables T...]
    nextvid report figures  --out DIR [--metrics M.json...] [--runs RUN...] [--generations DIR...] [--features F.npz...]
    nextvid report findings --metrics M.json... --out FILE.md [--runs RUN...] [--config C] [--step N] [--features F.npz...]
    nextvid report features --checkpoint CKPT --benchmark B --val-manifest VAL.tsv --out FILE.npz [...]
    nextvid report publish  SOURCE TARGET
"""

from __future__ import annotations

import logging
import sys

from nextvid.config_engine import add_overrides_argument

log = logging.getLogger(__name__)


def configure(parser) -> None:
    sub = parser.add_subparsers(dest="report_command", metavar="WHAT", required=True)

    p = sub.add_parser(
        "tables", help="Tables 1, 2, 3, 4, 5, 11, 12: ours beside the paper's (md, tex, csv, sources.csv)"
    )
    _results_arguments(p, required=True)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--tables", nargs="+", metavar="TABLE", help="only these (default: all)")

    p = sub.add_parser("figures", help="Fig. 4 (probe vs step), 5 (generations), 6 (losses), 7 (t-SNE): PNG + caption")
    _results_arguments(p, required=False)
    p.add_argument(
        "--generations", nargs="+", default=[], metavar="DIR", help="`nextvid generate` output directories (Fig. 5)"
    )
    p.add_argument(
        "--features",
        nargs="+",
        default=[],
        metavar="NPZ",
        help="`nextvid report features` files (Fig. 7), one panel each",
    )
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--seed", type=int, default=0, help="t-SNE seed")

    p = sub.add_parser("findings", help="docs/findings.md: each claim of the paper's ablations, verdict and numbers")
    _results_arguments(p, required=True)
    p.add_argument(
        "--features",
        nargs="+",
        default=[],
        metavar="NPZ",
        help="`nextvid report features` files of one benchmark: RankMe per variant",
    )
    p.add_argument("--out", required=True, help="output Markdown file")

    p = sub.add_parser("features", help="pooled frozen features of a val split (for Fig. 7's t-SNE)")
    p.add_argument("--checkpoint", required=True, help="a nextvid checkpoint (.pt), or random:PRESET")
    p.add_argument(
        "--benchmark",
        required=True,
        help="probe protocol whose encoder layers and clip geometry are used (e.g. motion)",
    )
    p.add_argument("--val-manifest", required=True)
    p.add_argument("--out", required=True, help="output .npz")
    p.add_argument("--encoder", choices=["reference", "online", "pixels"], default="reference")
    add_overrides_argument(p, "override one protocol key (repeatable)")
    p.add_argument(
        "--max-samples", type=int, default=500, help="class-balanced deterministic subset of at most this many samples"
    )
    p.add_argument("--label", help="name in the figure (default: variant/seed/step from the checkpoint's path)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--extract-batch", type=int, default=4, help="samples per encoder forward")
    p.add_argument("--backend", choices=["auto", "decord", "pyav"], default="auto")

    p = sub.add_parser("publish", help="copy a page the report wrote (findings) to a repository path, atomically")
    p.add_argument("source")
    p.add_argument("target")


def _results_arguments(p, required: bool) -> None:
    p.add_argument(
        "--metrics",
        nargs="+",
        required=required,
        default=[],
        metavar="JSON",
        help="probe metrics.json files at nextvid.layout paths",
    )
    p.add_argument(
        "--runs",
        nargs="+",
        default=[],
        metavar="RUN_DIR",
        help="pretraining run directories (budget line; Fig. 6 losses)",
    )
    p.add_argument("--config", help="use only this config's results (required when several are given)")
    p.add_argument("--step", type=int, help="report this pretraining step instead of each run's last probed one")


def run(args) -> int:
    from nextvid.report.results import ResultsError
    from nextvid.report.runs import RunError

    try:
        commands = {
            "tables": _tables,
            "figures": _figures,
            "findings": _findings,
            "features": _features,
            "publish": _publish,
        }
        return commands[args.report_command](args)
    except (ResultsError, RunError, ValueError, FileNotFoundError) as err:
        print(f"nextvid report {args.report_command}: {err}", file=sys.stderr)
        return 1


def _results(args, every_step: bool = False):
    from nextvid.report.results import final_steps, load_results, mirror_average

    df = load_results(args.metrics, args.config)
    return mirror_average(df if every_step else final_steps(df, args.step))


def _runs(args):
    from nextvid.report.runs import read_run

    return [read_run(r) for r in sorted(set(args.runs))]


def _tables(args) -> int:
    from nextvid.report.render import write_table
    from nextvid.report.runs import budget_line
    from nextvid.report.tables import TABLES, build_table

    unknown = sorted(set(args.tables or ()) - set(TABLES))
    if unknown:
        raise ValueError(f"--tables: unknown {', '.join(unknown)} (choose from {', '.join(TABLES)})")
    results, runs = _results(args), _runs(args)
    budget = budget_line(runs)
    for name in args.tables or TABLES:
        table = build_table(name, results, args.step, runs)
        if budget:
            table.caption.append(budget)
        for note in table.notes:
            log.info("%s: %s", name, note)
        write_table(table, args.out)
    print(
        f"nextvid report tables: {len(args.tables or TABLES)} tables from {len(set(args.metrics))} metrics files -> {args.out}"
    )
    return 0


def _figures(args) -> int:
    from nextvid.report import figures

    if not (args.metrics or args.runs or args.generations or args.features):
        raise ValueError(
            "nothing to draw: give --metrics (Fig. 4), --runs (Fig. 6), --generations (Fig. 5) and/or --features (Fig. 7)"
        )
    written = []
    if args.metrics:
        written.append(figures.probe_vs_step(_results(args, every_step=True), args.out))
    if args.runs:
        written.append(figures.losses_by_stage(_runs(args), args.out))
    if args.generations:
        from nextvid.report.grids import generations_figure

        written.append(generations_figure(args.generations, args.out))
    if args.features:
        from nextvid.report.tsne import tsne_figure

        written.append(tsne_figure(args.features, args.out, args.seed))
    print("nextvid report figures: " + " ".join(str(p) for p in written))
    return 0


def _findings(args) -> int:
    from nextvid.io import atomic_write_text
    from nextvid.report.findings import render_findings
    from nextvid.report.runs import budget_line

    budget = budget_line(_runs(args))
    rank = None
    if args.features:
        from nextvid.report.rank import rank_rows

        rank = rank_rows(args.features)
        rank = rank[rank["config"] == args.config] if args.config else rank
    atomic_write_text(args.out, render_findings(_results(args), {"budget": budget} if budget else None, rank))
    print(f"nextvid report findings: {args.out}")
    return 0


def _features(args) -> int:
    import torch

    from nextvid.layout import checkpoint_label
    from nextvid.probe.pooled_features import extract_features, save_features

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    data = extract_features(
        args.checkpoint,
        args.benchmark,
        args.val_manifest,
        args.encoder,
        args.overrides,
        args.max_samples,
        device,
        args.extract_batch,
        args.backend,
    )  # a ConfigError reaches `nextvid`, which prints it
    save_features(args.out, data, args.label or checkpoint_label(args.checkpoint, args.encoder))
    print(f"nextvid report features: {len(data['labels'])} samples x {data['features'].shape[1]} -> {args.out}")
    return 0


def _publish(args) -> int:
    """The workflow publishes the findings page at the repository path an experiment names: the page
    byte for byte, never a partial file."""
    import shutil

    from nextvid.io import atomic_path

    with atomic_path(args.target) as tmp:
        shutil.copyfile(args.source, tmp)
    print(f"nextvid report publish: {args.source} -> {args.target}")
    return 0
