"""Train the VAE on a pretraining mixture and write its directory:

    OUT/config.json, OUT/diffusion_pytorch_model.safetensors   diffusers AutoencoderKL (save_pretrained)
    OUT/stats.json     per-channel "mean" and "std" of the posterior mean over `stats_frames` training
                       frames (what `target.vae_stats` names; nextvid.models.targets.VaeTarget)
    OUT/metrics.json   reconstruction MSE and PSNR on held-out frames beside the bilinear down-up
                       baseline, the training loss log, frame counts, wall times, the config

OUT is written as a whole (nextvid.io.atomic_dir): a run that fails or is killed leaves the previous
OUT, or none, never a half-written one. The run is deterministic given the config's seed (weights
from a seeded init, frames from nextvid.vae.data, posterior noise from one seeded generator), so a
rerun writes identical weights on the same machine and thread count.
"""

from __future__ import annotations

import logging
import platform
import time
from pathlib import Path
from typing import Sequence

import torch

from nextvid.data.badinput import SkipLog
from nextvid.data.video import Backend
from nextvid.io import atomic_dir, atomic_write_json, sha256_file
from nextvid.progress import Progress
from nextvid.provenance import git_commit
from nextvid.vae.config import VaeConfig
from nextvid.vae.data import HeldOutFrames, MixtureFrames, held_out_batches, mixture_batches
from nextvid.vae.evaluate import latent_stats, reconstruction_quality
from nextvid.vae.model import build_vae, lr_at, make_optimizer, train_step

log = logging.getLogger(__name__)

EVAL_BATCH = 32


def train_vae(
    mixture: str | Path,
    out: str | Path,
    cfg: VaeConfig,
    val_manifests: Sequence[str | Path] = (),
    *,
    backend: Backend = "auto",
    workers: int = 0,
) -> dict:
    """Train, measure and write OUT; return the metrics (also OUT/metrics.json)."""
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    vae = build_vae(cfg)
    vae.train()
    history, skips = fit(vae, mixture, cfg, backend=backend, workers=workers)
    t_train = time.perf_counter() - t0

    vae.eval()
    full = MixtureFrames(mixture, cfg, crop=0, backend=backend)
    stats_skips = full.skip_log(cfg.max_bad_fraction)
    stats = latent_stats(vae, mixture_batches(full, 0, cfg.stats_frames, EVAL_BATCH, stats_skips, workers))
    t_stats = time.perf_counter() - t0 - t_train

    held_out = [evaluate_manifest(vae, m, cfg, backend, workers) for m in val_manifests]
    t_eval = time.perf_counter() - t0 - t_train - t_stats

    metrics = {
        "config": cfg.to_dict(),
        "mixture": {"path": str(Path(mixture).resolve()), "sha256": sha256_file(mixture)},
        "model": {
            "params": sum(p.numel() for p in vae.parameters()),
            "downsample": cfg.downsample,
            "latent_channels": cfg.latent_channels,
            "latent_shape": [cfg.latent_channels, cfg.image_size // cfg.downsample, cfg.image_size // cfg.downsample],
        },
        "train": {
            "steps": cfg.steps,
            "frames": skips.seen - skips.bad,
            "frame_size": cfg.crop or cfg.image_size,
            "skipped": skips.bad,
            "log": history,
        },
        "stats": {"frames": stats["frames"], "positions": stats["positions"], "skipped": stats_skips.bad},
        "held_out": {"manifests": held_out, "all": combine(held_out)},
        "wall_s": {
            "train": round(t_train, 1),
            "stats": round(t_stats, 1),
            "eval": round(t_eval, 1),
            "total": round(time.perf_counter() - t0, 1),
        },
        "threads": torch.get_num_threads(),
        "versions": _versions(),
        "git_commit": git_commit(),
    }
    write_run(out, vae, {"mean": stats["mean"], "std": stats["std"], "frames": stats["frames"]}, metrics)
    return metrics


def fit(
    vae: torch.nn.Module, mixture: str | Path, cfg: VaeConfig, *, backend: Backend = "auto", workers: int = 0
) -> tuple[list[dict], SkipLog]:
    """`cfg.steps` steps on mixture frames [s * batch, (s + 1) * batch); returns the loss log (means
    over each `log_every` steps) and the skip count."""
    opt = make_optimizer(vae, cfg)
    frames = MixtureFrames(mixture, cfg, crop=cfg.crop, backend=backend)
    skips = frames.skip_log(cfg.max_bad_fraction)
    noise = torch.Generator().manual_seed(cfg.seed)
    history, window = [], []

    def flush(step: int) -> None:
        loss, rec, kl = (sum(v) / len(window) for v in zip(*window))
        history.append({"step": step + 1, "lr": lr_at(step, cfg), "loss": loss, "reconstruction": rec, "kl": kl})
        log.info(
            "step %d/%d: loss %.4f (%s %.4f, kl %.1f), lr %.2e, %s",
            step + 1,
            cfg.steps,
            loss,
            cfg.loss,
            rec,
            kl,
            lr_at(step, cfg),
            skips.summary(),
        )
        window.clear()

    # a batch whose samples were all unreadable is left out: its step is not taken
    batches = mixture_batches(frames, 0, cfg.steps * cfg.batch_size, cfg.batch_size, skips, workers)
    step = -1
    progress = Progress(cfg.steps, "vae", "steps")
    for step, x in enumerate(batches):
        parts = train_step(vae, opt, x, step, cfg, noise)
        window.append((parts.loss.item(), parts.reconstruction, parts.kl))
        progress.update(step + 1, f"loss {window[-1][0]:.4f}")
        if (step + 1) % cfg.log_every == 0:
            flush(step)
    if window:
        flush(step)
    progress.close()
    return history, skips


def evaluate_manifest(
    vae: torch.nn.Module, manifest: str | Path, cfg: VaeConfig, backend: Backend, workers: int
) -> dict:
    frames = HeldOutFrames(manifest, cfg.image_size, cfg.val_samples, backend)
    skips = SkipLog(cfg.max_bad_fraction, total=len(frames), name=str(manifest))
    quality = reconstruction_quality(vae, held_out_batches(frames, EVAL_BATCH, skips, workers), cfg.downsample)
    log.info(
        "%s: PSNR %.2f dB (bilinear down-up x%d: %.2f dB) on %d frames",
        manifest,
        quality["vae"]["psnr_db"],
        cfg.downsample,
        quality["bilinear_down_up"]["psnr_db"],
        quality["vae"]["frames"],
    )
    return {
        "path": str(Path(manifest).resolve()),
        "sha256": frames.clips.source.manifest.sha256,
        "skipped": skips.bad,
        **quality,
    }


def combine(parts: list[dict]) -> dict:
    """Frame-weighted means over manifests (every frame counts once)."""
    out = {}
    for key in ("vae", "bilinear_down_up"):
        n = sum(p[key]["frames"] for p in parts)
        out[key] = {
            "frames": n,
            **{m: sum(p[key][m] * p[key]["frames"] for p in parts) / max(n, 1) for m in ("mse", "psnr_db")},
        }
    return out


def write_run(out: str | Path, vae: torch.nn.Module, stats: dict, metrics: dict) -> None:
    with atomic_dir(out) as tmp:
        vae.save_pretrained(tmp, safe_serialization=True)
        atomic_write_json(tmp / "stats.json", stats)
        atomic_write_json(tmp / "metrics.json", metrics)


def _versions() -> dict:
    import diffusers

    return {"torch": torch.__version__, "diffusers": diffusers.__version__, "python": platform.python_version()}
