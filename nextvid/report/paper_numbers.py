"""The numbers the paper reports (docs/method.md §6), as data. Benchmarks are keyed by the paper's names;
`EMBEDDED_MIRRORS` says which embedded benchmark stands in for which paper benchmark."""

from __future__ import annotations

PAPER_BENCHMARKS = ("K400", "IN1K", "SSv2", "Diving48")

# embedded benchmark -> the paper benchmark it mirrors (docs/benchmarks.md)
EMBEDDED_MIRRORS = {"appearance": "K400", "images": "IN1K", "motion": "SSv2", "motion_sequence": "Diving48"}

# Table 1: top-1, frozen encoder, attentive probe (None: not reported)
TABLE1 = {
    "NExT-Vid ViT-L": {"K400": 78.5, "IN1K": 76.3, "SSv2": 63.9, "Diving48": 82.7},
    "NExT-Vid ViT-H": {"K400": 80.6, "IN1K": 79.0, "SSv2": 67.0, "Diving48": 84.5},
    "NExT-Vid ViT-G": {"K400": 83.1, "IN1K": 81.4, "SSv2": 69.5, "Diving48": 87.2},
    "VideoMAE ViT-H": {"K400": 79.8, "IN1K": 72.3, "SSv2": 66.2, "Diving48": None},
    "VideoMAEv2 ViT-G": {"K400": 71.2, "IN1K": 71.4, "SSv2": 61.2, "Diving48": None},
    "OmniMAE ViT-H": {"K400": 71.4, "IN1K": 76.3, "SSv2": 65.4, "Diving48": None},
    "MVD ViT-L": {"K400": 79.4, "IN1K": 73.3, "SSv2": 66.5, "Diving48": None},
    "Toto 1B": {"K400": 74.4, "IN1K": 75.3, "SSv2": None, "Diving48": None},
    "V-JEPA ViT-H": {"K400": 82.0, "IN1K": 75.9, "SSv2": 71.4, "Diving48": 87.9},
    "V-JEPA 2 ViT-G": {"K400": 86.6, "IN1K": 84.6, "SSv2": 75.3, "Diving48": 90.1},
    "DINOv2 ViT-G": {"K400": 83.4, "IN1K": 86.2, "SSv2": 50.6, "Diving48": 82.5},
    "I-JEPA ViT-H": {"K400": 79.7, "IN1K": 84.4, "SSv2": 50.0, "Diving48": None},
}

# Ablations at 15K steps (Table 11 also at 30K): (IN1K, SSv2, average). Keys are our variant names;
# Table 2's check-mark positions are partly reconstructed from the text.
ABLATIONS = {
    "table2_design": {
        "gen_only": (76.8, 61.1, 68.9),
        "gen_ciso": (75.0, 58.7, 66.9),
        "align_only": (74.7, 62.8, 68.8),
        "align_ciso": (73.1, 61.9, 67.5),
        "full": (75.1, 63.8, 69.5),
    },
    "table3_target": {
        "pixels": (73.5, 62.4, 68.0),
        "siglip2": (73.2, 62.5, 67.9),
        "cosmos_vae": (71.7, 54.8, 63.3),
        "vae": (75.1, 63.8, 69.5),
    },
    "table4_masking": {"no_masking": (31.0, 14.7, 22.9), "masking": (75.0, 58.7, 66.9)},
    "table5_decoder": {"cross_self": (72.6, 54.2, 63.4), "cross": (75.0, 58.7, 66.9)},
    "table11_tau_draws": {
        "k1": (75.3, 63.8, 69.6),
        "k4": (75.1, 63.8, 69.5),
        "k1_30k": (79.3, 67.1, 73.2),
        "k4_30k": (79.4, 67.7, 73.6),
    },
    # without EMA the paper reports only "< 10" (training crashes)
    "table12_ema": {"no_ema": ("<10", "<10", "<10"), "ema": (75.1, 63.8, 69.5)},
}

# the paper-scale probe protocols (nextvid.probe.protocol) are the paper's benchmarks themselves
PAPER_PROTOCOLS = {"k400": "K400", "in1k": "IN1K", "ssv2": "SSv2", "diving48": "Diving48"}

# what each table is about, and the paper's names of its rows (docs/method.md §6)
TABLE_TITLES = {
    "table1": "Table 1: frozen-encoder attentive probe, NExT-Vid against published encoders",
    "table2_design": "Table 2: model design (generation, alignment, context isolation)",
    "table3_target": "Table 3: generation target",
    "table4_masking": "Table 4: masking (simplified model)",
    "table5_decoder": "Table 5: decoder attention",
    "table11_tau_draws": "Table 11: tau draws per condition",
    "table12_ema": "Table 12: EMA reference encoder",
}
ROW_LABELS = {
    "table2_design": {
        "gen_only": "Gen only",
        "gen_ciso": "Gen + C-Iso",
        "align_only": "Align only",
        "align_ciso": "Align + C-Iso",
        "full": "Gen + Align + C-Iso (full)",
    },
    "table3_target": {
        "pixels": "pixels",
        "siglip2": "SigLIP2",
        "cosmos_vae": "Cosmos VAE",
        "vae": "VA-VAE (ours: workflow-trained small VAE)",
    },
    "table4_masking": {"no_masking": "simplified model, without masking", "masking": "simplified model, with masking"},
    "table5_decoder": {
        "cross_self": "simplified model, cross + self attention among a frame's noisy targets",
        "cross": "simplified model, cross attention only",
    },
    "table11_tau_draws": {
        "k1": "k = 1, 15K steps",
        "k4": "k = 4, 15K steps",
        "k1_30k": "k = 1, 30K steps",
        "k4_30k": "k = 4, 30K steps",
    },
    "table12_ema": {"no_ema": "without EMA", "ema": "with EMA"},
}
# Rows of ours that the paper does not have (no paper numbers beside them): the same switch on the
# full model, where the paper ran it on its simplified model only
OUR_ROWS = {
    "table4_masking": {
        "full_no_masking": "ours: full model, without masking",
        "full_masking": "ours: full model, with masking",
    },
    "table5_decoder": {
        "full_frame": "ours: full model, concat decoder, self-attention within a frame",
        "full_cross_frame": "ours: full model, concat decoder, self-attention reaching earlier frames",
    },
}
for _table, _rows in OUR_ROWS.items():
    ROW_LABELS[_table].update(_rows)


def row_at_step(table: str, key: str, step) -> str:
    """The paper's row for a variant probed at `step`: Table 11's `k4` at 30000 steps is `k4_30k`."""
    later = f"{key}_{step // 1000}k" if step else ""
    return later if later in ABLATIONS.get(table, {}) else key


# Table 1: the paper row printed beside each of our rows. Our encoders are tiny, so no size matches;
# the beside-row is the paper's smallest NExT-Vid and, for the baselines, the published method they
# imitate (VideoMAE; Toto is the paper's autoregressive-regression row). The paper's other rows are
# listed below ours.
TABLE1_BESIDE = {
    "NExT-Vid": "NExT-Vid ViT-L",
    "VideoMAE-style (ours)": "VideoMAE ViT-H",
    "AR regression (ours)": "Toto 1B",
}
