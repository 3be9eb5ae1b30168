"""Pretraining run directories as the report sees them: which (config, variant, seed) a directory is
(from its path, nextvid.layout), its budget (from its config.yaml) and its loss log (metrics.csv,
columns of nextvid.train.metrics). The tables state the budget; Fig. 6 plots the log."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pandas as pd
import yaml

from nextvid.config import PAPER_STAGES
from nextvid.config_schema import run_end_step

_RUN = re.compile(r"pretrain/(?P<config>[^/]+)/(?P<variant>[^/]+)/seed(?P<seed>\d+)/?$")
LOSSES = ("flow", "align", "regression", "loss")
PAPER_TOTAL_STEPS = sum(s.steps for s in PAPER_STAGES)  # paper Table 8: 132K


class RunError(ValueError):
    """A run directory that cannot be read."""


@dataclass(frozen=True)
class Run:
    path: Path
    config: str
    variant: str
    seed: int
    total_steps: int
    batch_sizes: tuple[int, ...]  # per stage
    done: bool
    stop_at: int = 0  # > 0: the run stopped early at this step of the total_steps schedule
    target: str = "pixels"  # what the flow decoder generated: "pixels" or "vae"
    vae_path: str = ""

    @property
    def schedule(self) -> str:
        """The run's schedule in words: early-stopped, or the paper's four stages rescaled (or not)."""
        if self.stop_at and self.stop_at < self.total_steps:
            return f"early-stopped at step {self.stop_at} of the {self.total_steps}-step schedule"
        if self.total_steps == PAPER_TOTAL_STEPS:
            return f"the paper's {self.total_steps}-step schedule"
        return f"the paper's stages rescaled to {self.total_steps} steps"

    @property
    def steps(self) -> int:
        return run_end_step(self.total_steps, self.stop_at)

    @property
    def label(self) -> str:
        return f"{self.variant} seed {self.seed}"


def read_run(path: str | Path) -> Run:
    """A run directory `.../pretrain/<config>/<variant>/seed<n>` with its config.yaml."""
    path = Path(path)
    m = _RUN.search(path.as_posix())
    if m is None:
        raise RunError(f"{path}: not a pretraining run directory (expected .../pretrain/<config>/<variant>/seed<n>)")
    cfg_file = path / "config.yaml"
    if not cfg_file.is_file():
        raise RunError(f"{path}: no config.yaml (has the run started?)")
    cfg = yaml.safe_load(cfg_file.read_text())
    schedule = cfg["schedule"]
    target = cfg.get("target") or {}
    return Run(
        path,
        m["config"],
        m["variant"],
        int(m["seed"]),
        int(schedule["total_steps"]),
        tuple(int(s["batch_size"]) for s in schedule["stages"]),
        (path / "done.json").is_file(),
        int(schedule.get("stop_at") or 0),
        target.get("kind", "pixels"),
        target.get("vae_path", ""),
    )


def read_losses(run: Run) -> Optional[pd.DataFrame]:
    """The run's metrics.csv (numeric columns as floats, empty cells NaN), or None if it has none."""
    csv = run.path / "metrics.csv"
    if not csv.is_file():
        return None
    df = pd.read_csv(csv)
    if "step" not in df or "stage" not in df:
        raise RunError(f"{csv}: no step/stage columns (not a nextvid metrics.csv)")
    return df.sort_values("step").reset_index(drop=True)


def stage_spans(losses: pd.DataFrame) -> list[tuple[str, float, float]]:
    """(stage, first step, last step) of each stage in the order logged. A row's step counts the steps
    done, so a stage's span starts where the previous one ends."""
    spans: list[tuple[str, float, float]] = []
    start = 0.0
    for stage, group in losses.groupby((losses["stage"] != losses["stage"].shift()).cumsum(), sort=True):
        name, end = group["stage"].iloc[0], float(group["step"].iloc[-1])
        spans.append((name, start, end))
        start = end
    return spans


def budget_line(runs: list[Run]) -> str:
    """One caption line: the pretraining budget, and whether every variant had the same one."""
    if not runs:
        return ""
    budgets = {(r.steps, r.schedule, r.batch_sizes) for r in runs}
    unfinished = sorted(r.label for r in runs if not r.done)
    tail = f"; not finished: {', '.join(unfinished)}" if unfinished else ""
    if len(budgets) == 1:
        steps, schedule, batches = budgets.pop()
        return f"Pretraining budget: {steps} steps ({schedule}), batch {'/'.join(map(str, batches))} per stage, the same for every run{tail}."
    per = sorted(
        {f"{r.variant}: {r.steps} steps ({r.schedule}), batch {'/'.join(map(str, r.batch_sizes))}" for r in runs}
    )
    return f"Pretraining budgets differ between runs: {'; '.join(per)}{tail}."
