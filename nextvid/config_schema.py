"""The pretraining config's schema: frozen dataclasses, checked when built (nextvid.config_rules), with a
stable hash that names a run.

Defaults are the paper's ViT-L recipe (docs/method.md); presets in `nextvid.presets` change only what
differs. Where the paper is silent, the field's comment says whose choice we follow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from nextvid.config_engine import plain_hash, to_plain
from nextvid.config_rules import validate


@dataclass(frozen=True)
class EncoderConfig:
    """ViT over 3D tubelets with 3D RoPE and frame-wise causal attention [paper]."""

    image_size: int = 256
    frames: int = 16
    patch_size: int = 16
    tubelet: int = 2
    in_chans: int = 3
    width: int = 1024
    depth: int = 24
    heads: int = 16
    mlp_ratio: float = 4.0
    # frame-wise causal attention [paper]; False gives the bidirectional encoder (VideoMAE baseline).
    causal: bool = True
    drop_path: float = 0.0
    rope_base: float = 10000.0


@dataclass(frozen=True)
class PredictorConfig:
    """Context-isolated autoregressive predictor: 12 x 384, 12 heads, 22M params [paper]."""

    width: int = 384
    depth: int = 12
    heads: int = 12
    mlp_ratio: float = 4.0
    # True: queries cross-attend to the (never transformed) context [paper]. False (Table 2 ablation):
    # context and queries pass together through causal self-attention blocks.
    context_isolation: bool = True


@dataclass(frozen=True)
class DecoderConfig:
    """Flow-matching DiT decoder: 12 x 384, 12 heads, adaLN on the timestep, 33M params [paper]."""

    width: int = 384
    depth: int = 12
    heads: int = 12
    mlp_ratio: float = 4.0
    # how z_t conditions the noisy target: "concat", channel concat at the input [paper, full model];
    # "cross", noisy targets are the queries of a cross-attention whose keys/values are z_t of the same
    # token-frame [paper, the simplified model of Tables 4 and 5].
    condition: Literal["concat", "cross"] = "concat"
    # self-attention among noisy targets: "frame", within a token-frame [paper]; "cross_frame" (ours,
    # an extra Table 5 row): also to those of earlier token-frames (frame-causal, no future leaks in);
    # "none" (condition "cross" only): the simplified model's decoder, cross-attention alone.
    attention: Literal["frame", "cross_frame", "none"] = "frame"
    sample_steps: int = 50


@dataclass(frozen=True)
class BlockMaskSpec:
    """One multi-block generator: `num_blocks` rectangles, each `spatial_scale` of the grid [V-JEPA]."""

    num_blocks: int
    spatial_scale: float
    aspect_ratio: tuple[float, float] = (0.75, 1.5)
    temporal_scale: float = 1.0


@dataclass(frozen=True)
class MaskingConfig:
    # "multiblock": the paper's temporally consistent multi-block masks, one view per generator.
    # "tube": VideoMAE random tube masking (baseline). "none": the encoder sees the whole clip
    # (Table 4 ablation, and the AR-regression baseline).
    kind: Literal["multiblock", "tube", "none"] = "multiblock"
    generators: tuple[BlockMaskSpec, ...] = (BlockMaskSpec(8, 0.15), BlockMaskSpec(2, 0.7))
    tube_ratio: float = 0.9
    # truncation of every sample's visible set to the minimum over "device": the rank's own batch
    # (V-JEPA 2's per-GPU collator), or "global": the whole global batch (harder masks at large batch)
    truncation: Literal["device", "global"] = "device"
    # kind "none": how many views of the whole clip (2 keeps the two views of the masked model, so
    # that a no-masking ablation changes masking alone)
    unmasked_views: int = 1


@dataclass(frozen=True)
class ObjectiveConfig:
    # "nextvid": the paper's method. Baselines at the same budget: "videomae" (bidirectional encoder,
    # tube masking, masked pixel regression) and "ar_regression" (Toto/AIM-style causal next-frame
    # pixel regression: no masking, no isolation, no flow head).
    method: Literal["nextvid", "videomae", "ar_regression"] = "nextvid"
    generation: bool = True  # flow-matching loss (Table 2 "Gen")
    alignment: bool = True  # MSE to the reference encoder (Table 2 "Align")
    flow_weight: float = 0.5
    align_weight: float = 1.0
    # which positions of a target token-frame carry queries and losses [ours: all; V-JEPA: masked]
    loss_positions: Literal["all", "masked"] = "all"
    ema: bool = True  # False (Table 12): the reference is the online encoder under stop-grad
    ema_momentum: float = 0.99925


@dataclass(frozen=True)
class TargetConfig:
    """What the decoder generates: pixel tubelets in [-1, 1], or frozen-VAE latents [paper Table 3]."""

    kind: Literal["pixels", "vae"] = "pixels"
    vae_path: str = ""  # local diffusers AutoencoderKL directory (kind: vae)
    vae_stats: str = ""  # JSON with per-channel latent "mean" and "std" (kind: vae)
    latent_channels: int = 32  # VA-VAE f16d32
    latent_downsample: int = 16


@dataclass(frozen=True)
class StageConfig:
    """One stage of the pretraining schedule [paper Table 8]. `steps` are relative lengths: they are
    rescaled so that all stages sum to `ScheduleConfig.total_steps`."""

    name: str
    steps: int
    lr_start: float
    lr_end: float
    decoder_lr: Optional[float]  # None: the decoder follows the main LR
    tau_draws: int
    frames: int
    batch_size: int
    # clips per GPU in one forward/backward (gradient accumulation within the step; 0: the whole
    # per-GPU batch). How, not what: the step's loss, masks, noise and data are those of the whole
    # batch, so it is outside the training hash. `nextvid describe --memory` says what fits.
    micro_batch: int = 0


PAPER_STAGES = (
    StageConfig("warmup", 12_000, 1e-4, 5e-4, None, 4, 16, 3072),
    StageConfig("stable1", 28_000, 5e-4, 4.5e-4, None, 4, 16, 3072),
    StageConfig("stable2", 80_000, 4.5e-4, 1e-4, 8e-4, 1, 16, 3072),
    StageConfig("cooldown", 12_000, 1e-4, 1e-6, 3e-4, 1, 64, 768),
)


@dataclass(frozen=True)
class ScheduleConfig:
    total_steps: int = 132_000
    # > 0: stop the run at this step of the `total_steps` schedule (the paper's ablation protocol: 15K
    # steps of the 132K schedule, not the schedule squeezed into 15K). 0: run the whole schedule.
    stop_at: int = 0
    stages: tuple[StageConfig, ...] = PAPER_STAGES
    weight_decay: float = 0.04
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    # multiplies every stage's learning rates, the decoder's fixed ones included: how a run at another
    # batch size rescales Table 8's rates (searched on a dev split, docs/grid.md), without restating stages
    lr_scale: float = 1.0
    # bf16: torch.autocast(dtype=bfloat16), no grad scaler [paper]; fp32; auto: bf16 where the device
    # runs it natively, fp32 elsewhere (nextvid.train.precision; resolved once when a run starts)
    precision: Literal["auto", "bf16", "fp32"] = "bf16"

    @property
    def end_step(self) -> int:
        return run_end_step(self.total_steps, self.stop_at)


def run_end_step(total_steps: int, stop_at: Optional[int]) -> int:
    """The step a run ends at: `stop_at` for an early-stopped run, else the schedule's end. The one
    place that says so: the trainer, the config checks, the workflow's plan and the reports ask it."""
    return stop_at or total_steps


@dataclass(frozen=True)
class SourceConfig:
    """One pretraining source: a manifest sampled with probability proportional to `weight`
    [paper Table 6: weights, not epochs]. `shards`: optional uint8 clip cache built from it."""

    name: str
    manifest: str
    weight: float
    shards: str = ""


@dataclass(frozen=True)
class DataConfig:
    sources: tuple[SourceConfig, ...] = ()
    # clips are sampled at `sample_fps` from each video [paper: 4 fps], or every `frame_step` frames
    # when set (> 0) — the embedded default's synthetic videos have no meaningful fps
    sample_fps: float = 4.0
    frame_step: int = 0
    # augmentation [ours, V-JEPA 2]: random resized crop and horizontal flip
    crop_scale: tuple[float, float] = (0.3, 1.0)
    crop_aspect: tuple[float, float] = (0.75, 1.35)
    hflip: bool = True
    num_workers: int = 2
    max_bad_fraction: float = 0.05  # stop with an error when more of the samples are unreadable


@dataclass(frozen=True)
class TrainConfig:
    device: Literal["auto", "cpu", "cuda"] = "auto"
    log_every: int = 10
    checkpoint_every: int = 1000  # the latest checkpoint is overwritten this often
    keep_steps: tuple[int, ...] = ()  # checkpoints kept for probing (in addition to the latest)
    deterministic: bool = False  # torch.use_deterministic_algorithms: bitwise resume on CPU
    tensorboard: bool = (
        False  # also write the metrics.csv scalars to <run>/tensorboard/ (rank 0; needs nextvid[tensorboard])
    )


@dataclass(frozen=True)
class LaunchConfig:
    """Where `nextvid pretrain` runs. Site settings for SLURM live here (or in the workflow profile)."""

    nodes: int = 1
    gpus_per_node: int = 8
    # memory of one GPU: a SLURM submission whose stages the memory model says do not fit stops
    # before it is queued (`nextvid describe --memory`); 0 skips the check
    gpu_mem_gb: float = 80.0
    cpus_per_task: int = 10
    mem_gb: int = 0  # 0: the partition's default
    timeout_min: int = 24 * 60
    partition: str = ""
    account: str = ""
    qos: str = ""
    constraint: str = ""
    signal_delay_s: int = 120  # USR2 this long before the time limit: checkpoint and requeue
    max_timeouts: int = 3  # requeues after a time limit before the job fails (preemptions do not count) [submitit]


@dataclass(frozen=True)
class ComputeConfig:
    """How a step is computed on the hardware, never what it computes (outside the training hash: a
    run may change these and resume). `nextvid describe --memory` says which settings a stage needs."""

    # recompute each block's activations in the backward pass (torch.utils.checkpoint, per block)
    checkpoint_encoder: bool = False
    checkpoint_predictor: bool = False
    checkpoint_decoder: bool = False
    # masked attention kernel: "flex" (FlexAttention block masks), "sdpa" (dense boolean mask), or
    # "auto": flex on CUDA where torch has it, sdpa elsewhere
    attention: Literal["auto", "sdpa", "flex"] = "auto"
    compile: bool = False  # torch.compile the model (forward and backward) [off on CPU: compile time]


@dataclass(frozen=True)
class ModelConfig:
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    predictor: PredictorConfig = field(default_factory=PredictorConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)


@dataclass(frozen=True)
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    target: TargetConfig = field(default_factory=TargetConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    launch: LaunchConfig = field(default_factory=LaunchConfig)
    compute: ComputeConfig = field(default_factory=ComputeConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        validate(self)

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    def stable_hash(self) -> str:
        """12 hex digits of sha256 over the canonical JSON: the same config always names the same run."""
        return plain_hash(self.to_dict())

    def training_hash(self) -> str:
        """The hash of what decides the trained weights: the config without where and how the run is
        launched and logged (`launch`, worker count, logging, which checkpoints are kept) and how a step
        is computed (`compute`, the stages' micro-batches). A run resumes (and a live job is re-attached) only under the same training hash, so moving a run to another
        partition or keeping more checkpoints does not orphan its progress."""
        d = self.to_dict()
        d.pop("launch")
        d.pop("compute")
        for stage in d["schedule"]["stages"]:
            stage.pop("micro_batch")
        d["data"].pop("num_workers")
        for key in NON_TRAINING_KEYS:
            d["train"].pop(key)
        return plain_hash(d)


NON_TRAINING_KEYS = ("log_every", "checkpoint_every", "keep_steps", "tensorboard")
