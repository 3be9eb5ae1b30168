"""What the workflow's VAE is and how it is trained, as data (no torch import: the workflow resolves
it at start-up to set the `target.*` keys of the runs that use the VAE).

Defaults are sized for one CPU thread (a few minutes on the embedded default, docs/vae.md):
- a diffusers `AutoencoderKL` [LDM, Rombach et al. 2022] with three levels (4x downsampling, which
  divides the 16-pixel patch) and 4 latent channels: a target token of the tiny preset (2x16x16
  tubelet) is then 2 x 4 x 4 x 4 = 128 values instead of 1536 pixels;
- no attention in the middle block, so the network is fully convolutional and training on 64-pixel
  patches of the 128-pixel frames learns the same function it is applied with (4x less compute per
  step than whole frames);
- frames drawn as pretraining draws its clips (random resized crop and flip to `image_size`), one
  frame of each sampled clip, images as they are;
- MSE reconstruction (the quantity PSNR reports) plus a KL term weighted 1e-6 against the summed
  pixel loss (LDM's KL-f autoencoders; without their LPIPS and GAN terms, which need pretrained
  weights or long training);
- AdamW with a linear warm-up and a cosine decay, a pure function of the step; small batches and
  many steps: at the same 6000 training frames, batch 2 x 3000 steps reconstructed held-out frames
  2-3 dB better than 4 x 1500 or 8 x 750 (docs/vae.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from nextvid.config_engine import ConfigError, check_ranges, merge, parse_override, to_plain


@dataclass(frozen=True)
class VaeConfig:
    # frames: the pretraining resolution (tiny preset: 128); training patches of `crop` pixels cut
    # from them (0: the whole frame)
    image_size: int = 128
    crop: int = 64
    crop_scale: tuple[float, float] = (0.3, 1.0)  # as nextvid.config.DataConfig: frames look like pretraining's
    crop_aspect: tuple[float, float] = (0.75, 1.35)
    hflip: bool = True
    # the AutoencoderKL: len(block_out_channels) levels, downsampling 2 ** (levels - 1)
    block_out_channels: tuple[int, ...] = (16, 32, 64)
    layers_per_block: int = 1
    latent_channels: int = 4
    norm_num_groups: int = 8
    mid_block_attention: bool = False
    # optimisation
    steps: int = 3000
    batch_size: int = 2
    lr: float = 2e-3
    warmup_steps: int = 20
    min_lr_ratio: float = 0.1  # cosine decay to lr * min_lr_ratio at the last step
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    loss: Literal["mse", "l1"] = "mse"
    kl_weight: float = 1e-6
    # latent statistics (stats.json) over this many training frames; reconstruction on this many
    # samples of each held-out manifest (evenly spaced over it, the centre frame of each)
    stats_frames: int = 512
    val_samples: int = 256
    seed: int = 0
    log_every: int = 100
    max_bad_fraction: float = 0.05

    def __post_init__(self) -> None:
        validate(self)

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.block_out_channels) - 1)

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)


def load_vae_config(overrides: list[str] = ()) -> VaeConfig:
    """The defaults with KEY=VALUE overrides (values parsed as YAML), validated once at the end."""
    return merge(VaeConfig(), *[parse_override(text) for text in overrides]) if overrides else VaeConfig()


def target_overrides(directory: str | Path, cfg: VaeConfig) -> list[str]:
    """The pretraining `--set` strings that make `target.kind: vae` read the VAE written to `directory`."""
    directory = Path(directory)
    return [
        f"target.vae_path={directory}",
        f"target.vae_stats={directory / 'stats.json'}",
        f"target.latent_channels={cfg.latent_channels}",
        f"target.latent_downsample={cfg.downsample}",
    ]


def validate(cfg: VaeConfig) -> None:
    check_ranges(cfg, "vae")
    _require(
        len(cfg.block_out_channels) >= 1 and all(c >= 1 for c in cfg.block_out_channels),
        "block_out_channels",
        "needs at least one level, all widths >= 1",
    )
    _require(
        all(c % cfg.norm_num_groups == 0 for c in cfg.block_out_channels),
        "norm_num_groups",
        f"must divide every width in block_out_channels {list(cfg.block_out_channels)}",
    )
    _require(
        cfg.image_size % cfg.downsample == 0, "image_size", f"must be a multiple of the downsampling {cfg.downsample}"
    )
    _require(
        cfg.crop == 0 or (cfg.crop % cfg.downsample == 0 and cfg.crop <= cfg.image_size),
        "crop",
        f"must be 0 or a multiple of the downsampling {cfg.downsample} <= image_size",
    )
    for key in (
        "image_size",
        "layers_per_block",
        "latent_channels",
        "steps",
        "batch_size",
        "stats_frames",
        "val_samples",
        "log_every",
    ):
        _require(getattr(cfg, key) >= 1, key, "must be >= 1")
    _require(cfg.lr > 0 and 0 <= cfg.min_lr_ratio <= 1, "lr", "lr > 0 and min_lr_ratio in [0, 1]")
    _require(0 <= cfg.warmup_steps < cfg.steps, "warmup_steps", "must be in [0, steps)")
    _require(cfg.kl_weight >= 0 and cfg.weight_decay >= 0, "kl_weight", "kl_weight and weight_decay must be >= 0")
    _require(all(0 <= b < 1 for b in cfg.betas), "betas", "must be in [0, 1)")
    _require(0 < cfg.crop_scale[0] <= cfg.crop_scale[1] <= 1, "crop_scale", "must be (low, high) within (0, 1]")
    _require(0 < cfg.crop_aspect[0] <= cfg.crop_aspect[1], "crop_aspect", "must be (low, high) with 0 < low <= high")
    _require(0 <= cfg.max_bad_fraction < 1, "max_bad_fraction", "must be in [0, 1)")


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"vae.{key}: {message}")
