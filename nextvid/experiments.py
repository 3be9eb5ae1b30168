"""The paper's variants, named once: config overrides per variant and where each lands in a table.

The workflow's experiment configs only pick variants by name (and a preset, seeds, budget); what a
variant *is* lives here, so the Snakefile holds no method knowledge and a table row is traceable to
the exact overrides that produced it. Overrides are `--set KEY=VALUE` strings (nextvid.config).
Keys of `tables` are the paper tables of nextvid.report.paper_numbers.ABLATIONS; values are their row keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional, Sequence

from nextvid.config import ConfigError
from nextvid.config_schema import run_end_step


@dataclass(frozen=True)
class Claims:
    """What a variant's description says it is, as data: tests/test_experiments.py resolves every
    variant the way the workflow does and checks each claim on the config and on the built model, and
    the report's captions print them."""

    base: str  # the model the variant changes: "NExT-Vid", "simplified", "VideoMAE-style", "AR regression"
    causal: bool = True  # frame-wise causal encoder, in pretraining and in probing
    masking: str = "multiblock"  # masking.kind
    views: int = 2  # encoder passes per clip (mask views, or unmasked views)
    objectives: tuple[str, ...] = ("flow", "align")  # losses the model returns
    decoder: Optional[str] = "concat, frame"  # the flow decoder's "condition, attention"; None: no flow decoder
    probed: str = "EMA"  # the encoder the probe reads: "EMA" (the reference) or "online" (no EMA encoder)


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    overrides: tuple[str, ...] = ()
    tables: dict[str, str] = field(default_factory=dict)  # paper table -> its row key for this variant
    claims: Claims = Claims("NExT-Vid")
    # workflow products its runs read besides the data: "vae" = a VAE target's weights and latent
    # statistics (the workflow trains one per experiment, nextvid.vae; its `target.*` keys then come
    # from nextvid.vae.config.target_overrides unless the experiment names its own target.vae_path)
    needs: tuple[str, ...] = ()


# The paper's simplified model (Tables 4 and 5): generation with context isolation, no alignment, and a
# decoder whose noisy targets cross-attend to z_t of their own token-frame (no concat, no self-attention).
CROSS_DECODER = ("objective.alignment=false", "model.decoder.condition=cross")
SIMPLIFIED = (*CROSS_DECODER, "model.decoder.attention=none")
SIMPLIFIED_CLAIMS = Claims("simplified", objectives=("flow",), decoder="cross, none", probed="online")
# without masking, two views of the whole clip: the masked model's two-view loss averaging is kept
NO_MASKING = ("masking.kind=none", "masking.unmasked_views=2")

VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            "nextvid",
            "NExT-Vid: masking, context isolation, alignment + flow generation, frame-isolated decoder, EMA",
            tables={
                "table1": "NExT-Vid",
                "table2_design": "full",
                "table3_target": "pixels",
                "table4_masking": "full_masking",
                "table5_decoder": "full_frame",
                "table11_tau_draws": "k4",
                "table12_ema": "ema",
            },
        ),
        # Table 2: which objectives, with or without context isolation
        Variant(
            "gen_only",
            "generation only, context transformed with the queries (no isolation)",
            ("objective.alignment=false", "model.predictor.context_isolation=false"),
            {"table2_design": "gen_only"},
            Claims("NExT-Vid", objectives=("flow",), probed="online"),
        ),
        Variant(
            "gen_ciso",
            "generation only, context isolated",
            ("objective.alignment=false",),
            {"table2_design": "gen_ciso"},
            Claims("NExT-Vid", objectives=("flow",), probed="online"),
        ),
        Variant(
            "align_only",
            "alignment only, no isolation",
            ("objective.generation=false", "model.predictor.context_isolation=false"),
            {"table2_design": "align_only"},
            Claims("NExT-Vid", objectives=("align",), decoder=None),
        ),
        Variant(
            "align_ciso",
            "alignment only, context isolated",
            ("objective.generation=false",),
            {"table2_design": "align_ciso"},
            Claims("NExT-Vid", objectives=("align",), decoder=None),
        ),
        # Table 3: generation target
        Variant(
            "target_vae",
            "flow decoder generates the latents of the workflow-trained VAE",
            ("target.kind=vae",),
            {"table3_target": "vae"},
            needs=("vae",),
        ),
        # Tables 4 and 5 on the paper's simplified model
        Variant(
            "simplified",
            "the paper's simplified model: generation + context isolation, no alignment, "
            "cross-attention decoder (noisy targets query z_t of their own frame)",
            SIMPLIFIED,
            {"table4_masking": "masking", "table5_decoder": "cross"},
            SIMPLIFIED_CLAIMS,
        ),
        Variant(
            "simplified_no_masking",
            "the simplified model without masking: two views of the whole clip",
            SIMPLIFIED + NO_MASKING,
            {"table4_masking": "no_masking"},
            replace(SIMPLIFIED_CLAIMS, masking="none"),
        ),
        Variant(
            "cross_self_decoder",
            "the simplified model whose noisy targets also self-attend within their frame (cross-self)",
            (*CROSS_DECODER, "model.decoder.attention=frame"),
            {"table5_decoder": "cross_self"},
            replace(SIMPLIFIED_CLAIMS, decoder="cross, frame"),
        ),
        # ours: the same two switches on the full model
        Variant(
            "no_masking",
            "the full model without masking: two views of the whole clip (ours)",
            NO_MASKING,
            {"table4_masking": "full_no_masking"},
            Claims("NExT-Vid", masking="none"),
        ),
        Variant(
            "cross_frame_decoder",
            "the full model whose noisy targets also attend to earlier token-frames (ours)",
            ("model.decoder.attention=cross_frame",),
            {"table5_decoder": "full_cross_frame"},
            Claims("NExT-Vid", decoder="concat, cross_frame"),
        ),
        # Table 11: tau draws (k = 1 throughout instead of 4 -> 1)
        Variant(
            "tau1",
            "one tau draw per sample in every stage",
            ("schedule.stages.0.tau_draws=1", "schedule.stages.1.tau_draws=1"),
            {"table11_tau_draws": "k1"},
        ),
        # Table 12: EMA reference
        Variant(
            "no_ema",
            "reference = the online encoder under stop-grad",
            ("objective.ema=false",),
            {"table12_ema": "no_ema"},
            Claims("NExT-Vid", probed="online"),
        ),
        # same-budget baselines
        Variant(
            "videomae",
            "VideoMAE-style: bidirectional encoder, 90% tube masking, masked pixel regression",
            ("objective.method=videomae", "masking.kind=tube", "model.encoder.causal=false"),
            {"table1": "VideoMAE-style (ours)"},
            Claims(
                "VideoMAE-style",
                causal=False,
                masking="tube",
                views=1,
                objectives=("regression",),
                decoder=None,
                probed="online",
            ),
        ),
        Variant(
            "ar_regression",
            "Toto/AIM-style causal next-frame pixel regression, no masking",
            ("objective.method=ar_regression", "masking.kind=none"),
            {"table1": "AR regression (ours)"},
            Claims("AR regression", masking="none", views=1, objectives=("regression",), decoder=None, probed="online"),
        ),
    )
}


def budget_overrides(total_steps: int, stop_at: Optional[int] = None, keep_steps: Sequence[int] = ()) -> list[str]:
    """The `--set` strings of a run's budget: the schedule's length, where the run stops (None: at the
    schedule's end) and the kept checkpoints, the final one included (the workflow probes them)."""
    final = run_end_step(total_steps, stop_at)
    kept = ", ".join(map(str, sorted(set(keep_steps) | {final})))
    sets = [f"schedule.total_steps={total_steps}"]
    if stop_at:
        sets.append(f"schedule.stop_at={stop_at}")
    return sets + [f"train.keep_steps=[{kept}]"]


def get_variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ConfigError(f"variant {name!r}: unknown (choose from {', '.join(VARIANTS)})") from None
