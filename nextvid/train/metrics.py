"""One metrics file per run: a CSV with a fixed schema, written by rank 0 only, its header once across
restarts. On resume, rows past the checkpoint's step are dropped (they will be recomputed), so the
file always describes exactly one uninterrupted run. Plus the collapse diagnostics it records, and
the same scalars as TensorBoard events (`train.tensorboard`)."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import torch

from nextvid.io import atomic_write_text

COLUMNS = (
    "step",
    "stage",
    "lr",
    "decoder_lr",
    "tau_draws",
    "frames",
    "batch_size",
    "loss",
    "flow",
    "align",
    "regression",
    "feature_std",
    "effective_rank",
    "grad_norm",
    "clips_per_s",
    "skipped",
    "elapsed_s",
)


class MetricsLog:
    def __init__(self, path: str | Path, resume_step: int = 0):
        self.path = Path(path)
        self._truncate(resume_step)
        new = not self.path.exists()
        self._fh = open(self.path, "a", newline="")
        self._writer = csv.DictWriter(self._fh, fieldnames=COLUMNS, extrasaction="raise")
        if new:
            self._writer.writeheader()
            self._fh.flush()

    def write(self, row: dict) -> None:
        self._writer.writerow({k: _fmt(row.get(k)) for k in COLUMNS})
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()

    def _truncate(self, resume_step: int) -> None:
        """Keep the header and the rows of steps < resume_step."""
        if not self.path.exists():
            return
        with open(self.path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        kept = [r for r in rows if r.get("step") and int(r["step"]) < resume_step]
        if len(kept) == len(rows):
            return
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(kept)
        atomic_write_text(self.path, buf.getvalue())


class TensorBoardLog:
    """The metrics.csv scalars as TensorBoard events in `<run>/tensorboard/`, tagged by group
    (loss/, schedule/, collapse/, speed/, data/). On resume, events at or past the resumed step left
    by the interrupted process are purged (TensorBoard's purge_step), like the CSV rows."""

    GROUPS = {
        "loss": ("loss", "flow", "align", "regression"),
        "schedule": ("lr", "decoder_lr", "tau_draws", "frames", "batch_size", "grad_norm"),
        "collapse": ("feature_std", "effective_rank"),
        "speed": ("clips_per_s", "elapsed_s"),
        "data": ("skipped",),
    }
    TAGS = {column: f"{group}/{column}" for group, columns in GROUPS.items() for column in columns}

    def __init__(self, log_dir: str | Path, resume_step: int = 0):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            raise ImportError(
                "train.tensorboard needs the tensorboard package: pip install 'nextvid[tensorboard]'"
            ) from err
        self._writer = SummaryWriter(str(log_dir), purge_step=resume_step or None)

    def write(self, row: dict) -> None:
        step = int(row["step"])
        for column, tag in self.TAGS.items():
            value = row.get(column)
            if isinstance(value, (int, float)) and math.isfinite(value):
                self._writer.add_scalar(tag, value, step)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


@torch.no_grad()
def collapse_diagnostics(features: torch.Tensor, max_tokens: int = 2048) -> dict[str, float]:
    """Feature std across tokens (averaged over channels) and the effective rank
    exp(entropy of normalised singular values) of the centred token-feature matrix: both fall
    towards 0 / 1 when the representation collapses."""
    x = features.reshape(-1, features.shape[-1]).float()
    if x.shape[0] > max_tokens:
        x = x[torch.linspace(0, x.shape[0] - 1, max_tokens).long()]
    x = x - x.mean(dim=0, keepdim=True)
    std = x.std(dim=0).mean().item()
    s = torch.linalg.svdvals(x)
    p = s / s.sum().clamp_min(1e-12)
    entropy = -(p * p.clamp_min(1e-12).log()).sum().item()
    return {"feature_std": std, "effective_rank": math.exp(entropy)}


def read_metrics(path: str | Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))
