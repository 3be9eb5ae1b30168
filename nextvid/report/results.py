"""Probe results as one long table: a row per (metrics.json, selection rule), keyed by what the path
says (nextvid.layout) and checked against what the file says, so a number can never land in the
wrong cell: the `ceiling` row's record must be a finetune's (`nextvid probe --finetune`), every other
row's a frozen probe's. Tables, figures and findings all read results through here.

Columns: config, variant, seed, step, clips, benchmark, rule, top1, path. `clips` is the clips the
probed checkpoint had seen (NaN for metrics written before probes recorded it). `rule` is `best_on_val` (the
paper's convention) or `heldout_selected`. The pseudo-benchmark `avg` (`mirror_average`) is the
per-seed mean of the two benchmarks that are (paper protocols) or mirror (embedded benchmarks) the
paper's IN1K and SSv2, the pair the paper averages in its ablation tables.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterable, Optional

import pandas as pd

from nextvid.catalog import CEILING_VARIANT, REFERENCE_VARIANTS
from nextvid.layout import parse_probe_metrics
from nextvid.report.paper_numbers import EMBEDDED_MIRRORS, PAPER_PROTOCOLS

RULES = ("best_on_val", "heldout_selected")
PAPER_RULE = "best_on_val"
AVG = "avg"
COLUMNS = ["config", "variant", "seed", "step", "clips", "benchmark", "rule", "top1", "path"]
AVG_OF = ("IN1K", "SSv2")  # the paper benchmarks its ablation tables average


class ResultsError(ValueError):
    """A metrics file that cannot be placed: unreadable, wrong schema, or disagreeing with its path."""


def read_metrics(path: str | Path) -> list[dict]:
    """The rows of one metrics.json (one per selection rule it reports)."""
    key = parse_probe_metrics(path)
    try:
        metrics = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ResultsError(f"{path}: cannot be read ({err})") from err
    if metrics.get("schema") != 1:
        raise ResultsError(f"{path}: metrics schema {metrics.get('schema')!r}, this report reads schema 1")
    mode = metrics.get("mode", "frozen")  # records before the field were frozen probes
    if key.variant == CEILING_VARIANT and mode != "finetune":
        raise ResultsError(
            f"{path}: a {mode!r} record where the supervised ceiling's belongs (`nextvid probe --finetune`)"
        )
    if key.variant != CEILING_VARIANT and mode != "frozen":
        raise ResultsError(
            f"{path}: a {mode!r} record (`nextvid probe --finetune`: a supervised ceiling), where a frozen probe's belongs"
        )
    if metrics.get("benchmark") != key.benchmark:
        raise ResultsError(
            f"{path}: the file is for benchmark {metrics.get('benchmark')!r}, its path says {key.benchmark!r}"
        )
    step = (metrics.get("checkpoint") or {}).get("step")
    if step is not None and int(step) != key.step:
        raise ResultsError(f"{path}: the probed checkpoint is at step {step}, the path says step {key.step}")
    clips = (metrics.get("checkpoint") or {}).get("clips_seen")
    rows = []
    for rule in RULES:
        result = metrics.get("results", {}).get(rule)
        if result is not None:
            rows.append(
                {
                    "config": key.config,
                    "variant": key.variant,
                    "seed": key.seed,
                    "step": key.step,
                    "clips": math.nan if clips is None else int(clips),
                    "benchmark": key.benchmark,
                    "rule": rule,
                    "top1": float(result["top1"]),
                    "path": str(path),
                }
            )
    if not any(r["rule"] == PAPER_RULE for r in rows):
        raise ResultsError(f"{path}: no results.{PAPER_RULE}")
    return rows


def load_results(paths: Iterable[str | Path], config: Optional[str] = None) -> pd.DataFrame:
    """Every metrics file's rows; with `config`, only that config's. More than one config without
    `config` is an error: a table mixes no presets."""
    rows = [row for p in sorted({str(p) for p in paths}) for row in read_metrics(p)]
    df = pd.DataFrame(rows, columns=COLUMNS)
    configs = sorted(df["config"].unique())
    if config is not None:
        df = df[df["config"] == config]
    elif len(configs) > 1:
        raise ResultsError(f"results of several configs ({', '.join(configs)}): choose one with --config")
    return df.reset_index(drop=True)


def final_steps(df: pd.DataFrame, step: Optional[int] = None) -> pd.DataFrame:
    """Each run's rows at its last probed step (or at `step`); reference rows keep their own step.
    A run is (config, variant, seed); steps are never mixed within a run."""
    if df.empty:
        return df
    reference = df["variant"].isin(REFERENCE_VARIANTS)
    if step is None:
        last = df.groupby(["config", "variant", "seed"])["step"].transform("max")
        keep = df["step"] == last
    else:
        keep = reference | (df["step"] == step)
    return df[keep].reset_index(drop=True)


def paper_benchmark(benchmark: str) -> Optional[str]:
    """The paper benchmark a probed benchmark is or mirrors (None: neither)."""
    return EMBEDDED_MIRRORS.get(benchmark) or PAPER_PROTOCOLS.get(benchmark)


def mirror_average(df: pd.DataFrame) -> pd.DataFrame:
    """`df` plus `avg` rows: per (run, step, rule), the mean over the benchmarks that are or mirror
    AVG_OF, where each of AVG_OF has exactly one."""
    if df.empty:
        return df
    mirror = df["benchmark"].map(paper_benchmark)
    part = df[mirror.isin(AVG_OF)].assign(mirror=mirror)
    keys = ["config", "variant", "seed", "step", "rule"]
    groups = part.groupby(keys).agg(
        top1=("top1", "mean"),
        clips=("clips", "first"),
        n=("mirror", "nunique"),
        rows=("mirror", "size"),
        path=("path", lambda p: ";".join(sorted(p))),
    )
    groups = (
        groups[(groups["n"] == len(AVG_OF)) & (groups["rows"] == len(AVG_OF))].drop(columns=["n", "rows"]).reset_index()
    )
    groups["benchmark"] = AVG
    return pd.concat([df, groups[COLUMNS]], ignore_index=True)


def budget_label(df: pd.DataFrame) -> str:
    """The probed budgets of `df`'s pretrained rows: "step S (C clips)" per distinct pair (issue 20:
    budgets in clips seen); "step S" where the metrics predate clips_seen."""
    pairs = sorted({(int(s), None if c != c else int(c)) for s, c in zip(df["step"], df["clips"])}, key=lambda p: p[0])
    return ", ".join(f"step {s}" + ("" if c is None else f" ({c:,} clips)") for s, c in pairs) or "none"


def summarise(values: Iterable[float]) -> tuple[float, float, int]:
    """(mean, sample std (ddof 1; NaN for one value), n)."""
    vals = [float(v) for v in values]
    n = len(vals)
    if n == 0:
        return math.nan, math.nan, 0
    mean = sum(vals) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1)) if n > 1 else math.nan
    return mean, std, n


def aggregate(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, std, n, seeds and source paths per (variant, benchmark, rule)."""
    out = []
    for (variant, benchmark, rule), g in df.groupby(["variant", "benchmark", "rule"], sort=True):
        mean, std, n = summarise(g["top1"])
        out.append(
            {
                "variant": variant,
                "benchmark": benchmark,
                "rule": rule,
                "mean": mean,
                "std": std,
                "n": n,
                "seeds": ",".join(str(s) for s in sorted(g["seed"])),
                "steps": ",".join(str(s) for s in sorted(set(g["step"]))),
                "paths": ";".join(sorted(g["path"])),
            }
        )
    return pd.DataFrame(out, columns=["variant", "benchmark", "rule", "mean", "std", "n", "seeds", "steps", "paths"])


def format_cell(mean: float, std: float, n: int, digits: int = 1) -> str:
    """'45.3 ± 1.2' (one seed: '45.3'); empty without results."""
    if n == 0 or math.isnan(mean):
        return ""
    return f"{mean:.{digits}f}" if n < 2 else f"{mean:.{digits}f} ± {std:.{digits}f}"
