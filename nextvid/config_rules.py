"""The relations between fields of the pretraining config that its types cannot say (a width divisible
by its heads, a VAE target with its paths, ...), and the ranges of its numbers; checked whenever a
Config is built (types are checked while building, by nextvid.config_engine)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nextvid.config_engine import ConfigError, check_ranges

if TYPE_CHECKING:
    from nextvid.config_schema import Config


def validate(cfg: Config) -> None:
    check_ranges(cfg)
    enc = cfg.model.encoder
    _require(enc.image_size % enc.patch_size == 0, "model.encoder.image_size", "must be a multiple of patch_size")
    _require(enc.frames % enc.tubelet == 0, "model.encoder.frames", "must be a multiple of tubelet")
    _require(
        enc.frames // enc.tubelet >= 2, "model.encoder.frames", "needs >= 2 token-frames (one context, one target)"
    )
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
        _require(
            0 < g.aspect_ratio[0] <= g.aspect_ratio[1],
            f"{key}.aspect_ratio",
            "must be (low, high) with 0 < low <= high",
        )
        _require(g.temporal_scale == 1.0, f"{key}.temporal_scale", "only 1.0 (tubes over the whole clip) is supported")
    _require(0 < cfg.masking.tube_ratio < 1, "masking.tube_ratio", "must be in (0, 1)")
    _require(cfg.masking.unmasked_views >= 1, "masking.unmasked_views", "must be >= 1")
    dec = cfg.model.decoder
    _require(
        dec.attention != "none" or dec.condition == "cross",
        "model.decoder.attention",
        "none needs condition: cross (with concat, nothing would mix z_t across positions)",
    )
    _require(
        dec.attention != "cross_frame" or dec.condition == "concat",
        "model.decoder.attention",
        "cross_frame is defined for condition: concat",
    )
    if cfg.masking.kind == "multiblock":
        _require(len(cfg.masking.generators) >= 1, "masking.generators", "needs at least one generator")
    obj = cfg.objective
    if obj.method == "nextvid":
        _require(obj.generation or obj.alignment, "objective", "generation and alignment cannot both be off")
    _require(0.0 <= obj.ema_momentum <= 1.0, "objective.ema_momentum", "must be in [0, 1]")
    if cfg.target.kind == "vae":
        _require(bool(cfg.target.vae_path), "target.vae_path", "is required when target.kind is vae")
        _require(
            bool(cfg.target.vae_stats),
            "target.vae_stats",
            "is required when target.kind is vae (per-channel latent mean/std)",
        )
        _require(
            enc.patch_size % cfg.target.latent_downsample == 0, "target.latent_downsample", "must divide the patch size"
        )
    data = cfg.data
    _require(data.sample_fps > 0 or data.frame_step > 0, "data", "set sample_fps > 0 or frame_step > 0")
    for i, src in enumerate(data.sources):
        _require(src.weight > 0, f"data.sources.{i}.weight", "must be > 0")
    _require(len({s.name for s in data.sources}) == len(data.sources), "data.sources", "names must be unique")
    _require(0 <= data.max_bad_fraction < 1, "data.max_bad_fraction", "must be in [0, 1)")
    _require(0 < data.crop_scale[0] <= data.crop_scale[1] <= 1, "data.crop_scale", "must be (low, high) within (0, 1]")
    _require(cfg.train.log_every >= 1, "train.log_every", "must be >= 1")
    for i, step in enumerate(cfg.train.keep_steps):
        last = cfg.schedule.end_step
        _require(1 <= step <= last, f"train.keep_steps.{i}", f"{step} is not a step the run reaches [1, {last}]")
    _require(cfg.train.checkpoint_every >= 1, "train.checkpoint_every", "must be >= 1")
    _require(cfg.launch.nodes >= 1 and cfg.launch.gpus_per_node >= 0, "launch", "nodes >= 1 and gpus_per_node >= 0")
    sched = cfg.schedule
    _require(sched.total_steps >= len(sched.stages), "schedule.total_steps", "must be >= the number of stages")
    _require(len(sched.stages) >= 1, "schedule.stages", "needs at least one stage")
    _require(
        0 <= sched.stop_at <= sched.total_steps,
        "schedule.stop_at",
        f"must be in [0, total_steps={sched.total_steps}] (0: the whole schedule)",
    )
    for i, st in enumerate(sched.stages):
        key = f"schedule.stages.{i}"
        _require(st.steps > 0, f"{key}.steps", "must be > 0")
        _require(st.tau_draws >= 1, f"{key}.tau_draws", "must be >= 1")
        _require(st.batch_size >= 1, f"{key}.batch_size", "must be >= 1")
        _require(st.micro_batch >= 0, f"{key}.micro_batch", "must be >= 0 (0: the whole per-GPU batch)")
        _require(
            st.frames % enc.tubelet == 0 and st.frames // enc.tubelet >= 2,
            f"{key}.frames",
            "must be a multiple of tubelet with >= 2 token-frames",
        )


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {message}")
