"""The paper's variants, named once: config overrides per variant and where each lands in a table.

The workflow's experiment configs only pick variants by name (and a preset, seeds, budget); what a
variant *is* lives here, so the Snakefile holds no method knowledge and a table row is traceable to
the exact overrides that produced it. Overrides are `--set KEY=VALUE` strings (nextvid.config).
Keys of `tables` are the paper tables of nextvid.report.paper.ABLATIONS; values are their row keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nextvid.config import ConfigError


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    overrides: tuple[str, ...] = ()
    tables: dict[str, str] = field(default_factory=dict)  # paper table -> its row key for this variant
    # workflow products its runs read besides the data: "vae" = a VAE target's weights and latent
    # statistics (the workflow trains one per experiment, nextvid.vae; its `target.*` keys then come
    # from nextvid.vae.config.target_overrides unless the experiment names its own target.vae_path)
    needs: tuple[str, ...] = ()


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("nextvid", "NExT-Vid: masking, context isolation, alignment + flow generation, frame-isolated decoder, EMA",
                tables={"table1": "NExT-Vid", "table2_design": "full", "table3_target": "pixels", "table4_masking": "masking",
                        "table5_decoder": "frame", "table11_tau_draws": "k4", "table12_ema": "ema"}),
        # Table 2: which objectives, with or without context isolation
        Variant("gen_only", "generation only, context transformed with the queries (no isolation)",
                ("objective.alignment=false", "model.predictor.context_isolation=false"), {"table2_design": "gen_only"}),
        Variant("gen_ciso", "generation only, context isolated",
                ("objective.alignment=false",), {"table2_design": "gen_ciso"}),
        Variant("align_only", "alignment only, no isolation",
                ("objective.generation=false", "model.predictor.context_isolation=false"), {"table2_design": "align_only"}),
        Variant("align_ciso", "alignment only, context isolated",
                ("objective.generation=false",), {"table2_design": "align_ciso"}),
        # Table 3: generation target
        Variant("target_vae", "flow decoder generates the latents of the workflow-trained VAE",
                ("target.kind=vae",), {"table3_target": "vae"}, needs=("vae",)),
        # Table 4: masking
        Variant("no_masking", "the encoder sees the whole clip", ("masking.kind=none",), {"table4_masking": "no_masking"}),
        # Table 5: decoder attention
        Variant("cross_frame_decoder", "noisy targets attend across token-frames in the decoder",
                ("model.decoder.attention=cross_frame",), {"table5_decoder": "cross_frame"}),
        # Table 11: tau draws (k = 1 throughout instead of 4 -> 1)
        Variant("tau1", "one tau draw per sample in every stage", ("schedule.stages.0.tau_draws=1", "schedule.stages.1.tau_draws=1"),
                {"table11_tau_draws": "k1"}),
        # Table 12: EMA reference
        Variant("no_ema", "reference = the online encoder under stop-grad", ("objective.ema=false",), {"table12_ema": "no_ema"}),
        # same-budget baselines
        Variant("videomae", "VideoMAE-style: bidirectional encoder, 90% tube masking, masked pixel regression",
                ("objective.method=videomae", "masking.kind=tube"), {"table1": "VideoMAE-style (ours)"}),
        Variant("ar_regression", "Toto/AIM-style causal next-frame pixel regression, no masking",
                ("objective.method=ar_regression", "masking.kind=none"), {"table1": "AR regression (ours)"}),
    )
}


def get_variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ConfigError(f"variant {name!r}: unknown (choose from {', '.join(VARIANTS)})") from None
