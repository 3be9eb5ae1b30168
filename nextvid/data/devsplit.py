"""A dev split carved from a benchmark's train split: where recipe choices are made (issue 20).

Choices (learning rate, warm-up, EMA half-life, mask scales, steps) are made on dev-val, which is part
of the train split, so the benchmark's val split is read only for the numbers a table reports. The
split is stratified by label (every class keeps its share in both parts) and seeded; samples that share
a file go to the same part, so no clip of a dev-val video was seen by a head trained on dev-train.
"""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

from nextvid.data.manifest import Manifest, ManifestError, Sample, portable_path, read_manifest, write_manifest


def carve(manifest: Manifest, fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """(dev-train, dev-val): `fraction` of each label's files go to dev-val (at least one where a label
    has two or more files), in the manifest's order within each part."""
    if not 0.0 < fraction < 1.0:
        raise ManifestError(f"{manifest.path}: a dev fraction must lie in (0, 1), got {fraction}")
    label_of_file: dict[str, int] = {}  # in manifest order
    for sample in manifest.samples:
        if label_of_file.setdefault(sample.path, sample.label) != sample.label:
            raise ManifestError(
                f"{manifest.path}: {sample.path} carries two labels; a dev split keeps a file in one part"
            )
    files_of_label: dict[int, list[str]] = defaultdict(list)
    for path, label in label_of_file.items():
        files_of_label[label].append(path)
    rng = random.Random(seed)
    dev_val: set[str] = set()
    for label in sorted(files_of_label):
        files = files_of_label[label]
        n_val = round(len(files) * fraction)
        if len(files) >= 2:
            n_val = min(max(n_val, 1), len(files) - 1)
        dev_val.update(rng.sample(files, n_val))
    train = [s for s in manifest.samples if s.path not in dev_val]
    val = [s for s in manifest.samples if s.path in dev_val]
    return train, val


def write_dev_split(
    manifest_path: str | Path, out_dir: str | Path, fraction: float = 0.2, seed: int = 0
) -> tuple[Path, Path]:
    """Write `<out_dir>/<stem>.devtrain.tsv` and `.devval.tsv` (label maps beside them; paths portable
    from the new location); return both paths."""
    manifest = read_manifest(manifest_path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = manifest.path.name.removesuffix(".tsv")
    written = []
    for part, samples in zip(("devtrain", "devval"), carve(manifest, fraction, seed)):
        out = out_dir / f"{stem}.{part}.tsv"
        moved = [Sample(portable_path(manifest.resolve(s), out), s.label, s.start_frame, s.end_frame) for s in samples]
        write_manifest(out, moved, manifest.label_map)
        written.append(out)
    return written[0], written[1]
