"""Typed, validated configuration. Config is data: frozen dataclasses built from plain dicts (YAML),
with every unknown key and wrong type reported by its dotted path, and a stable hash that names a run.

Defaults are the paper's ViT-L recipe (docs/method.md); presets in `nextvid.presets` change only what
differs. Where the paper is silent, the field's comment says whose choice we follow.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal, Optional

from nextvid.errors import UserInputError, read_user_text


class ConfigError(UserInputError):
    """A config value or key is invalid, or a config file cannot be read; the message names the
    dotted key or the file."""

    status = 2
    kind = "config error"


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
    tensorboard: bool = False  # also write the metrics.csv scalars to <run>/tensorboard/ (rank 0; needs nextvid[tensorboard])


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
        return _to_plain(self)

    def stable_hash(self) -> str:
        """12 hex digits of sha256 over the canonical JSON: the same config always names the same run."""
        return _hash(self.to_dict())

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
        return _hash(d)


NON_TRAINING_KEYS = ("log_every", "checkpoint_every", "keep_steps", "tensorboard")


def _hash(d: dict) -> str:
    blob = json.dumps(d, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


# --------------------------------------------------------------------------------------------------
# building from plain data


def from_dict(cls: type, data: Any, path: str = "") -> Any:
    """Build dataclass `cls` from nested dicts/lists, checking every key and type."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{_join(path, unknown[0])}: unknown key (valid keys: {', '.join(sorted(names))})")
    kwargs = {k: _coerce(hints[k], v, _join(path, k)) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as err:  # a required field is missing
        raise ConfigError(f"{path or 'config'}: {err}") from None


def merge(base: Any, *overrides: dict[str, Any], path: str = "") -> Any:
    """Return `base` (a dataclass) with the nested `overrides` applied in order, validated once at the
    end like `from_dict` (so `target.kind=vae` and `target.vae_path=...` may come as two overrides)."""
    plain = _to_plain(base)
    for o in overrides:
        _deep_update(plain, o, path)
    return from_dict(type(base), plain, "")


def load_yaml(text: str, source: str = "") -> Any:
    """YAML as a user means it: PyYAML follows YAML 1.1, where `1e-5` and `1.0e5` (no dot, or no sign
    in the exponent) are strings; here they are floats, as in YAML 1.2 and Python. A syntax error is
    a ConfigError naming `source` (a file, or the override) and the line."""
    import yaml

    try:
        return yaml.load(text, Loader=_yaml_loader())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None and source and "\n" in text.strip() else source
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{where or 'YAML'}: not valid YAML ({problem})") from None


def load_yaml_file(path: str | Path) -> Any:
    """A YAML file the user named (config, protocol); a ConfigError naming it when it is missing or malformed."""
    return load_yaml(read_user_text(path, "config file", ConfigError), str(path))


@functools.cache
def _yaml_loader() -> type:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
        list("-+0123456789."),
    )
    return Loader


def parse_override(text: str) -> dict[str, Any]:
    """`model.encoder.depth=4` -> {"model": {"encoder": {"depth": 4}}}; the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected KEY=VALUE")
    key, raw = text.split("=", 1)
    value = load_yaml(raw, f"override {text!r}")
    out: dict[str, Any] = {}
    node = out
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def load(preset: str | None = None, file: str | Path | None = None, overrides: list[str] = ()) -> Config:
    """Resolve a config: preset (default: the paper's ViT-L), then a YAML file, then KEY=VALUE overrides.
    A YAML file may name its own `preset:`."""
    from nextvid.presets import get_preset

    file_data: dict[str, Any] = {}
    if file is not None:
        file_data = load_yaml_file(file) or {}
        if not isinstance(file_data, dict):
            raise ConfigError(f"{file}: expected a mapping at the top level")
        file_preset = file_data.pop("preset", None)
        if preset is None:
            preset = file_preset
    cfg = get_preset(preset or "vit_l")
    layers = ([file_data] if file_data else []) + [parse_override(text) for text in overrides]
    return merge(cfg, *layers) if layers else cfg


def save(cfg: Config, path: str | Path, header: str = "") -> None:
    """The config as YAML; `header` (e.g. what a run resolved) goes above it as a comment."""
    import yaml

    comment = "".join(f"# {line}\n" for line in header.splitlines())
    Path(path).write_text(comment + yaml.safe_dump(cfg.to_dict(), sort_keys=False))


# --------------------------------------------------------------------------------------------------
# validation of relations between fields (types are checked while building)


def validate(cfg: Config) -> None:
    check_ranges(cfg)
    enc = cfg.model.encoder
    _require(enc.image_size % enc.patch_size == 0, "model.encoder.image_size", "must be a multiple of patch_size")
    _require(enc.frames % enc.tubelet == 0, "model.encoder.frames", "must be a multiple of tubelet")
    _require(enc.frames // enc.tubelet >= 2, "model.encoder.frames", "needs >= 2 token-frames (one context, one target)")
    for name, (width, heads) in {
        "model.encoder": (enc.width, enc.heads),
        "model.predictor": (cfg.model.predictor.width, cfg.model.predictor.heads),
        "model.decoder": (cfg.model.decoder.width, cfg.model.decoder.heads),
    }.items():
        _require(width % heads == 0, f"{name}.width", f"{width} is not divisible by heads={heads}")
    for i, g in enumerate(cfg.masking.generators):
        key = f"masking.generators.{i}"
        _require(g.num_blocks >= 1, f"{key}.num_blocks", "must be >= 1")
        _require(0 < g.spatial_scale <= 1, f"{key}.spatial_scale", "must be in (0, 1]")
        _require(0 < g.aspect_ratio[0] <= g.aspect_ratio[1], f"{key}.aspect_ratio", "must be (low, high) with 0 < low <= high")
        _require(g.temporal_scale == 1.0, f"{key}.temporal_scale", "only 1.0 (tubes over the whole clip) is supported")
    _require(0 < cfg.masking.tube_ratio < 1, "masking.tube_ratio", "must be in (0, 1)")
    _require(cfg.masking.unmasked_views >= 1, "masking.unmasked_views", "must be >= 1")
    dec = cfg.model.decoder
    _require(dec.attention != "none" or dec.condition == "cross", "model.decoder.attention",
             "none needs condition: cross (with concat, nothing would mix z_t across positions)")
    _require(dec.attention != "cross_frame" or dec.condition == "concat", "model.decoder.attention",
             "cross_frame is defined for condition: concat")
    if cfg.masking.kind == "multiblock":
        _require(len(cfg.masking.generators) >= 1, "masking.generators", "needs at least one generator")
    obj = cfg.objective
    if obj.method == "nextvid":
        _require(obj.generation or obj.alignment, "objective", "generation and alignment cannot both be off")
    _require(0.0 <= obj.ema_momentum <= 1.0, "objective.ema_momentum", "must be in [0, 1]")
    if cfg.target.kind == "vae":
        _require(bool(cfg.target.vae_path), "target.vae_path", "is required when target.kind is vae")
        _require(bool(cfg.target.vae_stats), "target.vae_stats", "is required when target.kind is vae (per-channel latent mean/std)")
        _require(enc.patch_size % cfg.target.latent_downsample == 0, "target.latent_downsample", "must divide the patch size")
    data = cfg.data
    _require(data.sample_fps > 0 or data.frame_step > 0, "data", "set sample_fps > 0 or frame_step > 0")
    for i, src in enumerate(data.sources):
        _require(src.weight > 0, f"data.sources.{i}.weight", "must be > 0")
    _require(len({s.name for s in data.sources}) == len(data.sources), "data.sources", "names must be unique")
    _require(0 <= data.max_bad_fraction < 1, "data.max_bad_fraction", "must be in [0, 1)")
    _require(0 < data.crop_scale[0] <= data.crop_scale[1] <= 1, "data.crop_scale", "must be (low, high) within (0, 1]")
    _require(cfg.train.log_every >= 1, "train.log_every", "must be >= 1")
    for i, step in enumerate(cfg.train.keep_steps):
        last = cfg.schedule.stop_at or cfg.schedule.total_steps  # an early-stopped run ends at stop_at
        _require(1 <= step <= last, f"train.keep_steps.{i}", f"{step} is not a step the run reaches [1, {last}]")
    _require(cfg.train.checkpoint_every >= 1, "train.checkpoint_every", "must be >= 1")
    _require(cfg.launch.nodes >= 1 and cfg.launch.gpus_per_node >= 0, "launch", "nodes >= 1 and gpus_per_node >= 0")
    sched = cfg.schedule
    _require(sched.total_steps >= len(sched.stages), "schedule.total_steps", "must be >= the number of stages")
    _require(len(sched.stages) >= 1, "schedule.stages", "needs at least one stage")
    _require(0 <= sched.stop_at <= sched.total_steps, "schedule.stop_at", f"must be in [0, total_steps={sched.total_steps}] (0: the whole schedule)")
    for i, st in enumerate(sched.stages):
        key = f"schedule.stages.{i}"
        _require(st.steps > 0, f"{key}.steps", "must be > 0")
        _require(st.tau_draws >= 1, f"{key}.tau_draws", "must be >= 1")
        _require(st.batch_size >= 1, f"{key}.batch_size", "must be >= 1")
        _require(st.micro_batch >= 0, f"{key}.micro_batch", "must be >= 0 (0: the whole per-GPU batch)")
        _require(st.frames % enc.tubelet == 0 and st.frames // enc.tubelet >= 2, f"{key}.frames", "must be a multiple of tubelet with >= 2 token-frames")


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {message}")


# --------------------------------------------------------------------------------------------------
# ranges of numeric fields, by rule rather than field by field: every number of a config built with
# this machinery (this Config, probe protocols, the VAE config) is checked by the first rule whose
# pattern matches its field name (the last non-index part of its dotted key), so a field added later
# is covered too. Relations between fields are `validate`'s.


@dataclass(frozen=True)
class RangeRule:
    names: str  # regex, full match on the field name
    low: float
    high: float = math.inf
    low_open: bool = False  # (low, ...] rather than [low, ...]
    high_open: bool = True

    def admits(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return math.isfinite(value) and above and below

    def describe(self, value: float) -> str:
        if self.high == math.inf:
            return f"must be {'finite and ' if isinstance(value, float) else ''}{'>' if self.low_open else '>='} {self.low:g}"
        return f"must be in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"


RANGE_RULES = (
    RangeRule(r"lr|lr_\w+|\w+_lr", 0.0, low_open=True),  # learning rates
    RangeRule(r"betas", 0.0, 1.0),  # AdamW
    RangeRule(r"\w*workers|warmup_\w+", 0.0),  # counts that may be 0 (before the sizes and steps below)
    RangeRule(r"\w*(width|depth|heads|chans|channels|groups|downsample|pool)|\w+_size|frames|tubelet|steps|\w+_steps|num_\w+|\w+_every", 1.0),
    RangeRule(r"\w+", 0.0),  # any other number: finite and not negative
)


def check_ranges(obj: Any, path: str = "") -> None:
    """Raise ConfigError naming the dotted key of the first number outside its rule's range."""
    for key, value in _numbers(obj, path):
        rule = next(r for r in RANGE_RULES if re.fullmatch(r.names, _field_name(key)))
        if not rule.admits(float(value)):
            raise ConfigError(f"{key}: {value!r} {rule.describe(value)}")


def _numbers(obj: Any, path: str) -> Iterator[tuple[str, float]]:
    if dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            yield from _numbers(getattr(obj, f.name), _join(path, f.name))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _numbers(v, _join(path, i))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield path, obj


def _field_name(key: str) -> str:
    return next(part for part in reversed(key.split(".")) if not part.isdigit())


# --------------------------------------------------------------------------------------------------
# helpers


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        if dataclasses.is_dataclass(value) and type(value) is tp:
            return value
        return from_dict(tp, value, path)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, path)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{path}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {type(value).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{path}.{i}") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{path}: expected {len(args)} values, got {len(value)}")
        return tuple(_coerce(a, v, f"{path}.{i}") for i, (a, v) in enumerate(zip(args, value)))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    raise TypeError(f"{path}: unsupported config type {tp}")  # a bug in the schema, not in user input


def _to_plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v) for v in obj]
    return obj


def _deep_update(plain: dict[str, Any], overrides: dict[str, Any], path: str) -> None:
    if not isinstance(overrides, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {type(overrides).__name__}")
    for key, value in overrides.items():
        here = _join(path, key)
        if key not in plain:
            raise ConfigError(f"{here}: unknown key (valid keys: {', '.join(sorted(plain))})")
        if isinstance(plain[key], dict) and isinstance(value, dict):
            _deep_update(plain[key], value, here)
        elif isinstance(plain[key], list) and isinstance(value, dict):  # `generators.0.num_blocks=2`
            _update_list(plain[key], value, here)
        else:
            plain[key] = value


def _update_list(items: list[Any], overrides: dict[Any, Any], path: str) -> None:
    for index, value in overrides.items():
        i = int(index) if str(index).isdigit() else -1
        if not 0 <= i < len(items):
            raise ConfigError(f"{_join(path, index)}: no such list element (the list has {len(items)})")
        if isinstance(items[i], dict) and isinstance(value, dict):
            _deep_update(items[i], value, _join(path, index))
        else:
            items[i] = value
