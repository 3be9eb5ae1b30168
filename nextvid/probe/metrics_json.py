"""metrics.json: one file per (checkpoint, benchmark), written atomically, carrying its whole protocol
so that every number in a table can be traced to what produced it (anchors §7.2: reproducing probe
numbers fails on exactly the facts V-JEPA's logs leave out). Accuracies are percentages."""

from __future__ import annotations

import datetime
import platform
from pathlib import Path
from typing import Any, Optional

import torch

from nextvid.io import atomic_write_json
from nextvid.probe.fit import TrainedGrid
from nextvid.probe.protocol import ProbeProtocol

SCHEMA_VERSION = 1
# what names the probed checkpoint: clips_seen is the budget in clips (steps x batch, stage by stage)
CHECKPOINT_KEYS = ("path", "step", "clips_seen", "sha256")
METRICS = "metrics.json"


def build_metrics(
    protocol: ProbeProtocol,
    encoder: dict[str, Any],
    data: dict[str, Any],
    features: dict[str, Any],
    trained: TrainedGrid,
    val: dict[str, list[float]],
    heldout: Optional[dict[str, list[float]]],
    rules: dict[str, dict],
    timing: dict[str, float],
    skipped: Optional[dict[str, dict]] = None,
) -> dict[str, Any]:
    import nextvid
    from nextvid.provenance import git_commit

    n = len(trained.pairs)
    heads = []
    for g, (lr, wd) in enumerate(trained.pairs):
        row = {"head": g, "lr": lr, "weight_decay": wd, "train_loss": trained.final_loss[g]}
        row.update({f"val_{k}": v[g] for k, v in val.items()})
        if heldout is not None:
            row.update(
                heldout_top1=heldout["top1"][n + g],
                heldout_nll=heldout["nll"][n + g],
                heldout_train_loss=trained.final_loss[n + g],
            )
        heads.append(row)
    return {
        "schema": SCHEMA_VERSION,
        "benchmark": protocol.benchmark,
        "mode": "frozen",  # nextvid.probe.finetune overwrites it: "finetune" (the supervised ceiling)
        "checkpoint": {k: encoder[k] for k in CHECKPOINT_KEYS if k in encoder},
        "encoder": {k: v for k, v in encoder.items() if k not in CHECKPOINT_KEYS},
        "data": data,
        "clips": {
            "frames_segments_views": protocol.clip_spec,
            "frames": protocol.frames,
            "frame_step": protocol.frame_step,
            "segments": protocol.segments,
            "views": protocol.views,
            "resolution": protocol.resolution,
            "image": protocol.image,
            "train_views": 1,
            "train_augmentation": _augmentation(protocol),
            "train_view": "one random resized crop per segment" if protocol.augment else _views(protocol, 1),
            "eval_views": _views(protocol, protocol.views),
            "segments_in_a_view": "encoded separately, tokens concatenated",
            "view_aggregation": "softmax probabilities averaged over views, per sample",
        },
        "probe": {
            "depth": 1,
            "queries": 1,
            "heads": protocol.heads,
            "mlp_ratio": protocol.mlp_ratio,
            "width": features["dim"],
            "grid": {"lr": list(protocol.grid.lr), "weight_decay": list(protocol.grid.weight_decay)},
            "epochs": protocol.epochs,
            "batch_size": protocol.batch_size,
            "optimizer": f"AdamW betas={list(protocol.betas)}, one lr/wd per head, no wd on biases/norms/query, no grad clipping",
            "lr_schedule": protocol.lr_schedule,
            "warmup_epochs": protocol.warmup_epochs,
            "holdout_fraction": protocol.holdout_fraction,
            "seed": protocol.seed,
        },
        "features": features,
        "skipped": skipped or {},
        "results": rules,
        "heads": heads,
        "protocol": protocol.to_dict(),
        "provenance": {
            "git_commit": git_commit(),
            "nextvid": nextvid.__version__,
            "torch": str(torch.__version__),
            "python": platform.python_version(),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        },
        "timing_s": timing,
    }


def _views(p: ProbeProtocol, views: int) -> str:
    from nextvid.probe.clips import eval_short_side

    what = "the centre crop" if views == 1 else f"{views} crops spread along the long side"
    when = (
        "a still image repeated over the clip's frames"
        if p.image
        else f"{p.segments} segment(s) centred on equal parts of the video (short videos padded with their last frame)"
    )
    return f"{when}; short side resized to {eval_short_side(p.resolution, views)}, then {what} of {p.resolution}x{p.resolution}"


def _augmentation(p: ProbeProtocol) -> str:
    if not p.augment:
        return "none (deterministic views: features cached)"
    flip = ", horizontal flip" if p.hflip else ""
    return f"random resized crop scale {list(p.crop_scale)} aspect {list(p.crop_aspect)}{flip} (features recomputed every epoch)"


def write_metrics(out_dir: str | Path, metrics: dict[str, Any]) -> Path:
    path = Path(out_dir) / METRICS
    atomic_write_json(path, metrics)
    return path
