"""The names the workflow and the report share, said once: the embedded default's benchmarks and
splits, the reference rows, the `random:` checkpoint prefix, the paper's tables and our figures.

Torch-free and free of plotting libraries, so the workflow reads it while it builds the DAG and the
report modules take their file names from it; a name changed here changes both.
"""

from __future__ import annotations

from typing import Optional

# the embedded default's labelled benchmarks (nextvid.data.embedded_catalogue builds them)
EMBEDDED_BENCHMARKS = ("images", "appearance", "motion", "motion_sequence")
SPLITS = ("train", "val")

# reference rows, probed at step 0 without pretraining. The floors: a random-init encoder of the
# preset, and raw tubelet pixels (no encoder). The supervised ceiling: a small 3D CNN and the probe
# head trained end to end with labels on the train split (`nextvid probe --finetune --encoder
# convnet`), what the labels allow; its metrics say `"mode": "finetune"`
FLOOR_VARIANTS = ("random", "pixels")
CEILING_VARIANT = "ceiling"
REFERENCE_VARIANTS = (*FLOOR_VARIANTS, CEILING_VARIANT)

# the paper's tables we fill (nextvid.report.tables: Table 1, then the ablations of
# nextvid.report.paper_numbers.ABLATIONS, in its order) and our figures, by short name -> file stem
TABLES = (
    "table1",
    "table2_design",
    "table3_target",
    "table4_masking",
    "table5_decoder",
    "table11_tau_draws",
    "table12_ema",
)
FIGURES = {
    "fig4": "fig4_probe_vs_step",
    "fig5": "fig5_generations",
    "fig6": "fig6_losses",
    "fig7": "fig7_tsne",
}

# what a probe can read tokens from (nextvid.probe.encoders): the EMA or online encoder of a
# checkpoint, raw tubelet pixels, or the small CNN of the supervised ceiling
PROBE_ENCODERS = ("reference", "online", "pixels", "convnet")

# a checkpoint argument `random:PRESET` names a seeded random-init encoder of that preset
RANDOM_PREFIX = "random:"


def random_checkpoint(preset: str) -> str:
    """The checkpoint argument of a random-init encoder of `preset`."""
    return f"{RANDOM_PREFIX}{preset}"


def random_preset(checkpoint: str) -> Optional[str]:
    """The preset of a `random:PRESET` checkpoint argument; None for a checkpoint file."""
    return checkpoint[len(RANDOM_PREFIX) :] if checkpoint.startswith(RANDOM_PREFIX) else None
