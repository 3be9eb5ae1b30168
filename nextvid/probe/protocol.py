"""Probe protocols as data: one frozen dataclass per benchmark, built and validated with the same
machinery as the pretraining config (`nextvid.config`), so an unknown key or a wrong type is an error
that names the key.

Paper protocols follow paper Table 10 (docs/method.md §5); where the paper is silent we follow the V-JEPA 2
evaluation YAMLs (anchors §1.9). The embedded protocols scale them to a 2-core CPU for the `tiny`
preset (128 px, 8-16 frames) and keep what each benchmark tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from nextvid.config_engine import ConfigError, check_ranges, from_dict, load_yaml_file, merge, parse_override, to_plain


@dataclass(frozen=True)
class GridConfig:
    """Probe heads trained together: one head per (lr, weight decay) pair [ours, V-JEPA 2]."""

    lr: tuple[float, ...] = (5e-3, 3e-3, 1e-3, 3e-4, 1e-4)
    weight_decay: tuple[float, ...] = (0.01, 0.1, 0.4, 0.8)

    def pairs(self) -> list[tuple[float, float]]:
        return [(lr, wd) for lr in self.lr for wd in self.weight_decay]


@dataclass(frozen=True)
class ProbeProtocol:
    benchmark: str
    train_manifest: str = ""  # or --train-manifest
    val_manifest: str = ""  # or --val-manifest
    # clips [paper Table 10]: every sample gives `segments` x `views` clips of `frames` frames taken
    # every `frame_step` frames; `image`: the sample is a still image repeated over `frames` frames.
    image: bool = False
    frames: int = 16
    frame_step: int = 4
    segments: int = 1
    views: int = 1
    resolution: int = 256
    # training views: one view of all segments [V-JEPA]. augment: random resized crop (+ flip) for
    # the training views, so their features are recomputed every epoch; otherwise they are cached.
    augment: bool = False
    crop_scale: tuple[float, float] = (0.08, 1.0)
    crop_aspect: tuple[float, float] = (0.75, 4 / 3)
    hflip: bool = False  # V-JEPA: no flip (SSv2 labels depend on direction)
    # encoder features: the last `layers` of `depth` evenly spaced blocks, last included, each with
    # the final norm, concatenated on channels [paper: 1, Diving-48: 4]
    layers: int = 1
    bidirectional: bool = False  # False: the encoder's own mask at probe time (frame-causal as trained)
    pixel_pool: int = 4  # `--encoder pixels`: average-pool each patch by this factor per side
    # `--encoder convnet` (the small 3D CNN of the supervised ceiling): channels of its four layers;
    # the workflow's ceiling row narrows it to fit a few CPU minutes (docs/benchmarks.md)
    convnet_widths: tuple[int, int, int, int] = (32, 64, 128, 128)
    # attentive probe [paper: one query, one cross-attention block, linear; 16 heads at ViT-L]
    heads: int = 16
    mlp_ratio: float = 4.0
    # optimisation [ours, V-JEPA 2]: AdamW, constant weight decay, warm-up then cosine LR to 0 per step
    epochs: int = 20
    batch_size: int = 192
    grid: GridConfig = field(default_factory=GridConfig)
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    warmup_epochs: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    # heads with the same (lr, wd) are also trained without this stratified fraction of the training
    # split; their accuracy on it selects the reported hyper-parameters without looking at val.
    holdout_fraction: float = 0.1
    seed: int = 0
    # bf16 autocast for the frozen encoder and the heads (features are stored fp16 either way), as the
    # pretraining runs; fp32; auto: bf16 where the device runs it natively (GPUs, CPUs with
    # AVX512-BF16/AMX: 2x the fp32 feature pass of the tiny encoder, docs/probe.md "Cost"), fp32
    # elsewhere (emulated bf16 is several times slower than fp32). Resolved when the probe starts.
    precision: Literal["auto", "bf16", "fp32"] = "bf16"
    # unreadable samples are skipped and counted per split; more than this fraction of a split is an error
    max_bad_fraction: float = 0.05

    def __post_init__(self) -> None:
        validate(self)

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    @property
    def clip_spec(self) -> str:
        """frames x segments x views, as the paper writes it (e.g. 16x8x3)."""
        return f"{self.frames}x{self.segments}x{self.views}"


def _paper(benchmark: str, **kw: Any) -> ProbeProtocol:
    return ProbeProtocol(benchmark=benchmark, augment=True, resolution=256, heads=16, **kw)


def _embedded(benchmark: str, **kw: Any) -> ProbeProtocol:
    """CPU scale for the tiny preset: 128 px, deterministic views (features cached), 3 lr heads at
    one weight decay (a second moved val top-1 by under 0.1 point on average: docs/grid.md)."""
    grid = GridConfig(lr=(1e-2, 3e-3, 1e-3), weight_decay=(0.01,))
    base: dict[str, Any] = dict(
        resolution=128, heads=4, batch_size=64, epochs=20, grid=grid, warmup_epochs=1.0, precision="auto"
    )
    return ProbeProtocol(benchmark=benchmark, **{**base, **kw})


PROTOCOLS = {
    # paper Table 10; grids and schedules from the V-JEPA 2 eval configs (anchors §1.9)
    "k400": lambda: _paper("k400", frames=16, frame_step=4, segments=8, views=3, batch_size=192, epochs=20),
    "ssv2": lambda: _paper("ssv2", frames=16, frame_step=4, segments=2, views=3, batch_size=96, epochs=20),
    "diving48": lambda: _paper(
        "diving48",
        frames=32,
        frame_step=2,
        segments=4,
        views=3,
        batch_size=48,
        epochs=100,
        layers=4,
        grid=GridConfig(lr=(1e-3, 3e-4, 1e-4), weight_decay=(0.8,)),
    ),
    "in1k": lambda: _paper(
        "in1k",
        image=True,
        frames=16,
        frame_step=1,
        segments=1,
        views=1,
        batch_size=384,
        epochs=20,
        warmup_epochs=5.0,
        grid=GridConfig(lr=(2e-3, 1e-3, 5e-4), weight_decay=(5e-4, 2e-3, 8e-3)),
    ),
    # the embedded default (docs/probe.md): what each one tests mirrors the paper's four
    "images": lambda: _embedded("images", image=True, frames=8, frame_step=1),
    "appearance": lambda: _embedded("appearance", frames=8, frame_step=2, segments=2),
    "motion": lambda: _embedded("motion", frames=8, frame_step=2, segments=2),
    # 2 layers, not Diving-48's 4: on the 6-block tiny encoder 4 "evenly spaced" layers are blocks 2-5
    # (stride 1); blocks 2 and 5 span the same depth at half the feature width, and the 4-layer probe
    # took 10 min on 2 shared cores (450 s of it in the heads, whose cost is linear in the width).
    # 8 frames every 4: each segment still spans 32 frames, half the video, at half the cost of 16
    # every 2 (docs/grid.md, "How the budget was cut")
    "motion_sequence": lambda: _embedded("motion_sequence", frames=8, frame_step=4, segments=2, layers=2),
}


def get_protocol(benchmark: str) -> ProbeProtocol:
    try:
        return PROTOCOLS[benchmark]()
    except KeyError:
        raise ConfigError(
            f"benchmark {benchmark!r}: unknown (choose from {', '.join(PROTOCOLS)}, or give --protocol FILE)"
        ) from None


def load_protocol(benchmark: str, file: str | Path | None = None, overrides: list[str] = ()) -> ProbeProtocol:
    """Resolve a protocol: the benchmark's preset (a custom benchmark name starts from the generic
    defaults and needs a file), then a YAML file, then KEY=VALUE overrides. A file may name its base
    with `preset: <benchmark>`."""
    data: dict[str, Any] = {}
    if file is not None:
        data = load_yaml_file(file) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{file}: expected a mapping at the top level")
    preset = data.pop("preset", benchmark)
    if preset in PROTOCOLS:
        proto = merge(get_protocol(preset), {"benchmark": benchmark})
    elif file is not None:
        proto = from_dict(ProbeProtocol, {"benchmark": benchmark})
    else:
        proto = get_protocol(preset)  # raises: unknown benchmark without a file
    # the file and every override applied, then validated once: their order does not matter
    layers = ([data] if data else []) + [parse_override(text) for text in overrides]
    return merge(proto, *layers) if layers else proto


def layer_indices(depth: int, layers: int) -> list[int]:
    """0-based blocks fed to the probe: `layers` evenly spaced over the depth, the last included
    (ViT-L, 4 layers: 5, 11, 17, 23). V-JEPA 2 instead takes every other one of the last blocks."""
    if not 1 <= layers <= depth:
        raise ConfigError(f"layers: {layers} encoder layers asked of an encoder of depth {depth}")
    stride = depth // layers
    return [depth - 1 - stride * k for k in reversed(range(layers))]


def validate(p: ProbeProtocol) -> None:
    check_ranges(p)
    _require(bool(p.benchmark), "benchmark", "must be a non-empty name")
    for key in (
        "frames",
        "frame_step",
        "segments",
        "views",
        "resolution",
        "layers",
        "heads",
        "epochs",
        "batch_size",
        "pixel_pool",
    ):
        _require(getattr(p, key) >= 1, key, "must be >= 1")
    _require(p.mlp_ratio > 0, "mlp_ratio", "must be > 0")
    _require(
        len(p.grid.lr) >= 1 and all(v > 0 for v in p.grid.lr), "grid.lr", "needs at least one learning rate, all > 0"
    )
    _require(
        len(p.grid.weight_decay) >= 1 and all(v >= 0 for v in p.grid.weight_decay),
        "grid.weight_decay",
        "needs at least one value, all >= 0",
    )
    _require(len(set(p.grid.pairs())) == len(p.grid.pairs()), "grid", "(lr, weight_decay) pairs must be distinct")
    _require(0 <= p.holdout_fraction < 0.5, "holdout_fraction", "must be in [0, 0.5)")
    _require(0 <= p.max_bad_fraction < 1, "max_bad_fraction", "must be in [0, 1)")
    _require(0 <= p.warmup_epochs < p.epochs, "warmup_epochs", "must be in [0, epochs)")
    _require(0 < p.crop_scale[0] <= p.crop_scale[1] <= 1, "crop_scale", "must be (low, high) within (0, 1]")
    _require(0 < p.crop_aspect[0] <= p.crop_aspect[1], "crop_aspect", "must be (low, high) with 0 < low <= high")
    _require(all(0 <= b < 1 for b in p.betas), "betas", "must be in [0, 1)")
    _require(all(w >= 1 for w in p.convnet_widths), "convnet_widths", "must be >= 1")
    if p.image:
        _require(p.segments == 1 and p.views == 1, "segments", "an image benchmark has one segment and one view")


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {message}")
