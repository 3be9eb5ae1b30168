"""Fig. 4 (probe accuracy vs training step) and Fig. 6 (training losses by stage), with matplotlib's
Agg backend, each PNG written atomically with a caption file for `snakemake --report`.

Variant colours are fixed by the registry order (nextvid.experiments), so a variant has the same
colour in every figure."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from nextvid.catalog import CEILING_VARIANT, FIGURES, REFERENCE_VARIANTS  # noqa: E402
from nextvid.experiments import VARIANTS  # noqa: E402
from nextvid.io import atomic_path, atomic_write_text  # noqa: E402
from nextvid.report.results import PAPER_RULE, summarise  # noqa: E402
from nextvid.report.runs import LOSSES, Run, read_losses, stage_spans  # noqa: E402
from nextvid.report.tables import benchmark_columns, column_label  # noqa: E402

FIG4, FIG6 = FIGURES["fig4"], FIGURES["fig6"]


REFERENCE_COLOURS = {"random": "black", "pixels": "dimgrey", CEILING_VARIANT: "darkred"}
# the floors dashed, the supervised ceiling dotted: a line the pretrained curves are read against
REFERENCE_STYLES = {"random": "--", "pixels": "--", CEILING_VARIANT: ":"}


def colour(variant: str):
    if variant in REFERENCE_COLOURS:
        return REFERENCE_COLOURS[variant]
    order = list(VARIANTS)
    i = order.index(variant) if variant in order else len(order) + sum(map(ord, variant))
    return plt.get_cmap("tab20")(i % 20)


def save(fig, out_dir: str | Path, name: str, caption: str) -> Path:
    """DIR/<name>.png (atomic) and DIR/<name>.caption.rst."""
    path = Path(out_dir) / f"{name}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    atomic_write_text(Path(out_dir) / f"{name}.caption.rst", caption.strip() + "\n")
    return path


def probe_vs_step(results: pd.DataFrame, out_dir: str | Path) -> Path:
    """Fig. 4: one panel per benchmark, one line per variant (mean ± std band over seeds at each
    probed checkpoint, placed at the clips it had seen), the reference rows (floors and the supervised
    ceiling) as horizontal lines. `results`: every step, with `avg`."""
    df = results[results["rule"] == PAPER_RULE]
    if df.empty:
        raise ValueError("Fig. 4: no probe results")
    benches = benchmark_columns(df, "fig4")
    # the budget axis in clips seen (issue 20); in steps where some metrics predate clips_seen
    pretrained = df[~df["variant"].isin(REFERENCE_VARIANTS)]
    x = "clips" if pretrained["clips"].notna().all() else "step"
    fig, axes = plt.subplots(1, len(benches), figsize=(3.6 * len(benches), 3.2), squeeze=False)
    for ax, bench in zip(axes[0], benches):
        part = df[df["benchmark"] == bench]
        for variant in _ordered(part["variant"]):
            rows = part[part["variant"] == variant]
            if variant in REFERENCE_VARIANTS:
                mean, std, _ = summarise(rows["top1"])
                ax.axhline(mean, color=colour(variant), ls=REFERENCE_STYLES[variant], lw=1.2, label=variant)
                if std == std:
                    ax.axhspan(mean - std, mean + std, color=colour(variant), alpha=0.1, lw=0)
                continue
            stats = [(budget, *summarise(g["top1"])) for budget, g in rows.groupby(x)]
            budgets, means, stds = (np.array([s[i] for s in stats], dtype=float) for i in range(3))
            ax.plot(budgets, means, marker="o", ms=3, color=colour(variant), label=variant)
            ok = ~np.isnan(stds)
            ax.fill_between(budgets[ok], (means - stds)[ok], (means + stds)[ok], color=colour(variant), alpha=0.2, lw=0)
        ax.set_title(column_label(bench), fontsize=9)
        ax.set_xlabel("clips seen" if x == "clips" else "pretraining step")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("top-1 (%)")
    _legend(fig, axes)
    caption = (
        "Fig. 4 (ours): attentive-probe top-1 on the frozen encoder against the pretraining budget, one panel per benchmark "
        "(labelled with the paper benchmark it mirrors; avg: mean of the IN1K and SSv2 mirrors). Lines: mean over seeds, "
        "band: ± sample std; dashed: the floors (random-init encoder, raw pixels); dotted: the supervised ceiling (a small "
        "3D CNN and the probe head trained end to end with labels, at its own lighter settings). Head selection: best on val "
        "(the paper's convention). "
        + (
            "The x axis is clips seen (steps x batch, stage by stage), as the paper plots data seen."
            if x == "clips"
            else "The x axis is steps: some metrics predate the clips-seen record."
        )
    )
    return save(fig, out_dir, FIG4, caption)


def losses_by_stage(runs: Sequence[Run], out_dir: str | Path) -> Path:
    """Fig. 6: flow / align (/ regression) loss against step, one line per variant (mean over its
    seeds, band min-max), stages shaded from the first run's log."""
    logs = [(run, df) for run in runs if (df := read_losses(run)) is not None and len(df)]
    if not logs:
        raise ValueError("Fig. 6: no run has a metrics.csv with rows")
    columns = [c for c in LOSSES[:-1] if any(c in df and df[c].notna().any() for _, df in logs)] or [LOSSES[-1]]
    fig, axes = plt.subplots(1, len(columns), figsize=(4.5 * len(columns), 3.2), squeeze=False)
    spans = stage_spans(logs[0][1])
    for ax, column in zip(axes[0], columns):
        for i, (stage, start, end) in enumerate(spans):
            ax.axvspan(start, end, color="grey", alpha=0.08 if i % 2 == 0 else 0.0, lw=0)
            if i:
                ax.axvline(start, color="grey", lw=0.8, ls=":")
            ax.text(
                (start + end) / 2, 1.0, stage, transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=7
            )
        for variant in _ordered({run.variant for run, _ in logs}):
            frames = [
                df.set_index("step")[column]
                for run, df in logs
                if run.variant == variant and column in df and df[column].notna().any()
            ]
            if not frames:
                continue
            joined = pd.concat(frames, axis=1).sort_index()
            ax.plot(
                joined.index,
                joined.mean(axis=1),
                color=colour(variant),
                lw=1.2,
                label=f"{variant} ({len(frames)} seed{'s' * (len(frames) > 1)})",
            )
            if len(frames) > 1:
                ax.fill_between(
                    joined.index, joined.min(axis=1), joined.max(axis=1), color=colour(variant), alpha=0.2, lw=0
                )
        values = pd.concat([df[column] for _, df in logs if column in df]).dropna()
        if len(values) and values.min() > 0 and values.max() / values.min() > 10:
            ax.set_yscale("log")  # losses spanning decades; a narrow range reads better linear
        ax.set_xlabel("pretraining step")
        ax.set_ylabel(f"{column} loss")
        ax.grid(alpha=0.3, which="both")
    _legend(fig, axes)
    caption = (
        f"Fig. 6 (ours): training losses ({', '.join(columns)}) against step from each run's metrics.csv, one line per variant "
        "(mean over seeds, band: min-max over seeds; log scale where a loss spans more than a decade). Shading and dotted lines: the schedule's stages "
        f"({', '.join(s for s, _, _ in spans)}) as logged by {logs[0][0].label}; the flow decoder's LR and the τ draws change "
        "at the stable-2 boundary, frames and batch at the cool-down boundary (docs/method.md §4)."
    )
    return save(fig, out_dir, FIG6, caption)


def _ordered(variants) -> list[str]:
    order = {v: i for i, v in enumerate(list(VARIANTS) + list(REFERENCE_VARIANTS))}
    return sorted(set(variants), key=lambda v: (order.get(v, len(order)), v))


def _legend(fig, axes) -> None:
    handles, labels = {}, {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    labels = list(handles)
    fig.legend(
        [handles[k] for k in labels], labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False
    )
    fig.tight_layout()
