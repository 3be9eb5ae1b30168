"""Frame grids for Fig. 5: per sample, rows of frames (ground truth, the masked context the encoder
saw, the masked generation, the autoregressive rollout), generated frames framed in red. The grid is
composed as one array and drawn with a single imshow, so a figure of many frames stays cheap."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from nextvid.catalog import FIGURES

GAP = 2
RED = np.array([220, 30, 30], dtype=np.uint8)
MASK_GREY = 127
FIG5 = FIGURES["fig5"]
PIXELS_PER_INCH = 90


def masked_input(frames: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) frames with the masked patches greyed: `visible` (H', W') bool, the same spatial
    mask in every token-frame (tubes)."""
    T, H, W, _ = frames.shape
    ph, pw = H // visible.shape[0], W // visible.shape[1]
    keep = np.repeat(np.repeat(visible, ph, axis=0), pw, axis=1)[None, :, :, None]
    return np.where(keep, frames, np.uint8(MASK_GREY)).astype(np.uint8)


def compose(rows: Sequence[np.ndarray], generated: Sequence[np.ndarray]) -> np.ndarray:
    """rows: each (T, H, W, 3) uint8; generated: each (T,) bool. One (R*(H+GAP), T*(W+GAP), 3) image,
    white gaps, a red border on generated frames."""
    T, H, W, _ = rows[0].shape
    out = np.full((len(rows) * (H + GAP) - GAP, T * (W + GAP) - GAP, 3), 255, dtype=np.uint8)
    for r, (frames, gen) in enumerate(zip(rows, generated)):
        for t in range(T):
            cell = frames[t].copy()
            if gen[t]:
                cell[:1], cell[-1:], cell[:, :1], cell[:, -1:] = RED, RED, RED, RED
            y, x = r * (H + GAP), t * (W + GAP)
            out[y : y + H, x : x + W] = cell
    return out


def sample_rows(samples: dict, i: int, view: int = 0) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """The four rows of sample i of a samples.npz (nextvid.generation)."""
    frames, T = samples["frames"][i], samples["frames"].shape[1]
    t = np.arange(T)
    masked_from, context = int(samples["masked_from"]), int(samples["rollout_from"])
    rows = [
        frames,
        masked_input(frames, samples["visible"][i, view]),
        samples["masked"][i, view],
        samples["rollout"][i],
    ]
    generated = [np.zeros(T, bool), np.zeros(T, bool), t >= masked_from, t >= context]
    labels = [
        "ground truth",
        f"masked input (view {view})",
        "masked generation",
        f"AR rollout ({context} context frames)",
    ]
    return rows, generated, labels


def draw(blocks: Sequence[tuple[str, list, list, list]]):
    """blocks: (title, rows, generated, row labels) per sample, stacked vertically -> a figure."""
    from nextvid.report.figures import plt

    images = [compose(rows, gen) for _, rows, gen, _ in blocks]
    heights = [im.shape[0] for im in images]
    width = max(im.shape[1] for im in images)
    inch = 1 / PIXELS_PER_INCH  # images at a fixed scale; room for the row labels and titles
    fig, axes = plt.subplots(
        len(images),
        1,
        figsize=(width * inch + 1.8, sum(heights) * inch + 0.45 * len(images)),
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    for ax, image, (title, rows, _, labels) in zip(axes[:, 0], images, blocks):
        T, H, W = rows[0].shape[:3]
        ax.imshow(image, interpolation="nearest")
        ax.set_yticks([r * (H + GAP) + H / 2 for r in range(len(rows))], labels, fontsize=7)
        ax.set_xticks([t * (W + GAP) + W / 2 for t in range(T)], [str(t) for t in range(T)], fontsize=6)
        ax.tick_params(length=0)
        for side in ax.spines.values():
            side.set_visible(False)
        ax.set_title(title, fontsize=8, loc="left")
    axes[-1, 0].set_xlabel("frame (red border: generated)", fontsize=7)
    fig.tight_layout()
    return fig


def sample_blocks(samples: dict, label: str, count: int) -> list[tuple[str, list, list, list]]:
    """The first `count` samples of a samples.npz as draw() blocks, one per mask view."""
    blocks = []
    classes = list(samples["meta"].get("classes", []))
    for i in range(min(count, samples["frames"].shape[0])):
        y = int(samples["labels"][i])
        name = classes[y] if y < len(classes) else str(y)
        for view in range(samples["masked"].shape[1]):
            rows, generated, labels = sample_rows(samples, i, view)
            if view:  # the ground truth and rollout are the same for every view
                rows, generated, labels = rows[1:3], generated[1:3], labels[1:3]
            blocks.append(
                (
                    f"{label}: val sample {int(samples['indices'][i])} ({name})"
                    + (f", mask view {view}" if view else ""),
                    rows,
                    generated,
                    labels,
                )
            )
    return blocks


def caption(meta: dict) -> str:
    return (
        "Next-frame generations from the flow decoder (paper Fig. 5), deterministic validation clips, one row group per sample. "
        f"Masked generation: every token-frame after the first ({meta['masked_from']} frames) sampled from the masked context of the frames "
        "before it, one group per mask view of the training masking (masked patches grey in the input row). AR rollout: the first "
        f"{meta['rollout_from']} frames are real, each later token-frame is sampled from the real and generated frames before it and fed back. "
        f"Euler ODE, {meta['ode_steps']} steps, seed {meta['seed']}; red border: generated frame."
    )


def generations_figure(dirs: Sequence[str | Path], out_dir: str | Path, per_dir: int = 2) -> Path:
    """Fig. 5 from the samples.npz of `nextvid generate` runs (one block of rows per sample)."""
    from nextvid.io import load_npz as load_samples
    from nextvid.report.figures import save

    blocks, metas = [], []
    for d in dirs:
        samples = load_samples(Path(d) / "samples.npz")
        metas.append(samples["meta"])
        blocks += sample_blocks(samples, samples["meta"]["label"], per_dir)
    text = "Fig. 5 (ours): " + caption(metas[0]) + " Runs: " + ", ".join(m["label"] for m in metas) + "."
    return save(draw(blocks), out_dir, FIG5, text)
