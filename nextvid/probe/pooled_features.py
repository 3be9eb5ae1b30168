"""Pooled frozen features of a validation split for the t-SNE of Fig. 7: exactly the tokens the probe
reads (nextvid.probe.encoders: the EMA reference encoder by default, the benchmark's layers and
attention mask) on the probe's deterministic validation views, mean-pooled over tokens, segments
and views. A deterministic, class-balanced subset of at most `max_samples` samples
(nextvid.data.datasets.pick_samples) keeps t-SNE cheap.

features.npz: `features` (n, D) float32, `labels` (n,), `indices` (n,) manifest positions,
`classes` (class names by id), `meta` (JSON: the encoder's record, protocol, manifest, skipped).
This module encodes clips; nextvid.report.tsne and nextvid.report.rank only read features.npz.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nextvid.data.datasets import pick_samples

log = logging.getLogger(__name__)


def extract_features(
    checkpoint: str,
    benchmark: str,
    val_manifest: str,
    encoder: str = "reference",
    overrides: list[str] = (),
    max_samples: int = 500,
    device: str = "cpu",
    chunk: int = 4,
    backend: str = "auto",
) -> dict[str, Any]:
    from nextvid.data.badinput import is_marker
    from nextvid.data.datasets import ManifestSource
    from nextvid.data.manifest import read_manifest
    from nextvid.probe.clips import eval_clips
    from nextvid.probe.encoders import load_token_source
    from nextvid.probe.features import encode_views
    from nextvid.probe.protocol import load_protocol
    from nextvid.train.precision import resolve as resolve_precision

    protocol = load_protocol(benchmark, None, [*overrides, f"val_manifest={json.dumps(val_manifest)}"])
    source = load_token_source(checkpoint, encoder, protocol)
    manifest = read_manifest(val_manifest)
    clips = eval_clips(protocol, ManifestSource(manifest, backend), protocol.views)
    positions = pick_samples(clips.labels, max_samples)
    module = source.module.to(device)
    bf16 = resolve_precision(protocol.precision, torch.device(device), "the protocol's precision") == "bf16"
    feats, labels, indices, skipped = [], [], [], []
    for start in range(0, len(positions), chunk):
        items = [clips[i] for i in positions[start : start + chunk]]
        skipped += [item for item in items if is_marker(item)]
        good = [item for item in items if not is_marker(item)]
        if not good:
            continue
        video = torch.stack([item["video"] for item in good]).to(device)
        tokens = encode_views(module, video, clips.segments, clips.views, chunk, bf16)  # (n, V, S*N, D)
        feats.append(tokens.float().mean(dim=(1, 2)).cpu().numpy())
        labels += [int(item["label"]) for item in good]
        indices += [int(item["index"]) for item in good]
    if not feats:
        raise ValueError(f"{val_manifest}: none of the {len(positions)} chosen samples could be read")
    if skipped:
        log.warning("%d of %d samples could not be read and are left out", len(skipped), len(positions))
    classes = sorted(manifest.label_map, key=manifest.label_map.get)
    meta = {
        "source": source.record,
        "benchmark": protocol.benchmark,
        "clip_spec": protocol.clip_spec,
        "frame_step": protocol.frame_step,
        "resolution": protocol.resolution,
        "val_manifest": str(val_manifest),
        "val_sha256": manifest.sha256,
        "pooling": "mean over tokens, segments and views",
        "precision": "bf16" if bf16 else "fp32",
        "max_samples": max_samples,
        "chosen": len(positions),
        "skipped": [next(iter(m.values())) for m in skipped],
    }
    return {
        "features": np.concatenate(feats).astype(np.float32),
        "labels": np.array(labels, dtype=np.int64),
        "indices": np.array(indices, dtype=np.int64),
        "classes": np.array(classes),
        "meta": meta,
    }


def save_features(path: str | Path, data: dict[str, Any], label: str) -> Path:
    from nextvid.io import save_npz

    return save_npz(path, {k: v for k, v in data.items() if k != "meta"}, {**data["meta"], "label": label})
