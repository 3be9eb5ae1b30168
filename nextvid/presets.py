"""Named configs. Paper presets follow Table 7 (encoders) with the shared 12 x 384 predictor and
decoder; CPU presets keep every structural property (2x16x16 tubelets, frame-causal encoder, 3D RoPE,
two multi-block mask views, EMA reference, k tau draws, the four-stage schedule) and shrink only
widths, depths, frames, resolution and batch."""

from __future__ import annotations

from dataclasses import replace

from nextvid.config_engine import ConfigError
from nextvid.config_schema import (
    PAPER_STAGES,
    Config,
    DecoderConfig,
    EncoderConfig,
    ModelConfig,
    ObjectiveConfig,
    PredictorConfig,
    ScheduleConfig,
    StageConfig,
)


def _paper(width: int, depth: int, heads: int, mlp_ratio: float, micro_batches: tuple[int, ...]) -> Config:
    """`micro_batches`: clips per GPU per forward/backward in each stage, from the memory model for an
    80 GB GPU at the paper's 96 GPUs (`nextvid.memory_fit.fitted_config`, docs/performance.md "Paper
    scale"). In clips, never 0 (the whole per-GPU batch), so they hold at any GPU count."""
    encoder = EncoderConfig(width=width, depth=depth, heads=heads, mlp_ratio=mlp_ratio)
    stages = tuple(replace(stage, micro_batch=m) for stage, m in zip(PAPER_STAGES, micro_batches, strict=True))
    return Config(model=ModelConfig(encoder=encoder), schedule=ScheduleConfig(stages=stages))


def _cpu_stages(frames: int, batch: int) -> tuple[StageConfig, ...]:
    """The paper's four stages at CPU batch/frames: cool-down has 4x the frames and 1/4 the batch."""
    return (
        StageConfig("warmup", 12_000, 1e-4, 5e-4, None, 4, frames, batch),
        StageConfig("stable1", 28_000, 5e-4, 4.5e-4, None, 4, frames, batch),
        StageConfig("stable2", 80_000, 4.5e-4, 1e-4, 8e-4, 1, frames, batch),
        StageConfig("cooldown", 12_000, 1e-4, 1e-6, 3e-4, 1, 4 * frames, max(1, batch // 4)),
    )


def tiny() -> Config:
    """The CPU preset for real (small) pretraining runs on the embedded default."""
    frames, batch = 8, 8
    return Config(
        model=ModelConfig(
            # width 128 (was 192, head widths kept: 64 in the encoder, 32 in predictor and decoder):
            # issue 9's grid (39 encoders, 168 probes) in under 2 hours on 2 cores (docs/grid.md)
            encoder=EncoderConfig(image_size=128, frames=frames, width=128, depth=6, heads=2),
            predictor=PredictorConfig(width=128, depth=4, heads=4),
            decoder=DecoderConfig(width=128, depth=4, heads=4, sample_steps=20),
        ),
        # A run of a few hundred steps needs a faster reference than the paper's 0.99925 (half-life
        # 924 of 132K steps); 0.99 gives a half-life of 69 steps.
        objective=ObjectiveConfig(ema_momentum=0.99),
        # auto: bf16 autocast where the CPU runs it natively (AVX512-BF16 or AMX: the step is 2.7x
        # faster than fp32 and learns like it, docs/performance.md), fp32 elsewhere (emulated bf16 is
        # ~10x slower than fp32 there)
        schedule=ScheduleConfig(total_steps=600, stages=_cpu_stages(frames, batch), precision="auto"),
    )


def nano() -> Config:
    """The smallest config with every structural property: for tests."""
    frames, batch = 6, 4
    return Config(
        model=ModelConfig(
            encoder=EncoderConfig(image_size=64, frames=frames, width=64, depth=2, heads=2),
            predictor=PredictorConfig(width=64, depth=2, heads=2),
            decoder=DecoderConfig(width=64, depth=2, heads=2, sample_steps=8),
        ),
        objective=ObjectiveConfig(ema_momentum=0.9),
        # fp32, not auto: the tests' preset computes the same numbers on every machine
        schedule=ScheduleConfig(total_steps=40, stages=_cpu_stages(frames, batch), precision="fp32"),
    )


def cpu() -> Config:
    """The CPU learning recipe (issue 20): the most clips per CPU-second that keeps every structural
    property. 48 px frames in 8 x 8 patches keep a 6 x 6 token grid (the two multi-block views still
    leave a context on it, docs/signal.md) at 1/7 of tiny's tokens; width 64 and shallow stacks,
    because at this token count a step's cost is mostly per-token work, not width. Feed it cached
    uint8 clips (`nextvid data cache-mixture --size 64`): streaming decode would be a third of its step."""
    frames, batch = 8, 16
    return Config(
        model=ModelConfig(
            encoder=EncoderConfig(image_size=48, patch_size=8, frames=frames, width=64, depth=4, heads=2),
            predictor=PredictorConfig(width=64, depth=2, heads=2),
            decoder=DecoderConfig(width=64, depth=2, heads=2, sample_steps=20),
        ),
        # half-life 138 steps (2,200 clips): slow enough not to chase the online encoder step by step
        # (nano's 0.9 is a half-life of 6.6 steps, close to Table 12's crashing no-EMA), fast enough to
        # move within a few thousand steps. Provisional until the dev-split search (issue 20, item 3).
        objective=ObjectiveConfig(ema_momentum=0.995),
        # fp32, not auto: at width 64 native bf16 gains only 1.2-1.5x (docs/signal.md), and one precision on
        # every machine keeps the signal experiments' numbers comparable between machine kinds
        schedule=ScheduleConfig(total_steps=3000, stages=_cpu_stages(frames, batch), precision="fp32"),
    )


PRESETS = {
    "vit_l": lambda: _paper(1024, 24, 16, 4.0, micro_batches=(8, 8, 32, 4)),
    "vit_h": lambda: _paper(1280, 32, 16, 4.0, micro_batches=(8, 8, 16, 4)),
    # ViT-G: width 1408 (Table 7; the text's 1048 is a typo), MLP ratio 48/11 -> hidden 6144.
    "vit_g": lambda: _paper(1408, 40, 22, 48 / 11, micro_batches=(8, 8, 16, 4)),
    "tiny": tiny,
    "nano": nano,
    "cpu": cpu,
}


def get_preset(name: str) -> Config:
    try:
        return PRESETS[name]()
    except KeyError:
        raise ConfigError(f"preset {name!r}: unknown (choose from {', '.join(PRESETS)})") from None
