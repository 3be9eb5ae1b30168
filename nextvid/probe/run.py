"""One probe run: features (cached where the views are deterministic), the head grid, exact
evaluation, metrics.json. The CLI builds the clip sets (nextvid.probe.clips: the data layer's
EvalClips over the manifests) and the token source; tests and the bench call `run_probe` directly
with their own.

Bad samples are skipped and counted per split (train, held-out, val) in metrics.json (`skipped`,
`data.skipped`); past the protocol's `max_bad_fraction` in any split the run stops with
TooManyBadInputs. Every good validation sample is predicted exactly once."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

from nextvid.config import ConfigError
from nextvid.probe import fit, metrics_json
from nextvid.probe.clips import ProbeData
from nextvid.probe.encoders import TokenSource
from nextvid.probe.features import CachedTrainFeatures, ClipSet, LiveTrainFeatures, build_store, feature_key
from nextvid.probe.heads import ProbeGrid
from nextvid.probe.protocol import ProbeProtocol
from nextvid.train import precision as precisions

log = logging.getLogger(__name__)


class Rows:
    """A clip set restricted to some positions (the held-out part); items keep the underlying
    set's "index"."""

    def __init__(self, clips: ClipSet, rows: Sequence[int]):
        self.clips, self.rows = clips, list(rows)
        self.segments, self.views = clips.segments, clips.views
        self.labels = [clips.labels[r] for r in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.clips[self.rows[i]]


def run_probe(
    source: TokenSource,
    protocol: ProbeProtocol,
    data: ProbeData,
    out_dir: str | Path,
    device: str | torch.device = "cpu",
    chunk: int = 1,
    workers: int = 0,
    cache_train: Optional[bool] = None,
) -> dict[str, Any]:
    """Probe one token source on one benchmark; returns (and writes) the metrics. `cache_train`
    (default: when the protocol does not augment) forces recomputing the training features every
    epoch when False, for the cache-vs-recompute check. `chunk`: samples per encoder forward."""
    out, device = Path(out_dir), torch.device(device)
    cache_train = not protocol.augment if cache_train is None else cache_train
    if cache_train and protocol.augment:
        raise ConfigError("augment: training views are augmented, so their features cannot be cached")
    train0 = data.train_clips(0)
    check_clips(train0, protocol, views=1, name="training")
    check_clips(data.val_clips, protocol, views=protocol.views, name="validation")
    timing: dict[str, float] = {}
    resolved = precisions.resolve(protocol.precision, device, "the protocol's precision")
    bf16 = resolved == "bf16"
    precision = "bf16 autocast" if bf16 else "fp32"

    t = time.perf_counter()
    _, held = fit.holdout_split(train0.labels, protocol.holdout_fraction, protocol.seed)
    val_store, train_features, heldout_store, heldout_rows, heldout_how = _features(
        source, protocol, data, train0, held, out, device, chunk, workers, cache_train, bf16
    )
    timing["cached_features"] = time.perf_counter() - t

    t = time.perf_counter()
    trained = fit.train_grid(train_features, train0.labels, held, protocol, source.dim, data.num_classes, device, bf16)
    timing["train_heads"] = time.perf_counter() - t  # includes recomputed features when not cached

    t = time.perf_counter()
    val_probs = fit.predict(trained.grid, val_store, range(len(val_store)), protocol.batch_size, device, bf16)
    val = fit.scores(val_probs[: len(trained.pairs)], val_store.labels)
    heldout = None
    if heldout_store is not None and heldout_rows:
        probs = fit.predict(trained.grid, heldout_store, heldout_rows, protocol.batch_size, device, bf16)
        heldout = fit.scores(probs, heldout_store.labels[heldout_rows])
    rules = fit.select(trained, val, heldout)
    timing["evaluate"] = time.perf_counter() - t

    features = {
        "dtype": "float16",
        "dim": source.dim,
        "location": str(out / "features"),
        "val": "cached (computed once)",
        "train": "cached (computed once, reused by every epoch and head)" if cache_train else "recomputed every epoch",
        "heldout": heldout_how,
        "samples_per_encoder_forward": chunk,
        "device": str(device),
        "encoder_precision": precision,
        "heads_precision": precision,
        "precision": precisions.describe(protocol.precision, resolved, device),
    }
    skips = {"train": train_features.skips, "val": val_store.skips}
    if heldout_store is not None and heldout_store is not getattr(train_features, "store", None):
        skips["heldout"] = heldout_store.skips
    skipped = {split: skip_log.to_dict() for split, skip_log in skips.items()}
    if not cache_train:
        skipped["train"]["bad_per_epoch"] = train_features.bad_per_epoch
    record = {
        **data.record,
        "num_train": train_features.skips.seen - train_features.skips.bad,
        "num_heldout": len(heldout_rows),
        "num_val": len(val_store),
        "num_classes": data.num_classes,
        "skipped": {split: skip_log.bad for split, skip_log in skips.items()},
        "max_bad_fraction": protocol.max_bad_fraction,
    }
    metrics = metrics_json.build_metrics(
        protocol, source.record, record, features, trained, val, heldout, rules, timing, skipped
    )
    metrics_json.write_metrics(out, metrics)
    log.info("%s: %s", protocol.benchmark, {name: round(r["top1"], 2) for name, r in rules.items()})
    return metrics


def _features(source, protocol, data, train0, held, out, device, chunk, workers, cache_train, bf16):
    """The val store, the training features (cached or live) and the held-out store and rows (the
    held-out samples that could be read)."""
    tokens_of = source.module.to(device)
    # features depend on the precision they were computed in, not on the one asked for (`auto`)
    in_key = {k: v for k, v in protocol.to_dict().items() if k not in _NOT_IN_FEATURES}
    key = dict(source=source.record, protocol={**in_key, "precision": "bf16" if bf16 else "fp32"}, data=data.record)

    def store(name, clips, **extra):
        return build_store(
            out / "features" / name,
            clips,
            tokens_of,
            feature_key(split=name, **extra, **key),
            device,
            chunk,
            workers,
            protocol.max_bad_fraction,
            name,
            bf16,
        )

    val_store = store("val", data.val_clips)
    if cache_train:
        train_store = store("train", train0)
        if not set(train_store.indices.tolist()) <= set(range(len(train0))):
            raise ValueError('the training clip set\'s items must carry their position as "index"')
        # normalised once, in the dtype the bf16 matmuls would cast them to anyway (same numbers)
        train_features = CachedTrainFeatures(
            train_store, ProbeGrid.normalize, torch.bfloat16 if bf16 else torch.float32
        )
    else:
        train_features = LiveTrainFeatures(
            data.train_clips, tokens_of, device, chunk, workers, protocol.max_bad_fraction, bf16
        )
    if not held:
        return val_store, train_features, None, [], None
    same_views = not protocol.augment and protocol.views == 1  # the training views are the evaluation views
    if same_views and cache_train:
        rows, _ = train_store.rows_of(held)
        return val_store, train_features, train_store, rows, "the cached training features (same views)"
    clips = train0 if same_views else data.heldout_clips
    if clips is None:
        raise ValueError(
            "the protocol's training views differ from its evaluation views: ProbeData.heldout_clips is required"
        )
    heldout_store = store("heldout", Rows(clips, held), rows=list(held))
    return (
        val_store,
        train_features,
        heldout_store,
        list(range(len(heldout_store))),
        "cached (computed once, evaluation views)",
    )


# protocol fields that change only the heads (or the skip limit, checked again on reuse), not the
# cached features, which stay valid (a random-init encoder's seed is in the source's record; augmented
# training features, which the seed also draws, are never cached)
_NOT_IN_FEATURES = {
    "seed",
    "heads",
    "mlp_ratio",
    "epochs",
    "batch_size",
    "grid",
    "lr_schedule",
    "warmup_epochs",
    "betas",
    "holdout_fraction",
    "benchmark",
    "max_bad_fraction",
}


def check_clips(clips: ClipSet, protocol: ProbeProtocol, views: int, name: str) -> None:
    if clips.segments != protocol.segments or clips.views != views:
        raise ValueError(
            f"the {name} clip set gives {clips.segments} segments x {clips.views} views, the protocol wants {protocol.segments} x {views}"
        )
    if len(clips.labels) != len(clips):
        raise ValueError(f"the {name} clip set has {len(clips)} samples but {len(clips.labels)} labels")
