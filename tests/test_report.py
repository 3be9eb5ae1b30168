"""The report layer: tables with the paper's numbers beside ours (mean ± std over seeds, every cell
traced to its metrics.json, missing variants noted), the findings' verdict rule, the figures, and
`nextvid generate` / `nextvid report features` on a nano checkpoint trained for a few steps.

Metrics files are copies of one real metrics.json (written by the probe's own run_probe on synthetic
tokens) with their accuracies set by the test, at nextvid.layout's paths."""

from __future__ import annotations

import copy
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from nextvid import layout
from nextvid.catalog import CEILING_VARIANT, REFERENCE_VARIANTS
from nextvid.cli import main
from nextvid.config import merge
from nextvid.io import atomic_write_json
from nextvid.report import verdict
from nextvid.report.findings import CLAIMS, claim_verdict, render_findings
from nextvid.report.results import ResultsError, final_steps, load_results, mirror_average
from nextvid.report.tables import TABLES, build_table

sys.path.insert(0, str(Path(__file__).parent))
from probe_synthetic import TokenClips, token_source  # noqa: E402

BENCHES = ("images", "appearance", "motion", "motion_sequence")
PNG = b"\x89PNG\r\n\x1a\n"


pytestmark = pytest.mark.usefixtures("single_thread")  # see conftest.py


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> dict:
    """One real metrics.json, from the probe's own code on synthetic tokens."""
    from nextvid.probe.clips import ProbeData
    from nextvid.probe.protocol import load_protocol
    from nextvid.probe.run import run_probe

    torch.set_num_threads(1)
    fast = [
        "heads=4",
        "epochs=2",
        "batch_size=32",
        "warmup_epochs=0.5",
        "grid.lr=[0.01, 0.001]",
        "grid.weight_decay=[0.01]",
    ]
    protocol = load_protocol("motion", overrides=fast)
    train, val = TokenClips(40, 4, segments=2, seed=1), TokenClips(12, 4, segments=2, seed=2)
    metrics = run_probe(
        token_source(), protocol, ProbeData(lambda epoch: train, val, 4), tmp_path_factory.mktemp("probe")
    )
    assert set(metrics["results"]) == {"best_on_val", "heldout_selected"}
    return metrics


def put(
    root: Path,
    template: dict,
    variant: str,
    seed: int,
    step: int,
    bench: str,
    top1: float,
    heldout: float | None = None,
    config: str = "tiny",
    clips_per_step: int | None = 16,
) -> Path:
    """A copy of the template at (variant, seed, step, bench); clips_per_step None: a metrics file written
    before probes recorded the clips seen. The ceiling's is marked as `nextvid probe --finetune` marks it."""
    m = copy.deepcopy(template)
    if variant == CEILING_VARIANT:
        m["mode"] = "finetune"
    m["benchmark"], m["checkpoint"]["step"] = bench, step
    m["checkpoint"].pop("clips_seen", None)
    if clips_per_step is not None:
        m["checkpoint"]["clips_seen"] = step * clips_per_step
    m["results"]["best_on_val"]["top1"] = top1
    m["results"]["heldout_selected"]["top1"] = top1 - 3 if heldout is None else heldout
    path = layout.probe_metrics(config, variant, seed, step, bench, root / "results")
    atomic_write_json(path, m)
    return path


def put_all(root, template, values: dict[str, list[float]], step: int = 200, benches=BENCHES) -> list[Path]:
    """values: variant -> per-seed top-1 (the same on every benchmark, + 1 per benchmark index)."""
    paths = []
    for variant, per_seed in values.items():
        s = 0 if variant in REFERENCE_VARIANTS else step
        for seed, v in enumerate(per_seed):
            paths += [put(root, template, variant, seed, s, b, v + i) for i, b in enumerate(benches)]
    return paths


def results_of(paths, step=None):
    return mirror_average(final_steps(load_results(paths), step))


# ------------------------------------------------------------------------------------------ tables


def test_tables_mean_std_beside_paper(tmp_path, template):
    paths = put_all(
        tmp_path,
        template,
        {
            "simplified": [60.0, 62.0, 64.0],
            "simplified_no_masking": [40.0, 41.0, 42.0],
            "random": [30.0, 30.0, 33.0],
            "pixels": [35.0],
        },
    )
    out = tmp_path / "tables"
    assert main(["report", "tables", "--metrics", *map(str, paths), "--out", str(out)]) == 0
    for name in TABLES:
        for ext in (".md", ".tex", ".csv", ".sources.csv", ".caption.rst"):
            assert (out / f"{name}{ext}").stat().st_size > 0
    md = (out / "table4_masking.md").read_text()
    # images (index 0): 60, 62, 64 -> 62.0 ± 2.0; motion (index 2): 64 ± 2; avg of the two mirrors per seed: 63 ± 2
    row = next(line for line in md.splitlines() if line.startswith("| simplified |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    header = [
        c.strip() for c in next(line for line in md.splitlines() if line.startswith("| variant")).strip("|").split("|")
    ]
    got = dict(zip(header, cells))
    assert (
        got["images (≈IN1K)"] == "62.0 ± 2.0"
        and got["motion (≈SSv2)"] == "64.0 ± 2.0"
        and got["appearance (≈K400)"] == "63.0 ± 2.0"
    )
    assert got["avg (IN1K / SSv2 mirrors)"] == "63.0 ± 2.0"
    assert (got["paper IN1K"], got["paper SSv2"], got["paper avg"]) == (
        "75.0",
        "58.7",
        "66.9",
    )  # Table 4, simplified model with masking
    no_mask = dict(
        zip(
            header,
            [
                c.strip()
                for c in next(line for line in md.splitlines() if line.startswith("| simplified_no_masking |"))
                .strip("|")
                .split("|")
            ],
        )
    )
    assert no_mask["paper IN1K"] == "31.0" and no_mask["images (≈IN1K)"] == "41.0 ± 1.0"
    pixels = dict(
        zip(
            header,
            [
                c.strip()
                for c in next(line for line in md.splitlines() if line.startswith("| pixels |")).strip("|").split("|")
            ],
        )
    )
    assert pixels["images (≈IN1K)"] == "35.0" and pixels["paper IN1K"] == "–"  # one seed: no std
    assert "best on val" in md and "<10" in (out / "table12_ema.md").read_text()
    # the CSV carries both selection rules, numerically
    wide = pd.read_csv(out / "table4_masking.csv").set_index("variant")
    assert wide.loc["simplified", "images.best_on_val.mean"] == pytest.approx(62.0)
    assert wide.loc["simplified", "images.heldout_selected.mean"] == pytest.approx(59.0)
    assert (
        wide.loc["simplified", "images.best_on_val.std"] == pytest.approx(2.0)
        and wide.loc["simplified", "images.best_on_val.n"] == 3
    )
    assert wide.loc["simplified", "paper.IN1K"] == pytest.approx(75.0)
    tex = (out / "table4_masking.tex").read_text()
    assert r"62.0 $\pm$ 2.0" in tex and r"simplified\_no\_masking" in tex and r"\label{tab:table4_masking}" in tex
    table1 = (out / "table1.md").read_text()
    assert "NExT-Vid ViT-L" in table1 and "78.5" in table1 and "V-JEPA 2 ViT-G" in table1


def test_every_row_caption_names_base_overrides_encoder_schedule_and_target(tmp_path, template):
    from nextvid import config
    from nextvid.report.runs import read_run

    paths = put_all(tmp_path, template, {"simplified": [60.0], "no_masking": [50.0], "random": [30.0]}, step=15)
    for path in paths:  # the probe recorded which encoder it read
        m = json.loads(path.read_text())
        m["encoder"]["encoder"] = "online" if "/simplified/" in str(path) else "reference"
        path.write_text(json.dumps(m))
    runs = []  # run directories as the trainer leaves them (config.yaml)
    for variant, sets in {
        "simplified": ["schedule.total_steps=132", "schedule.stop_at=15"],
        "no_masking": [
            "schedule.total_steps=150",
            "target.kind=vae",
            "target.vae_path=results/vae/tiny",
            "target.vae_stats=results/vae/tiny/stats.json",
        ],
    }.items():
        run = layout.pretrain_dir("tiny", variant, 0, tmp_path / "results")
        run.mkdir(parents=True)
        config.save(config.load("tiny", None, sets), run / "config.yaml")
        runs.append(read_run(run))
    caption = build_table("table4_masking", results_of(paths), runs=runs).caption
    rows = {line.split(":")[0]: line for line in caption if line.startswith("Row ")}
    assert rows.keys() == {"Row simplified", "Row no_masking"}  # reference rows are described by their labels
    assert rows["Row simplified"] == (
        "Row simplified: base simplified; overrides objective.alignment=false model.decoder.condition=cross "
        "model.decoder.attention=none; probed encoder online; schedule early-stopped at step 15 of the "
        "132-step schedule; target pixels."
    )
    assert "probed encoder EMA" in rows["Row no_masking"] and "stages rescaled to 150 steps" in rows["Row no_masking"]
    assert "standing in for VA-VAE" in rows["Row no_masking"] and "masking.unmasked_views=2" in rows["Row no_masking"]


def test_table11_rows_sit_beside_the_paper_row_at_their_step(tmp_path, template):
    paths = put_all(tmp_path, template, {"nextvid": [60.0], "tau1": [61.0]}, step=30_000)
    rows = set(
        build_table("table11_tau_draws", results_of(paths)).display.query("variant != '(paper only)'")["paper row"]
    )
    assert rows == {"k = 4, 30K steps", "k = 1, 30K steps"}
    paths = put_all(tmp_path / "15k", template, {"nextvid": [60.0]}, step=15_000)
    assert "k = 4, 15K steps" in set(build_table("table11_tau_draws", results_of(paths)).display["paper row"])


def test_sources_trace_every_cell(tmp_path, template):
    paths = put_all(
        tmp_path,
        template,
        {
            "nextvid": [50.0, 55.0, 53.0],
            "gen_only": [48.0, 49.0],
            "random": [20.0, 21.0, 25.0],
            "pixels": [30.0, 31.0, 29.0],
        },
    )
    table = build_table("table2_design", results_of(paths))
    src = table.sources[table.sources["variant"] != "(paper)"]
    # every file's own number is the number in the file
    for path, rule, top1 in zip(src["path"], src["rule"], src["source_top1"]):
        assert json.loads(Path(path).read_text())["results"][rule]["top1"] == pytest.approx(top1)
    # every cell's mean is the mean of its per-seed values; avg values are the mean of their two files
    per_seed = src.drop_duplicates(["variant", "column", "rule", "seed"])
    wide = table.wide.set_index("variant")
    label_to_bench = {
        "images (≈IN1K)": "images",
        "motion (≈SSv2)": "motion",
        "appearance (≈K400)": "appearance",
        "motion_sequence (≈Diving48)": "motion_sequence",
        "avg (IN1K / SSv2 mirrors)": "avg",
    }
    checked = 0
    for (variant, column, rule), g in per_seed.groupby(["variant", "column", "rule"]):
        assert wide.loc[variant, f"{label_to_bench[column]}.{rule}.mean"] == pytest.approx(g["value"].mean())
        checked += 1
    assert checked == 4 * 5 * 2  # 4 rows x 5 columns x 2 rules
    avg = src[src["column"].str.startswith("avg")]
    for _, g in avg.groupby(["variant", "rule", "seed"]):
        assert len(g) == 2 and g["value"].iloc[0] == pytest.approx(g["source_top1"].mean())
    # the paper's cells name their source too
    assert (table.sources[table.sources["variant"] == "(paper)"]["path"].str.contains("Table 2")).all()


def test_missing_variants_and_seeds_do_not_crash(tmp_path, template):
    paths = put_all(
        tmp_path, template, {"nextvid": [50.0, 52.0, 54.0], "random": [20.0, 21.0, 22.0]}, benches=("images", "motion")
    )
    paths.remove(
        layout.probe_metrics("tiny", "nextvid", 2, 200, "motion", tmp_path / "results")
    )  # one seed short on motion
    results = results_of(paths)
    for name in TABLES:
        table = build_table(name, results)
        assert "nextvid" in set(table.display["variant"])
    t3 = build_table("table3_target", results)
    assert (
        any("target_vae" in n for n in t3.notes) and "pixels" not in t3.notes[0]
    )  # pixels is a reference row, not a missing variant
    assert set(t3.display.loc[t3.display["variant"] == "(paper only)", "paper row"]) >= {"SigLIP2", "Cosmos VAE"}
    row = t3.display.set_index("variant").loc["nextvid"]
    assert row["motion (≈SSv2)"] == "52.0 ± 1.4 (n=2)" and row["avg (IN1K / SSv2 mirrors)"] == "51.5 ± 1.4 (n=2)"
    assert build_table("table5_decoder", results_of(paths[:1])).display.shape[0] >= 2  # one file only: still a table
    out = tmp_path / "tables"
    assert main(["report", "tables", "--metrics", str(paths[0]), "--out", str(out), "--tables", "table12_ema"]) == 0
    assert "No results for variant(s) no_ema" in (out / "table12_ema.md").read_text()


def test_the_supervised_ceiling_sits_beside_the_floors_in_table1_and_fig4(tmp_path, template, monkeypatch):
    from nextvid.report import figures

    values = {"nextvid": [40.0], "random": [12.0], "pixels": [15.0], CEILING_VARIANT: [60.0]}
    paths = put_all(tmp_path, template, values)
    for path in paths:  # the ceiling ran at its own settings, one lr, nothing held out
        if f"/{CEILING_VARIANT}/" in path.as_posix():
            m = json.loads(path.read_text())
            m["protocol"].update(
                resolution=32, epochs=6, precision="fp32", grid={"lr": [0.001], "weight_decay": [0.01]}
            )
            del m["results"]["heldout_selected"]
            path.write_text(json.dumps(m))
    results = results_of(paths)
    table = build_table("table1", results)
    rows = list(table.display["variant"])
    assert rows.index("nextvid") < rows.index("random") < rows.index("pixels") < rows.index(CEILING_VARIANT)
    shown = table.display.set_index("variant")
    assert shown.loc[CEILING_VARIANT, "paper row"].startswith("supervised ceiling")
    assert shown.loc["random", "paper row"].startswith("floor") and shown.loc["pixels", "paper row"].startswith("floor")
    assert (
        shown.loc[CEILING_VARIANT, "images (≈IN1K)"] == "60.0"
        and shown.loc[CEILING_VARIANT, "motion (≈SSv2)"] == "62.0"
    )
    assert any(c.startswith("Row ceiling:") and "(32 px, 6 epochs, lr 0.001, fp32)" in c for c in table.caption)
    assert not any(c.startswith("Row ceiling:") for c in build_table("table1", results_of(paths[:-4])).caption)
    drawn = []
    monkeypatch.setattr(figures, "save", lambda fig, out, name, caption: drawn.append((fig, caption)))
    figures.probe_vs_step(results, tmp_path / "figs")
    fig, caption = drawn[0]
    images = next(ax for ax in fig.axes if ax.get_title() == "images (≈IN1K)")
    flat = {line.get_label(): (line.get_linestyle(), set(line.get_ydata())) for line in images.lines}
    assert flat[CEILING_VARIANT] == (":", {60.0}) and flat["random"] == ("--", {12.0})
    assert "dotted: the supervised ceiling" in caption


def test_final_step_by_default_or_the_step_asked(tmp_path, template):
    paths = put_all(tmp_path, template, {"nextvid": [10.0, 12.0]}, step=100) + put_all(
        tmp_path, template, {"nextvid": [20.0, 22.0], "random": [5.0, 5.0]}, step=300
    )
    last = build_table("table2_design", results_of(paths)).wide.set_index("variant")
    assert last.loc["nextvid", "images.best_on_val.mean"] == pytest.approx(21.0)
    early = build_table("table2_design", results_of(paths, step=100), step=100)
    assert early.wide.set_index("variant").loc["nextvid", "images.best_on_val.mean"] == pytest.approx(11.0)
    assert early.wide.set_index("variant").loc["random", "images.best_on_val.mean"] == pytest.approx(
        5.0
    )  # reference rows: step 0
    assert "at step 100 (1,600 clips)" in early.caption[0]
    assert "final probed step (step 300 (4,800 clips))" in build_table("table2_design", results_of(paths)).caption[0]


def test_results_without_clips_seen_still_load_and_say_steps(tmp_path, template):
    paths = [put(tmp_path, template, "nextvid", 0, 100, b, 10.0, clips_per_step=None) for b in BENCHES]
    df = load_results(paths)
    assert df["clips"].isna().all()
    assert "at each run's final probed step (step 100)" in build_table("table2_design", results_of(paths)).caption[0]


def test_inconsistent_inputs_are_errors(tmp_path, template):
    good = put(tmp_path, template, "nextvid", 0, 100, "motion", 50.0)
    bad = layout.probe_metrics("tiny", "nextvid", 0, 100, "images", tmp_path / "results")
    atomic_write_json(bad, {**template, "benchmark": "motion"})
    with pytest.raises(ResultsError, match="benchmark 'motion', its path says 'images'"):
        load_results([bad])
    atomic_write_json(bad, {**template, "benchmark": "images", "mode": "finetune"})
    with pytest.raises(ResultsError, match="'finetune' record .* where a frozen probe's belongs"):
        load_results([bad])
    frozen_ceiling = layout.probe_metrics("tiny", CEILING_VARIANT, 0, 0, "images", tmp_path / "results")
    atomic_write_json(frozen_ceiling, {**template, "benchmark": "images"})
    with pytest.raises(ResultsError, match="'frozen' record where the supervised ceiling's belongs"):
        load_results([frozen_ceiling])
    other = put(tmp_path, template, "nextvid", 0, 100, "motion", 50.0, config="vit_l")
    with pytest.raises(ResultsError, match="several configs"):
        load_results([good, other])
    assert len(load_results([good, other], config="tiny")) == 2  # two rules of one file
    assert main(["report", "tables", "--metrics", str(good), str(other), "--out", str(tmp_path / "t")]) == 1


# ------------------------------------------------------------------------------------------ findings


def test_welch_interval_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    a, b = [60.0, 61.0, 62.0], [40.0, 42.0, 45.0]
    c = verdict.compare(a, b)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (c.low, c.high) == (pytest.approx(ci.low), pytest.approx(ci.high)) and c.verdict == verdict.SUPPORTED
    assert verdict.compare(b, a).verdict == verdict.NOT_SUPPORTED
    assert verdict.compare([60.0, 62.0, 61.0], [61.5, 60.0, 61.0]).verdict == verdict.INCONCLUSIVE
    assert verdict.compare([60.0], [40.0, 41.0]).verdict == verdict.ONE_SEED
    assert verdict.compare([], [40.0]).verdict == verdict.MISSING
    assert verdict.compare([60.0, 60.2, 59.9], [60.1, 59.9, 60.0], "equivalent").verdict == verdict.SUPPORTED
    assert verdict.compare([70.0, 70.2, 69.9], [60.1, 59.9, 60.0], "equivalent").verdict == verdict.NOT_SUPPORTED
    assert verdict.combine([verdict.SUPPORTED, verdict.INCONCLUSIVE]) == verdict.INCONCLUSIVE
    assert verdict.combine([verdict.SUPPORTED, verdict.NOT_SUPPORTED, verdict.ONE_SEED]) == verdict.NOT_SUPPORTED
    assert verdict.combine([verdict.SUPPORTED, verdict.MISSING]).startswith("supported (1 of 2")


MASKING = next(c for c in CLAIMS if c.comparisons == (("nextvid", "no_masking"),))


@pytest.mark.parametrize(
    "nextvid, no_masking, expect",
    [
        ([60.0, 61.0, 62.0], [40.0, 41.0, 42.0], verdict.SUPPORTED),
        ([40.0, 41.0, 42.0], [60.0, 61.0, 62.0], verdict.NOT_SUPPORTED),
        ([60.0, 64.0, 56.0], [59.0, 61.0, 57.0], verdict.INCONCLUSIVE),
        ([60.0], [40.0], verdict.ONE_SEED),
    ],
)
def test_findings_verdict_follows_the_numbers(tmp_path, template, nextvid, no_masking, expect):
    paths = put_all(
        tmp_path,
        template,
        {"nextvid": nextvid, "no_masking": no_masking, "random": [10.0, 11.0, 12.0], "pixels": [15.0, 15.5]},
    )
    assert claim_verdict(results_of(paths), MASKING) == expect
    out = tmp_path / "findings.md"
    assert main(["report", "findings", "--metrics", *map(str, paths), "--out", str(out)]) == 0
    text = out.read_text()
    summary = next(line for line in text.splitlines() if line.startswith(f"| {MASKING.name}"))
    assert summary.split("|")[-3].strip() == expect
    assert "nextvid − no_masking: " in summary
    assert "Welch" in text and "75.0 / 58.7 / 66.9" in text
    # deterministic: a rerun writes the same bytes
    assert (
        main(["report", "findings", "--metrics", *map(str, reversed(paths)), "--out", str(tmp_path / "again.md")]) == 0
    )
    assert (tmp_path / "again.md").read_text() == text


def test_findings_pretraining_beats_random_on_every_benchmark(tmp_path, template):
    paths = put_all(
        tmp_path, template, {"nextvid": [60.0, 61.0, 62.0], "random": [30.0, 31.0, 32.0], "pixels": [35.0, 36.0, 37.0]}
    )
    put(tmp_path, template, "random", 0, 0, "motion_sequence", 80.0)  # random wins one seed on one benchmark ...
    paths = sorted({*paths, layout.probe_metrics("tiny", "random", 0, 0, "motion_sequence", tmp_path / "results")})
    text = render_findings(results_of(paths))
    line = next(x for x in text.splitlines() if x.startswith("`nextvid` beats `random`"))
    assert (
        "**inconclusive**" in line and "motion_sequence (≈Diving48): inconclusive" in line
    )  # ... so not beyond the spread there
    assert "**supported**" in next(x for x in text.splitlines() if x.startswith("`nextvid` beats `pixels`"))
    assert "no results" in next(x for x in text.splitlines() if x.startswith("| The EMA reference is essential"))


def test_rankme_counts_the_directions_used():
    from nextvid.report.rank import rankme

    rng = np.random.default_rng(0)
    assert rankme(np.eye(8)) == pytest.approx(8, rel=1e-5)  # 8 equal singular values
    assert rankme(np.outer(rng.normal(size=50), rng.normal(size=16))) == pytest.approx(1, abs=1e-3)  # rank one
    spread, squeezed = rng.normal(size=(200, 32)), rng.normal(size=(200, 32)) * np.r_[np.ones(4), np.full(28, 0.01)]
    assert rankme(spread) > 25 and rankme(squeezed) < 6
    q, _ = np.linalg.qr(rng.normal(size=(32, 32)))
    assert rankme(spread @ q * 3.0) == pytest.approx(rankme(spread), rel=1e-6)  # rotation and scale do not change it
    with pytest.raises(ValueError, match="all-zero"):
        rankme(np.zeros((4, 3)))


def test_a_shared_offset_lowers_rankme_but_not_its_centred_form(tmp_path):
    from nextvid.report.rank import mean_share, rank_rows, rankme

    rng = np.random.default_rng(2)
    spread = rng.normal(size=(300, 32))
    offset = spread + 20.0 * rng.normal(size=32)  # the same vector added to every sample
    assert rankme(offset) < 6 < 25 < rankme(offset - offset.mean(0))
    assert mean_share(offset) > 0.9 and mean_share(spread - spread.mean(0)) == pytest.approx(0, abs=1e-12)
    rows = rank_rows([put_features(tmp_path, "nextvid", 0, 200, offset)])
    assert rows.loc[0, "rankme_centred"] == pytest.approx(rankme(offset - offset.mean(0)))
    assert rows.loc[0, "mean_share"] == pytest.approx(mean_share(offset))


def put_features(
    root: Path, variant: str, seed: int, step: int, features: np.ndarray, indices=None, bench="images"
) -> Path:
    from nextvid.io import save_npz

    path = layout.features_file("tiny", variant, seed, step, bench, root / "results")
    indices = np.arange(len(features)) if indices is None else indices
    return save_npz(
        path, {"features": features.astype(np.float32), "labels": indices % 4, "indices": indices}, {"label": variant}
    )


def test_findings_show_rankme_per_variant_beside_the_probe(tmp_path, template):
    rng = np.random.default_rng(1)
    paths = put_all(
        tmp_path, template, {"nextvid": [20.0, 21.0, 19.0], "random": [22.0, 21.0, 23.0], "pixels": [15.0, 15.5]}
    )
    squeeze = np.r_[np.ones(3), np.full(29, 0.02)]  # pretrained features on ~3 directions, random init's spread
    feats = [put_features(tmp_path, "nextvid", s, 200, rng.normal(size=(64, 32)) * squeeze) for s in range(3)]
    feats += [put_features(tmp_path, "random", s, 0, rng.normal(size=(64, 32))) for s in range(3)]
    out = tmp_path / "findings.md"
    assert (
        main(["report", "findings", "--metrics", *map(str, paths), "--features", *map(str, feats), "--out", str(out)])
        == 0
    )
    text = out.read_text()
    section = text[text.index("## Representation rank (RankMe) on `images`") :].split("\n## ")[0]
    rows = {
        line.split("|")[1].strip(): line
        for line in section.splitlines()
        if line.startswith("| ") and "RankMe" not in line
    }
    assert set(rows) == {"nextvid", "random"} and "(3)" in rows["nextvid"] and "20.0 ± 1.0 (3)" in rows["nextvid"]
    assert len(rows["nextvid"].split("|")) == 7  # variant, RankMe, centred, mean's share, top-1
    assert "lower than it by more than the seed spread" in section and "**supported**" in section
    other = put_features(tmp_path, "random", 9, 0, rng.normal(size=(63, 32)), indices=np.arange(1, 64))
    assert (
        main(
            [
                "report",
                "findings",
                "--metrics",
                *map(str, paths),
                "--features",
                *map(str, feats),
                str(other),
                "--out",
                str(out),
            ]
        )
        == 1
    )


# ------------------------------------------------------------------------------------------ runs, generation, figures


def write_val(root: Path) -> Path:
    """Six 16-frame 64 px H.264 clips of 3 classes (a square moving right, left, or still)."""
    from nextvid.data.manifest import Sample, write_manifest
    from nextvid.data.video import write_video

    samples = []
    for i in range(6):
        label = i % 3
        rng = np.random.default_rng(i)
        background = rng.integers(0, 80, (64, 64, 3), dtype=np.uint8)
        frames = []
        for t in range(16):
            f = background.copy()
            x = 4 + 3 * t if label == 0 else 44 - 2 * t if label == 1 else 24
            f[24:40, x : x + 16] = 255
            frames.append(f)
        write_video(root / "videos" / f"{i}.mp4", np.stack(frames), fps=8)
        samples.append(Sample(f"videos/{i}.mp4", label))
    write_manifest(root / "val.tsv", samples, {"right": 0, "left": 1, "still": 2})
    return root / "val.tsv"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two seeds of nano NExT-Vid trained 12 steps (all four stages) by the real Trainer, and a val set."""
    from clips import DriftingPatterns

    from nextvid.presets import get_preset
    from nextvid.train.loop import Trainer

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("report")
    base = merge(
        get_preset("nano"),
        {
            "data": {"num_workers": 0},
            "train": {"log_every": 1, "checkpoint_every": 100},
            "schedule": {"total_steps": 12},
        },
    )
    dirs = []
    for seed in (0, 1):
        out = layout.pretrain_dir("nano", "nextvid", seed, root / "results")
        Trainer(merge(base, {"seed": seed}), out, lambda cfg, frames: DriftingPatterns(cfg, frames)).run()
        dirs.append(out)
    return {
        "root": root,
        "dirs": dirs,
        "ckpt": layout.checkpoint_path("nano", "nextvid", 0, 12, root / "results"),
        "val": write_val(root),
    }


def generate(runs, out: Path, seed: int = 0, *extra) -> dict:
    from nextvid.io import load_npz as load_samples

    args = [
        "generate",
        "--checkpoint",
        str(runs["ckpt"]),
        "--manifest",
        str(runs["val"]),
        "--out",
        str(out),
        "--samples",
        "3",
        "--seed",
        str(seed),
    ]
    assert main([*args, *extra]) == 0
    return load_samples(out / "samples.npz")


def test_generate_shapes_and_determinism(runs, tmp_path):
    a = generate(runs, tmp_path / "a", 0)
    N, T, H = 3, 6, 64  # nano: 6 frames of 64 px, tubelet 2 -> 3 token-frames of 4 x 4 patches; two mask views
    assert a["frames"].shape == (N, T, H, H, 3) and a["frames"].dtype == np.uint8
    assert a["masked"].shape == (N, 2, T, H, H, 3) and a["masked"].dtype == np.uint8
    assert a["rollout"].shape == (N, T, H, H, 3) and a["visible"].shape == (N, 2, 4, 4) and a["visible"].dtype == bool
    assert sorted(a["labels"].tolist()) == [0, 1, 2]  # spread over the classes
    assert int(a["masked_from"]) == 2 and int(a["rollout_from"]) == 2  # default context: half of 3 token-frames -> 1
    # context frames are the ground truth; generated frames are not
    assert np.array_equal(a["masked"][:, :, :2], np.broadcast_to(a["frames"][:, None, :2], a["masked"][:, :, :2].shape))
    assert np.array_equal(a["rollout"][:, :2], a["frames"][:, :2]) and not np.array_equal(
        a["rollout"][:, 2:], a["frames"][:, 2:]
    )
    assert a["visible"].any(axis=(2, 3)).all() and not a["visible"].all()  # masked, never fully
    assert a["meta"]["label"] == "nextvid seed 0 step 12" and a["meta"]["checkpoint"]["step"] == 12
    assert (tmp_path / "a" / "samples.png").read_bytes()[:8] == PNG
    b = generate(runs, tmp_path / "b", 0)
    c = generate(runs, tmp_path / "c", 1)
    for key in ("frames", "masked", "visible", "rollout"):
        assert np.array_equal(a[key], b[key]), key
    assert not np.array_equal(a["rollout"], c["rollout"]) and np.array_equal(a["frames"], c["frames"])
    longer = generate(runs, tmp_path / "d", 0, "--frames", "8", "--context", "1", "--steps", "2")
    assert longer["rollout"].shape[1] == 8 and int(longer["rollout_from"]) == 2


def test_generate_refuses_a_model_without_flow_decoder(runs, tmp_path):
    from nextvid.models.nextvid import build_model
    from nextvid.presets import get_preset
    from nextvid.train import checkpoint as ckpt

    cfg = merge(get_preset("nano"), {"objective": {"generation": False}})
    ckpt.save(tmp_path / "align_only", {"step": 0, "model": build_model(cfg).state_dict(), "config": cfg.to_dict()})
    args = [
        "generate",
        "--checkpoint",
        str(tmp_path / "align_only" / ckpt.LATEST),
        "--manifest",
        str(runs["val"]),
        "--out",
        str(tmp_path / "g"),
    ]
    assert main(args) == 1
    assert not (tmp_path / "g" / "samples.npz").exists()


def test_generate_decodes_vae_targets(runs, tmp_path, tiny_vae):
    """A `target.kind: vae` model generates latents; the VAE's decoder turns them into frames."""
    from nextvid.models.nextvid import build_model
    from nextvid.presets import get_preset
    from nextvid.train import checkpoint as ckpt

    cfg = merge(get_preset("nano"), tiny_vae)
    ckpt.save(tmp_path / "vae_run", {"step": 3, "model": build_model(cfg).state_dict(), "config": cfg.to_dict()})
    out = tmp_path / "g"
    assert (
        main(
            [
                "generate",
                "--checkpoint",
                str(tmp_path / "vae_run" / ckpt.LATEST),
                "--manifest",
                str(runs["val"]),
                "--out",
                str(out),
                "--samples",
                "2",
                "--steps",
                "2",
            ]
        )
        == 0
    )
    from nextvid.io import load_npz as load_samples

    s = load_samples(out / "samples.npz")
    assert (
        s["masked"].shape == (2, 2, 6, 64, 64, 3)
        and s["rollout"].shape == (2, 6, 64, 64, 3)
        and s["meta"]["checkpoint"]["target"] == "vae"
    )


def test_figures_written(runs, tmp_path, template):
    root = runs["root"]
    gen_dir = layout.generate_dir("nano", "nextvid", 0, 12, root / "results")
    generate(runs, gen_dir, 0, "--steps", "2")
    features = []
    for checkpoint, name in ((str(runs["ckpt"]), "nextvid.npz"), ("random:nano", "random.npz")):
        features.append(tmp_path / name)
        assert (
            main(
                [
                    "report",
                    "features",
                    "--checkpoint",
                    checkpoint,
                    "--benchmark",
                    "motion",
                    "--val-manifest",
                    str(runs["val"]),
                    "--out",
                    str(features[-1]),
                    "--set",
                    "resolution=64",
                    "--set",
                    "frames=4",
                    "--max-samples",
                    "5",
                ]
            )
            == 0
        )
    from nextvid.io import load_npz as load_features

    feats = load_features(features[0])
    assert (
        feats["features"].shape == (5, 64)
        and feats["features"].dtype == np.float32
        and sorted(set(feats["labels"].tolist())) == [0, 1, 2]
    )
    assert feats["meta"]["label"] == "nextvid seed 0 step 12" and feats["meta"]["source"]["encoder"] == "reference"
    paths = put_all(tmp_path, template, {"nextvid": [50.0, 52.0], "random": [20.0, 21.0], "pixels": [25.0]}, step=6)
    paths += put_all(tmp_path, template, {"nextvid": [55.0, 58.0]}, step=12)
    out = tmp_path / "figures"
    assert (
        main(
            [
                "report",
                "figures",
                "--metrics",
                *map(str, paths),
                "--runs",
                *map(str, runs["dirs"]),
                "--generations",
                str(gen_dir),
                "--features",
                *map(str, features),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    for fig in ("fig4_probe_vs_step", "fig5_generations", "fig6_losses", "fig7_tsne"):
        assert (out / f"{fig}.png").read_bytes()[:8] == PNG
        assert len((out / f"{fig}.caption.rst").read_text()) > 50
    assert "warmup, stable1, stable2, cooldown" in (out / "fig6_losses.caption.rst").read_text()
    assert "The x axis is clips seen" in (out / "fig4_probe_vs_step.caption.rst").read_text()
    assert main(["report", "figures", "--out", str(out)]) == 1  # nothing to draw


def test_stage_spans_from_a_real_log(runs):
    from nextvid.report.runs import read_losses, read_run, stage_spans

    run = read_run(runs["dirs"][0])
    assert (run.variant, run.seed, run.total_steps, run.done) == ("nextvid", 0, 12, True)
    spans = stage_spans(read_losses(run))
    assert [s for s, _, _ in spans] == ["warmup", "stable1", "stable2", "cooldown"]
    assert spans[0][1] == 0 and spans[-1][2] == 12 and all(a[2] == b[1] for a, b in zip(spans, spans[1:]))
    assert not math.isnan(read_losses(run)["flow"].iloc[-1])
