"""Fig. 7: t-SNE (scikit-learn) of pooled frozen features, one panel per features.npz (e.g.
NExT-Vid beside the random-init encoder), points coloured by class. Features are standardised per
channel first (t-SNE distances are otherwise dominated by a few large channels); the embedding is
seeded, PCA-initialised, so a rerun draws the same figure."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from nextvid.catalog import FIGURES
from nextvid.io import load_npz as load_features
from nextvid.report.figures import plt, save

FIG7 = FIGURES["fig7"]


def embed(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """(n, D) -> (n, 2); perplexity min(30, (n - 1) / 3) so small sets work."""
    try:
        from sklearn.manifold import TSNE
    except ImportError as err:
        raise ImportError("Fig. 7 needs scikit-learn (pip install 'nextvid[report]')") from err
    x = features.astype(np.float64)
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-8)
    n = x.shape[0]
    if n < 4:
        raise ValueError(f"t-SNE needs at least 4 samples, got {n}")
    return TSNE(n_components=2, perplexity=min(30.0, (n - 1) / 3), init="pca", random_state=seed).fit_transform(x)


def tsne_figure(paths: Sequence[str | Path], out_dir: str | Path, seed: int = 0) -> Path:
    sets = [load_features(p) for p in paths]
    fig, axes = plt.subplots(1, len(sets), figsize=(4.0 * len(sets), 4.0), squeeze=False)
    cmap = plt.get_cmap("tab10" if max(int(s["labels"].max()) for s in sets) < 10 else "tab20")
    for ax, data in zip(axes[0], sets):
        xy = embed(data["features"], seed)
        classes = [str(c) for c in data["classes"]]
        for c in sorted(set(data["labels"].tolist())):
            sel = data["labels"] == c
            ax.scatter(
                xy[sel, 0], xy[sel, 1], s=6, color=cmap(c % cmap.N), label=classes[c] if c < len(classes) else str(c)
            )
        meta = data["meta"]
        ax.set_title(f"{meta['label']}\n{meta['benchmark']}, n={len(data['labels'])}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    handles, labels = axes[0][0].get_legend_handles_labels()
    if len(labels) <= 20:
        fig.legend(
            handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7, frameon=False, markerscale=2
        )
    fig.tight_layout()
    first = sets[0]["meta"]
    caption = (
        f"Fig. 7 (ours): t-SNE of pooled frozen features on the {first['benchmark']} validation split, coloured by class; "
        f"{', '.join(s['meta']['label'] for s in sets)}. Features: the tokens the attentive probe reads ({first['source'].get('encoder')} "
        f"encoder), mean-pooled over tokens, segments and views, at most {first['max_samples']} class-balanced samples, standardised "
        f"per channel; scikit-learn TSNE, PCA init, perplexity min(30, (n-1)/3), seed {seed}."
    )
    return save(fig, out_dir, FIG7, caption)
