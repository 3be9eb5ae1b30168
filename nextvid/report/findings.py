"""docs/findings.md, generated: what our runs say about each claim of the paper's ablations (docs/method.md §6),
under the rule of nextvid.report.verdict, with the numbers. Deterministic (no clock, sorted inputs),
so a rerun on the same results rewrites the same bytes.

The primary metric of a claim is `avg` (the per-seed mean of the IN1K and SSv2 mirrors), the basis
of the paper's own ablation claims; every benchmark is shown too, and the held-out selection rule's
verdict beside the paper rule's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pandas as pd

from nextvid.report.results import AVG, AVG_OF, PAPER_RULE, RULES, format_cell, summarise
from nextvid.report.tables import benchmark_columns, column_label
from nextvid.report.verdict import EQUIVALENCE_MARGIN, RULE_TEXT, Comparison, Kind, combine, compare

BASELINE = "nextvid"


@dataclass(frozen=True)
class Claim:
    name: str
    statement: str
    paper: str
    comparisons: tuple[tuple[str, str], ...]  # (A, B): "A beats B" (or "A ≈ B")
    kind: Kind = "greater"
    caveat: str = ""


CLAIMS = (
    Claim(
        "Masking is essential",
        "The simplified model with masking beats the same model without masking (two unmasked views).",
        "Table 4 (simplified model): without 31.0 / 14.7 / 22.9, with 75.0 / 58.7 / 66.9 (IN1K / SSv2 / avg).",
        (("simplified", "simplified_no_masking"),),
    ),
    Claim(
        "Masking is essential to the full model too (ours)",
        "NExT-Vid with masking beats the same model without masking (two unmasked views).",
        "Not in the paper, which ran Table 4 on its simplified model (75.0 / 58.7 / 66.9 with masking, 31.0 / 14.7 / 22.9 without).",
        (("nextvid", "no_masking"),),
    ),
    Claim(
        "The EMA reference is essential",
        "NExT-Vid with the EMA reference encoder beats the model whose reference is the online encoder.",
        "Table 12: without EMA < 10 / < 10 (training crashes), with 75.1 / 63.8 / 69.5.",
        (("nextvid", "no_ema"),),
    ),
    Claim(
        "Alignment and context isolation together beat either alone",
        "The full design (generation + alignment + context isolation) beats every partial design of Table 2.",
        "Table 2 avg: full 69.5; Gen only 68.9, Gen + C-Iso 66.9, Align only 68.8, Align + C-Iso 67.5.",
        (("nextvid", "gen_only"), ("nextvid", "gen_ciso"), ("nextvid", "align_only"), ("nextvid", "align_ciso")),
    ),
    Claim(
        "Flow-matching generation beats direct regression",
        "NExT-Vid (flow-matching generation) beats the Toto/AIM-style causal next-frame pixel regression baseline.",
        "Sec. 1 and Table 1 (Toto 1B: 74.4 K400 / 75.3 IN1K; NExT-Vid-L 78.5 / 76.3).",
        (("nextvid", "ar_regression"),),
        caveat="Not a one-factor ablation: the regression baseline also has no masking, no alignment and no EMA reference, "
        "so a difference cannot be attributed to the generation objective alone.",
    ),
    Claim(
        "Cross-attention alone beats cross + self attention",
        "In the simplified model, noisy targets that only cross-attend to z_t beat noisy targets that also self-attend within their frame.",
        "Table 5 (simplified model): cross + self attention 72.6 / 54.2 / 63.4, cross only 75.0 / 58.7 / 66.9.",
        (("simplified", "cross_self_decoder"),),
    ),
    Claim(
        "The frame-isolated decoder suffices (ours)",
        "The full model's decoder with self-attention within a token-frame beats letting noisy targets attend to earlier frames.",
        "Not in the paper: our extra Table 5 row on the full model.",
        (("nextvid", "cross_frame_decoder"),),
    ),
    Claim(
        "τ draws barely matter",
        f"k = 4 τ draws in the first stages (NExT-Vid) and k = 1 throughout give about the same accuracy (within ±{EQUIVALENCE_MARGIN:g} points).",
        "Table 11, 15K steps: k = 1 75.3 / 63.8 / 69.6, k = 4 75.1 / 63.8 / 69.5.",
        (("nextvid", "tau1"),),
        kind="equivalent",
    ),
    Claim(
        "VAE latents are a better target than pixels",
        "Generating the latents of a VAE beats generating pixels.",
        "Table 3: pixels 73.5 / 62.4 / 68.0, VA-VAE 75.1 / 63.8 / 69.5 (our VAE: a small one trained by the workflow).",
        (("target_vae", "nextvid"),),
    ),
)
REFERENCES = ("random", "pixels")


def seed_values(results: pd.DataFrame, variant: str, benchmark: str, rule: str) -> list[float]:
    rows = results[(results["variant"] == variant) & (results["benchmark"] == benchmark) & (results["rule"] == rule)]
    return rows.sort_values("seed")["top1"].tolist()


def comparison(results: pd.DataFrame, a: str, b: str, benchmark: str, rule: str, kind: Kind = "greater") -> Comparison:
    return compare(seed_values(results, a, benchmark, rule), seed_values(results, b, benchmark, rule), kind)


def claim_verdict(results: pd.DataFrame, claim: Claim, benchmark: str = AVG, rule: str = PAPER_RULE) -> str:
    return combine([comparison(results, a, b, benchmark, rule, claim.kind).verdict for a, b in claim.comparisons])


def render_findings(results: pd.DataFrame, sources: Optional[dict] = None, rank: Optional[pd.DataFrame] = None) -> str:
    """`results`: long rows at one step per run, with `avg` (nextvid.report.results); `rank`: RankMe
    rows (nextvid.report.rank.rank_rows) for the section on representation rank."""
    benches = [b for b in benchmark_columns(results, "findings") if b != AVG] + [AVG]
    sources = sources or {}
    lines = [
        "# Findings: the paper's claims at small scale",
        "",
        "Generated by `nextvid report findings` from the probe results; do not edit by hand. "
        f"{_source_line(results, sources)}",
        "",
        "## How a verdict is decided",
        "",
        RULE_TEXT,
        "",
        f"Primary metric: `{AVG}`, the per-seed mean of our benchmarks that mirror {' and '.join(AVG_OF)}: the paper's ablation claims rest "
        "on its IN1K / SSv2 average. Head selection: best on val (the paper's convention); the verdict under the held-out selection rule is "
        "shown beside it. Accuracies are top-1 %, mean ± sample std over seeds (n).",
        "",
        "## Summary",
        "",
        f"| claim | paper | ours: {AVG}, A − B [95% CI] | verdict (best on val) | verdict (held-out selected) |",
        "|---|---|---|---|---|",
    ]
    for claim in CLAIMS:
        ours = "; ".join(_difference(results, a, b, claim.kind) for a, b in claim.comparisons)
        lines.append(
            f"| {claim.name} | {claim.paper} | {ours} | {claim_verdict(results, claim)} | {claim_verdict(results, claim, rule='heldout_selected')} |"
        )
    lines += ["", *_beats_reference(results, benches)]
    if rank is not None and not rank.empty:
        lines += ["", *_rank_section(results, rank)]
    for claim in CLAIMS:
        lines += ["", f"## {claim.name}", "", f"Claim: {claim.statement}", "", f"Paper: {claim.paper}", ""]
        if claim.caveat:
            lines += [f"Caveat: {claim.caveat}", ""]
        lines += _comparison_table(results, claim.comparisons, benches, claim.kind)
        lines += [
            "",
            f"Verdict: **{claim_verdict(results, claim)}** (best on val); {claim_verdict(results, claim, rule='heldout_selected')} (held-out selected).",
        ]
    return "\n".join(lines).rstrip() + "\n"


def _beats_reference(results: pd.DataFrame, benches: list[str]) -> list[str]:
    lines = [
        "## Does pretraining beat the reference rows?",
        "",
        f"`{BASELINE}` against a random-init encoder and raw pixels, on every benchmark, under the same rule.",
    ]
    lines += [""] + _comparison_table(results, tuple((BASELINE, ref) for ref in REFERENCES), benches, "greater")
    per = {
        ref: [comparison(results, BASELINE, ref, b, PAPER_RULE).verdict for b in benches if b != AVG]
        for ref in REFERENCES
    }
    for ref, verdicts in per.items():
        lines += [
            "",
            f"`{BASELINE}` beats `{ref}` on every benchmark by more than the seed spread: **{combine(verdicts)}** "
            f"({', '.join(f'{column_label(b)}: {v}' for b, v in zip([b for b in benches if b != AVG], verdicts))}).",
        ]
    return lines


def _rank_section(results: pd.DataFrame, rank: pd.DataFrame) -> list[str]:
    bench = rank["benchmark"].iloc[0]
    if rank["benchmark"].nunique() != 1:
        raise ValueError(
            f"RankMe rows of several benchmarks ({', '.join(sorted(set(rank['benchmark'])))}): give one benchmark's features"
        )
    n, dim = int(rank["samples"].iloc[0]), int(rank["dim"].max())
    lines = [
        f"## Representation rank (RankMe) on `{bench}`",
        "",
        f"How many directions each encoder's features use: RankMe [Garrido et al., 2023] of the mean-pooled features of the same {n} "
        f"class-balanced val samples of `{bench}` (at most {dim}: the feature width), one value per seed (pretraining seed; the random-init encoder's init seed); `nextvid report features` "
        "files, at each run's final step. A representation that pretraining squeezed onto a few directions (dimensional collapse) "
        "gives the probe less to read than a random-init encoder's spread features. Centred: RankMe of the features minus their "
        "mean over samples (the directions in which samples differ); mean's share: the fraction of the features' energy in that mean.",
        "",
        f"| variant | RankMe | centred | mean's share | {column_label(bench)} top-1 (best on val) |",
        "|---|---|---|---|---|",
    ]
    order = (
        [BASELINE]
        + sorted(v for v in set(rank["variant"]) if v not in (BASELINE, *REFERENCES))
        + [r for r in REFERENCES if r in set(rank["variant"])]
    )
    for variant in (v for v in order if v in set(rank["variant"])):
        rows = rank[rank["variant"] == variant].sort_values("seed")
        top1 = seed_values(results, variant, bench, PAPER_RULE)
        share = summarise(rows["mean_share"].tolist())
        lines.append(
            f"| {variant} | {_cell(summarise(rows['rankme'].tolist()))} | {_cell(summarise(rows['rankme_centred'].tolist()))} "
            f"| {format_cell(*share, digits=2)} | {_cell(summarise(top1))} |"
        )
    ours, random = (rank[rank["variant"] == v].sort_values("seed")["rankme"].tolist() for v in (BASELINE, "random"))
    if ours and random:
        c = compare(random, ours)
        ci = "" if c.low != c.low else f" (Welch 95 % CI of random − {BASELINE}: [{c.low:+.1f}, {c.high:+.1f}])"
        lines += [
            "",
            f"`{BASELINE}`'s RankMe is {100 * c.b[0] / c.a[0]:.0f} % of the random-init encoder's; "
            f"lower than it by more than the seed spread{ci}: **{c.verdict}**.",
        ]
    return lines


def _comparison_table(results: pd.DataFrame, pairs, benches: list[str], kind: Kind) -> list[str]:
    sign = "≈" if kind == "equivalent" else ">"
    lines = [
        "| comparison | benchmark | A | B | A − B | 95% CI | verdict | held-out selected |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for a, b in pairs:
        for bench in benches:
            c = comparison(results, a, b, bench, PAPER_RULE, kind)
            h = comparison(results, a, b, bench, RULES[1], kind)
            ci = "" if c.low != c.low else f"[{c.low:+.1f}, {c.high:+.1f}]"
            diff = "" if c.diff != c.diff else f"{c.diff:+.1f}"
            name = f"**{column_label(bench)}**" if bench == AVG else column_label(bench)
            lines.append(
                f"| {a} {sign} {b} | {name} | {_cell(c.a)} | {_cell(c.b)} | {diff} | {ci} | {c.verdict} | {h.verdict} |"
            )
    return lines


def _difference(results: pd.DataFrame, a: str, b: str, kind: Kind) -> str:
    c = comparison(results, a, b, AVG, PAPER_RULE, kind)
    if c.diff != c.diff:
        return f"{a} − {b}: no results"
    ci = "" if c.low != c.low else f" [{c.low:+.1f}, {c.high:+.1f}]"
    return f"{a} − {b}: {c.diff:+.1f}{ci}"


def _cell(stat: tuple[float, float, int]) -> str:
    mean, std, n = stat
    return "–" if n == 0 else f"{format_cell(mean, std, n)} ({n})"


def _source_line(results: pd.DataFrame, sources: dict) -> str:
    if results.empty:
        return "No results were given."
    files = len({p for path in results["path"] for p in path.split(";")})
    configs = ", ".join(sorted(set(results["config"])))
    steps = ", ".join(str(s) for s in sorted(set(results["step"])))
    extra = "".join(f" {v}" for _, v in sorted(sources.items()))
    return f"Inputs: {files} metrics.json files, config {configs}, probed steps {steps} (each run at its final probed step).{extra}"
