"""The paper's Tables 1, 2, 3, 4, 5, 11 and 12 with our results beside the paper's numbers.

A row per variant of nextvid.experiments that lands in the table (its `tables` entry), then the
reference rows: the floors (`random`, `pixels`) and the supervised ceiling (`ceiling`), then the
paper's rows no run of ours matches. Our cells are
mean ± std over seeds of the final probed step, head chosen by the paper's rule (best on val); the
CSV carries both selection rules, and `<table>.sources.csv` one line per (cell, seed, metrics.json).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import pandas as pd

from nextvid.catalog import CEILING_VARIANT, REFERENCE_VARIANTS, TABLES
from nextvid.experiments import VARIANTS
from nextvid.report import paper_numbers
from nextvid.report.results import AVG, AVG_OF, PAPER_RULE, RULES, aggregate, budget_label, format_cell, paper_benchmark
from nextvid.report.runs import Run

REFERENCE_LABELS = {
    "random": "floor: random-init encoder (no pretraining)",
    "pixels": "floor: raw pixels (no encoder)",
    CEILING_VARIANT: "supervised ceiling: small 3D CNN trained with labels",
}
PAPER_SOURCE = "arXiv 2512.21004 {table} (docs/method.md §6)"


@dataclass
class Table:
    name: str
    display: pd.DataFrame  # strings: what the .md and .tex show
    wide: pd.DataFrame  # numbers, both rules: the .csv
    sources: pd.DataFrame  # one line per (cell, rule, seed, metrics.json)
    title: str = ""
    caption: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def paper_columns(name: str) -> tuple[str, ...]:
    return paper_numbers.PAPER_BENCHMARKS if name == "table1" else ("IN1K", "SSv2", "avg")


def paper_rows(name: str) -> dict[str, tuple]:
    """Paper row label -> its values in paper_columns order."""
    if name == "table1":
        return {row: tuple(v[b] for b in paper_numbers.PAPER_BENCHMARKS) for row, v in paper_numbers.TABLE1.items()}
    labels = paper_numbers.ROW_LABELS[name]
    return {labels[key]: values for key, values in paper_numbers.ABLATIONS[name].items()}


def our_rows(name: str, results: Optional[pd.DataFrame] = None) -> list[tuple[str, str]]:
    """(variant, paper row label) in registry order, then the reference rows. A variant sits beside
    the paper's row at the step its runs were probed at, where the paper has one (Table 11's 30K rows)."""
    rows = []
    for variant in VARIANTS.values():
        key = variant.tables.get(name)
        if key is not None:
            key = paper_numbers.row_at_step(name, key, _probed_step(results, variant.name))
            label = (
                paper_numbers.TABLE1_BESIDE.get(key, key) if name == "table1" else paper_numbers.ROW_LABELS[name][key]
            )
            rows.append((variant.name, label))
    return rows + [(ref, "") for ref in REFERENCE_VARIANTS]


def _probed_step(results: Optional[pd.DataFrame], variant: str) -> Optional[int]:
    steps = set() if results is None or results.empty else set(results.loc[results["variant"] == variant, "step"])
    return int(steps.pop()) if len(steps) == 1 else None


def row_captions(name: str, results: pd.DataFrame, runs: list[Run]) -> list[str]:
    """One line per row of ours: the base model, the exact overrides, the encoder probed (from the
    metrics files), the schedule and the target (from the runs' configs)."""
    lines = []
    for variant, _ in our_rows(name, results):
        if variant in REFERENCE_VARIANTS or variant not in set(results["variant"]):
            continue
        v = VARIANTS[variant]
        mine = [r for r in runs if r.variant == variant]
        schedule = "; ".join(sorted({r.schedule for r in mine})) or "unknown (no run directory given)"
        target = "; ".join(sorted({_target(r) for r in mine})) or "unknown (no run directory given)"
        lines.append(
            f"Row {variant}: base {v.claims.base}; overrides {' '.join(v.overrides) or 'none'}; "
            f"probed encoder {_probed(results, variant, v.claims.probed)}; schedule {schedule}; target {target}."
        )
    return lines


def ceiling_caption(results: pd.DataFrame) -> list[str]:
    """What the ceiling row is and the settings it ran at, from its metrics files (it trains its
    encoder, so it has its own lighter protocol); nothing without a ceiling row."""
    paths = sorted(
        {p for paths in results.loc[results["variant"] == CEILING_VARIANT, "path"] for p in paths.split(";")}
    )
    if not paths:
        return []
    settings = set()
    for path in paths:
        try:
            proto = json.loads(Path(path).read_text())["protocol"]
            lrs = "/".join(f"{lr:g}" for lr in proto["grid"]["lr"])
            settings.add(f"{proto['resolution']} px, {proto['epochs']} epochs, lr {lrs}, {proto['precision']}")
        except (OSError, ValueError, KeyError, TypeError):
            settings.add("settings not recorded")
    return [
        "Row ceiling: the supervised ceiling, not a frozen probe and not pretrained: a seeded small 3D CNN "
        "(nextvid.probe.convnet) and the attentive head trained end to end with labels on the train split, "
        "evaluated on val as the probes are (`nextvid probe --finetune --encoder convnet`), at its own lighter "
        f"settings ({'; '.join(sorted(settings))}): what the labels allow at that cost, beside the floors "
        "(random-init encoder, raw pixels)."
    ]


def _target(run: Run) -> str:
    if run.target != "vae":
        return "pixels"
    if Path(run.vae_path).parts[:2] == ("results", "vae"):
        return f"latents of the VAE the workflow trained ({run.vae_path}), standing in for VA-VAE"
    return f"VAE latents ({run.vae_path})"


def _probed(results: pd.DataFrame, variant: str, claimed: str) -> str:
    """EMA or online, as the metrics files record it (nextvid.probe.encoders: `encoder.encoder`)."""
    names = {"reference": "EMA", "online": "online"}
    kinds = set()
    for path in sorted(set(results.loc[results["variant"] == variant, "path"])):
        for one in path.split(";"):
            try:
                kinds.add(names.get(json.loads(Path(one).read_text())["encoder"]["encoder"], "?"))
            except (OSError, ValueError, KeyError, TypeError):
                kinds.add(f"{claimed} (not recorded)")
    return "/".join(sorted(kinds)) or claimed


def benchmark_columns(results: pd.DataFrame, name: str) -> list[str]:
    """Our benchmarks in the paper's order (K400, IN1K, SSv2, Diving48 mirrors), others after, `avg`
    last in the ablation tables."""
    present = sorted(set(results["benchmark"]) - {AVG})
    order = {b: i for i, b in enumerate(paper_numbers.PAPER_BENCHMARKS)}
    present.sort(key=lambda b: (order.get(paper_benchmark(b) or "", len(order)), b))
    if name != "table1" and AVG in set(results["benchmark"]):
        present.append(AVG)
    return present


def column_label(benchmark: str) -> str:
    if benchmark == AVG:
        return f"avg ({' / '.join(AVG_OF)} mirrors)"
    mirror = paper_benchmark(benchmark)
    if mirror is None or mirror == benchmark:
        return benchmark
    return mirror if benchmark in paper_numbers.PAPER_PROTOCOLS else f"{benchmark} (≈{mirror})"


def build_table(name: str, results: pd.DataFrame, step: Optional[int] = None, runs: Sequence[Run] = ()) -> Table:
    """`results`: long rows (nextvid.report.results) already reduced to one step per run, with `avg`."""
    if name not in TABLES:
        raise ValueError(f"table {name!r}: unknown (choose from {', '.join(TABLES)})")
    benches = benchmark_columns(results, name)
    stats = aggregate(results).set_index(["variant", "benchmark", "rule"]) if not results.empty else None
    pcols, prows = paper_columns(name), paper_rows(name)
    display, wide, sources, missing, beside = [], [], [], [], set()
    for variant, label in our_rows(name, results):
        if variant not in set(results["variant"]):
            if variant not in REFERENCE_VARIANTS:
                missing.append(variant)
            continue
        beside.add(label)
        row, num = _our_row(results, stats, variant, label, benches)
        for c, v in zip(pcols, prows.get(label, (None,) * len(pcols))):
            row[f"paper {c}"], num[f"paper.{c}"] = _paper_cell(v), v
        display.append(row)
        wide.append(num)
        sources += _sources(name, results, variant, row["paper row"], benches)
    for label, pvals in prows.items():
        if label in beside:
            continue
        row = {"variant": "(paper only)", "paper row": label, "seeds": "", **{column_label(b): "" for b in benches}}
        row.update({f"paper {c}": _paper_cell(v) for c, v in zip(pcols, pvals)})
        display.append(row)
        wide.append(
            {
                "variant": "(paper only)",
                "paper_row": label,
                "seeds": "",
                **{f"paper.{c}": v for c, v in zip(pcols, pvals)},
            }
        )
    for label in prows:
        for c, v in zip(pcols, prows[label]):
            if v is not None:
                sources.append(
                    {
                        "table": name,
                        "variant": "(paper)",
                        "paper_row": label,
                        "column": f"paper {c}",
                        "rule": "",
                        "seed": "",
                        "step": "",
                        "value": v,
                        "source_top1": v,
                        "path": PAPER_SOURCE.format(table=_paper_table(name)),
                    }
                )
    wide_df = pd.DataFrame(wide)
    for col in [c for c in wide_df.columns if c.endswith(".n")]:
        wide_df[col] = wide_df[col].astype("Int64")  # counts, empty for paper-only rows
    table = Table(name, pd.DataFrame(display), wide_df, pd.DataFrame(sources))
    table.title, table.caption = (
        paper_numbers.TABLE_TITLES[name],
        _caption(name, results, step) + row_captions(name, results, list(runs)) + ceiling_caption(results),
    )
    if missing:
        table.notes.append(f"No results for variant(s) {', '.join(missing)}: omitted.")
    not_run = [label for label in prows if label not in beside]
    if not_run:
        table.notes.append(f"Paper rows without a run of ours (paper numbers only): {'; '.join(not_run)}.")
    return table


def _our_row(results: pd.DataFrame, stats, variant: str, label: str, benches: list[str]) -> tuple[dict, dict]:
    """The displayed cells (paper rule) and the numbers (both rules) of one of our rows."""
    seeds = sorted(set(results.loc[results["variant"] == variant, "seed"]))
    row = {
        "variant": variant,
        "paper row": label or REFERENCE_LABELS.get(variant, ""),
        "seeds": ",".join(map(str, seeds)),
    }
    num = {"variant": variant, "paper_row": row["paper row"], "seeds": row["seeds"]}
    for b in benches:
        for rule in RULES:
            mean, std, n = _stat(stats, variant, b, rule)
            num.update({f"{b}.{rule}.mean": mean, f"{b}.{rule}.std": std, f"{b}.{rule}.n": n})
        mean, std, n = _stat(stats, variant, b, PAPER_RULE)
        row[column_label(b)] = format_cell(mean, std, n) + (f" (n={n})" if 0 < n < len(seeds) else "")
    return row, num


def _stat(stats: Optional[pd.DataFrame], variant: str, benchmark: str, rule: str) -> tuple[float, float, int]:
    if stats is None or (variant, benchmark, rule) not in stats.index:
        return math.nan, math.nan, 0
    s = stats.loc[(variant, benchmark, rule)]
    return float(s["mean"]), float(s["std"]), int(s["n"])


def _paper_cell(value) -> str:
    if value is None:
        return "–"
    return value if isinstance(value, str) else f"{value:.1f}"


def _paper_table(name: str) -> str:
    return f"Table {name.removeprefix('table').split('_')[0]}"


def _sources(name: str, results: pd.DataFrame, variant: str, label: str, benches: list[str]) -> list[dict]:
    """One line per (column, rule, seed, contributing metrics.json): `value` is the seed's cell value,
    `source_top1` the file's own (they differ only for `avg`, a mean of two files)."""
    own = results[results["variant"] == variant]
    files = own[own["benchmark"] != AVG]
    file_top1 = {(p, rule): t for p, rule, t in zip(files["path"], files["rule"], files["top1"])}
    lines = []
    for r in own[own["benchmark"].isin(benches)].itertuples():
        for path in r.path.split(";"):
            lines.append(
                {
                    "table": name,
                    "variant": variant,
                    "paper_row": label,
                    "column": column_label(r.benchmark),
                    "rule": r.rule,
                    "seed": r.seed,
                    "step": r.step,
                    "value": r.top1,
                    "source_top1": file_top1.get((path, r.rule), math.nan),
                    "path": path,
                }
            )
    return sorted(lines, key=lambda d: (d["column"], d["rule"], d["seed"], d["path"]))


def _caption(name: str, results: pd.DataFrame, step: Optional[int]) -> list[str]:
    pretrained = results[~results["variant"].isin(REFERENCE_VARIANTS)]
    when = (
        f"at {budget_label(pretrained)}"
        if step is not None
        else f"at each run's final probed step ({budget_label(pretrained)})"
    )
    config = ", ".join(sorted(set(results["config"]))) or "no results"
    lines = [
        f"Ours: config {config}, top-1 (%) of the attentive probe on the frozen encoder {when}, "
        "mean ± sample std over pretraining seeds (a single value: one seed; (n=k): fewer seeds than the row).",
        "Head selection: best on val, the paper's (V-JEPA 2) convention, optimistic; the CSV also has the head chosen on a held-out part of the train split.",
        f"Columns: our benchmarks, each labelled with the paper benchmark it mirrors; avg = mean of the {' and '.join(AVG_OF)} mirrors per seed, as the paper averages IN1K and SSv2.",
        "Paper columns: the paper's numbers ("
        + (
            "frozen, 1-layer attentive probe"
            if name == "table1"
            else "ViT-L, the 132K schedule stopped at 15K steps unless the row says otherwise"
        )
        + ").",
    ]
    return lines
