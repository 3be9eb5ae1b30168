"""Bad input: skipped, logged with its path and reason, counted, and never silently replaced.

A sample that cannot be read raises `BadInputError` inside the reader. Datasets catch it and return
a *marker* (`bad_marker`) instead of a sample; `collate` drops markers from the batch and carries
them in `batch["skipped"]`, so a skip that happens inside a DataLoader worker process still reaches
the main process, where `SkipLog.consume(batch)` logs and counts it and stops the run with
`TooManyBadInputs` when more than `max_fraction` of the samples are bad. `nextvid data check` and
shard extraction probe every file up front and write the same `SkipLog` as JSON.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

from nextvid.io import atomic_write_json

log = logging.getLogger(__name__)

# Every reason a sample can be skipped for, in the order reports list them.
REASONS = (
    "missing_file",  # the path does not exist
    "empty_file",  # zero bytes
    "unreadable",  # the container cannot be opened: garbage, or truncated before its index (mp4 moov)
    "no_video_stream",  # opens, but holds no video stream (e.g. audio only)
    "unsupported_codec",  # a video stream no available decoder can decode
    "no_frames",  # opens, but not one frame decodes
    "decode_error",  # frames that the index promises do not decode (truncated or corrupt data)
    "unreadable_image",  # an image file that does not decode
    "label_out_of_range",  # a label that is not in the manifest's label map
)

MARKER_KEY = "bad_input"


class BadInputError(Exception):
    """One sample cannot be used; `reason` is one of REASONS."""

    def __init__(self, path: str | Path, reason: str, detail: str = ""):
        if reason not in REASONS:
            raise ValueError(f"unknown bad-input reason {reason!r}; expected one of {REASONS}")
        super().__init__(f"{path}: {reason}" + (f" ({detail})" if detail else ""))
        self.path, self.reason, self.detail = str(path), reason, detail


class TooManyBadInputs(RuntimeError):
    """More than the allowed fraction of samples are bad: the data, not the run, needs fixing."""


@dataclass(frozen=True)
class BadRecord:
    path: str
    reason: str
    detail: str = ""
    index: Optional[int] = None  # the sample's index in its dataset (or manifest line), where known

    @classmethod
    def from_error(cls, err: BadInputError, index: Optional[int] = None) -> BadRecord:
        return cls(err.path, err.reason, err.detail, index)


def bad_marker(index: int, err: BadInputError) -> dict:
    """What a dataset returns in place of a sample it cannot read; `collate` drops it."""
    return {MARKER_KEY: asdict(BadRecord.from_error(err, index))}


def is_marker(item: Any) -> bool:
    return isinstance(item, dict) and MARKER_KEY in item


def collate(batch: list) -> dict:
    """`default_collate` of the good samples, plus `skipped`: the markers' records (plain dicts).

    `size` is the number of good samples; a batch of only bad samples has no `video` key.
    """
    from torch.utils.data import default_collate

    good = [item for item in batch if not is_marker(item)]
    out = default_collate(good) if good else {}
    out["skipped"] = [item[MARKER_KEY] for item in batch if is_marker(item)]
    out["size"] = len(good)
    return out


class SkipLog:
    """Counts samples seen and samples skipped (by reason); JSON-serialisable; enforces a bad fraction.

    `total`: the dataset size when it is finite; the limit is then checked against it (bad >
    max_fraction * total can only grow). Without it (an endless pretraining stream) the limit is
    checked against the samples seen so far, once at least `min_seen` were seen.
    """

    def __init__(self, max_fraction: float = 0.05, total: Optional[int] = None, min_seen: int = 200, name: str = ""):
        if not 0.0 <= max_fraction <= 1.0:
            raise ValueError(f"max_fraction must be in [0, 1], got {max_fraction}")
        self.max_fraction, self.total, self.min_seen, self.name = max_fraction, total, min_seen, name
        self.seen = 0
        self.records: list[BadRecord] = []

    @property
    def bad(self) -> int:
        return len(self.records)

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(r.reason for r in self.records)
        return {reason: c[reason] for reason in REASONS if c[reason]}

    def add(self, record: BadRecord, *, counted: bool = True) -> None:
        """Log and count one skipped sample. `counted=False`: it was already counted in `seen`."""
        log.warning("skipped %s: %s%s", record.path, record.reason, f" ({record.detail})" if record.detail else "")
        self.records.append(record)
        if counted:
            self.seen += 1

    def add_good(self, n: int = 1) -> None:
        self.seen += n

    def consume(self, batch: dict) -> Optional[dict]:
        """Count a `collate` batch; return it, or None when every sample in it was bad. Raises
        TooManyBadInputs when the limit is passed."""
        self.seen += batch["size"]
        for rec in batch["skipped"]:
            self.add(BadRecord(**rec))
        self.check()
        return batch if batch["size"] else None

    def check(self) -> None:
        if self.total is not None:
            over = self.bad > self.max_fraction * self.total
            denominator = self.total
        else:
            over = self.seen >= self.min_seen and self.bad > self.max_fraction * self.seen
            denominator = self.seen
        if over:
            raise TooManyBadInputs(
                f"{self.name + ': ' if self.name else ''}{self.bad} of {denominator} samples are bad "
                f"(more than {self.max_fraction:.1%}): {self.counts}; first: {self.records[0].path} "
                f"({self.records[0].reason}). Run `nextvid data check` on the manifest for the full list, "
                "fix or drop the files, or raise the allowed fraction."
            )

    def merge(self, other: SkipLog) -> None:
        self.seen += other.seen
        self.records.extend(other.records)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "seen": self.seen,
            "total": self.total,
            "bad": self.bad,
            "max_fraction": self.max_fraction,
            "counts": self.counts,
            "records": [asdict(r) for r in self.records],
        }

    @classmethod
    def from_dict(cls, d: dict) -> SkipLog:
        out = cls(d["max_fraction"], d["total"], name=d["name"])
        out.seen = d["seen"]
        out.records = [BadRecord(**r) for r in d["records"]]
        return out

    def write(self, path: str | Path) -> None:
        atomic_write_json(path, self.to_dict())

    def summary(self) -> str:
        return f"{self.seen - self.bad} good, {self.bad} skipped" + (f" {self.counts}" if self.bad else "")
