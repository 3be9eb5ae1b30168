"""How many directions a frozen encoder's features use: RankMe [Garrido et al., ICML 2023], the
exponential of the entropy of the normalised singular values of the pooled features of a fixed set of
validation samples. A joint-embedding objective with an EMA target can shrink the features onto a few
directions (dimensional collapse) without any loss going wrong; a probe then has less to read than
from a random-init encoder, whose features are spread. The findings page shows it per variant beside
the probe accuracy, so "pretraining does not beat random init" comes with a measured reason or
without one.

Inputs are `nextvid report features` files (features.npz: mean-pooled over tokens, segments and
views; the same class-balanced samples for every encoder of a benchmark) at nextvid.layout's paths.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from nextvid.layout import parse_features_file

EPS = 1e-7  # the paper's epsilon on each normalised singular value


def rankme(features: np.ndarray) -> float:
    """RankMe of an (n, D) matrix, in [1, min(n, D)]: exp(-sum p_k log p_k), p_k = s_k / |s|_1 + eps.
    Not centred (as defined in the paper)."""
    if features.ndim != 2 or min(features.shape) == 0:
        raise ValueError(f"RankMe needs an (n, D) matrix with n, D >= 1, got shape {features.shape}")
    s = np.linalg.svd(features.astype(np.float64), compute_uv=False)
    if not s.any():
        raise ValueError("RankMe of an all-zero matrix is undefined")
    p = s / s.sum() + EPS
    return float(math.exp(-(p * np.log(p)).sum()))


def mean_share(features: np.ndarray) -> float:
    """The fraction of the features' energy (sum of squares) in their mean over samples: a
    sample-independent vector that uncentred RankMe counts as one strong direction."""
    x = features.astype(np.float64)
    total = float((x**2).sum())
    return 0.0 if total == 0 else float(len(x) * (x.mean(0) ** 2).sum() / total)


def rank_rows(paths: Iterable[str | Path]) -> pd.DataFrame:
    """One row per features file: config, variant, seed, step, benchmark (from the path), samples,
    dim, rankme, rankme_centred (of the features minus their mean over samples: the directions in
    which samples differ) and mean_share. Every file of one benchmark must hold the same samples
    (else the ranks do not compare)."""
    rows, samples = [], {}
    for path in sorted(set(map(str, paths))):
        key = parse_features_file(path)
        with np.load(path) as data:
            features, indices = data["features"], tuple(data["indices"].tolist())
        if samples.setdefault(key.benchmark, indices) != indices:
            raise ValueError(
                f"{path}: holds other samples than the other {key.benchmark} features files (different --max-samples or manifest?)"
            )
        rows.append(
            {
                **key.__dict__,
                "samples": features.shape[0],
                "dim": features.shape[1],
                "rankme": rankme(features),
                "rankme_centred": rankme(features - features.mean(0)),
                "mean_share": mean_share(features),
            }
        )
    columns = [
        "config",
        "variant",
        "seed",
        "step",
        "benchmark",
        "samples",
        "dim",
        "rankme",
        "rankme_centred",
        "mean_share",
    ]
    return pd.DataFrame(rows, columns=columns)
