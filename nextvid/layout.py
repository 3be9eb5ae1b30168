"""Where every result lives, in one place: the workflow's rules build their paths with these
functions and the report parses them back, so a table cell traces to its metrics.json by path alone.

    results/data/<dataset>/...                                    extracted data (manifests, files)
    results/vae/<config>/                                         the workflow-trained VAE (diffusers dir, stats.json, metrics.json)
    results/pretrain/<config>/<variant>/seed<seed>/               run dir: checkpoints/, metrics.csv, done.json
    results/probe/<config>/<variant>/seed<seed>/step<step>/<benchmark>/metrics.json
    results/generate/<config>/<variant>/seed<seed>/step<step>/samples.npz
    results/features/<config>/<variant>/seed<seed>/step<step>/<benchmark>.npz   pooled val features (t-SNE, RankMe)
    results/tables/<config>/<table>.{md,tex,csv}    results/figures/<config>/<figure>.png

Reference rows (no pretraining) use the variants `random` (a random-init encoder of the preset),
`pixels` (no encoder) and `ceiling` (the supervised ceiling, nextvid.catalog) at step 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from nextvid.catalog import random_preset

RESULTS = Path("results")
_FEATURES = re.compile(
    r"features/(?P<config>[^/]+)/(?P<variant>[^/]+)/seed(?P<seed>\d+)/step(?P<step>\d+)/(?P<benchmark>[^/]+)\.npz$"
)
_PROBE = re.compile(
    r"probe/(?P<config>[^/]+)/(?P<variant>[^/]+)/seed(?P<seed>\d+)/step(?P<step>\d+)/(?P<benchmark>[^/]+)/metrics\.json$"
)


def step_name(step: int) -> str:
    """A kept checkpoint's file name (nextvid.train.checkpoint writes it)."""
    return f"step_{step:07d}.pt"


def data_dir(dataset: str, root: Path = RESULTS) -> Path:
    return root / "data" / dataset


def vae_dir(config: str, root: Path = RESULTS) -> Path:
    """The VAE an experiment's `vae`-target runs read (nextvid.vae.train writes it)."""
    return root / "vae" / config


def pretrain_dir(config: str, variant: str, seed: int, root: Path = RESULTS) -> Path:
    return root / "pretrain" / config / variant / f"seed{seed}"


def checkpoint_path(config: str, variant: str, seed: int, step: int, root: Path = RESULTS) -> Path:
    return pretrain_dir(config, variant, seed, root) / "checkpoints" / step_name(step)


def probe_dir(config: str, variant: str, seed: int, step: int, benchmark: str, root: Path = RESULTS) -> Path:
    return root / "probe" / config / variant / f"seed{seed}" / f"step{step}" / benchmark


def probe_metrics(config: str, variant: str, seed: int, step: int, benchmark: str, root: Path = RESULTS) -> Path:
    return probe_dir(config, variant, seed, step, benchmark, root) / "metrics.json"


def generate_dir(config: str, variant: str, seed: int, step: int, root: Path = RESULTS) -> Path:
    return root / "generate" / config / variant / f"seed{seed}" / f"step{step}"


def features_file(config: str, variant: str, seed: int, step: int, benchmark: str, root: Path = RESULTS) -> Path:
    return root / "features" / config / variant / f"seed{seed}" / f"step{step}" / f"{benchmark}.npz"


def tables_dir(config: str, root: Path = RESULTS) -> Path:
    return root / "tables" / config


def figures_dir(config: str, root: Path = RESULTS) -> Path:
    return root / "figures" / config


def figure_file(config: str, stem: str, suffix: str = ".png", root: Path = RESULTS) -> Path:
    """One figure's file (or its caption, `suffix=".caption.rst"`): the workflow's rule and the plan
    both name it here."""
    return figures_dir(config, root) / f"{stem}{suffix}"


@dataclass(frozen=True)
class ProbeKey:
    config: str
    variant: str
    seed: int
    step: int
    benchmark: str


def parse_probe_metrics(path: str | Path) -> ProbeKey:
    """The (config, variant, seed, step, benchmark) a probe metrics.json belongs to, from its path."""
    m = _PROBE.search(Path(path).as_posix())
    if m is None:
        raise ValueError(
            f"{path}: not a probe result path (expected .../probe/<config>/<variant>/seed<n>/step<n>/<benchmark>/metrics.json)"
        )
    return ProbeKey(m["config"], m["variant"], int(m["seed"]), int(m["step"]), m["benchmark"])


def parse_features_file(path: str | Path) -> ProbeKey:
    """The (config, variant, seed, step, benchmark) a features.npz belongs to, from its path."""
    m = _FEATURES.search(Path(path).as_posix())
    if m is None:
        raise ValueError(
            f"{path}: not a features path (expected .../features/<config>/<variant>/seed<n>/step<n>/<benchmark>.npz)"
        )
    return ProbeKey(m["config"], m["variant"], int(m["seed"]), int(m["step"]), m["benchmark"])


def checkpoint_label(checkpoint: str, encoder: str = "reference") -> str:
    """'nextvid seed 0 step 600' from .../pretrain/<config>/<variant>/seed<n>/checkpoints/step_XXXXXXX.pt."""
    if encoder == "pixels":
        return "pixels"
    if random_preset(checkpoint) is not None:
        return f"random ({random_preset(checkpoint)})"
    m = re.search(
        r"pretrain/[^/]+/(?P<variant>[^/]+)/seed(?P<seed>\d+)/checkpoints/step_(?P<step>\d+)\.pt$", checkpoint
    )
    return f"{m['variant']} seed {m['seed']} step {int(m['step'])}" if m else checkpoint
