"""The dev split: stratified, seeded, disjoint by file, and its manifests resolve the original files."""

from __future__ import annotations

from collections import Counter

import pytest

from nextvid.cli import main
from nextvid.data.devsplit import carve
from nextvid.data.manifest import ManifestError, Sample, read_manifest, write_manifest


def train_manifest(tmp_path, per_class=(10, 20, 5), clips_per_file=1):
    samples = [
        Sample(f"videos/c{label}_{i}.mp4", label, start, start + 8)
        for label, n in enumerate(per_class)
        for i in range(n)
        for start in range(0, 8 * clips_per_file, 8)
    ]
    path = tmp_path / "bench" / "train.tsv"
    write_manifest(path, samples, {f"class{k}": k for k in range(len(per_class))})
    return path


def test_each_class_keeps_its_share_and_the_parts_are_disjoint_and_complete(tmp_path):
    manifest = read_manifest(train_manifest(tmp_path))
    train, val = carve(manifest, 0.2, seed=0)
    assert Counter(s.label for s in val) == {0: 2, 1: 4, 2: 1}
    assert sorted(train + val, key=manifest.samples.index) == list(manifest.samples)
    assert not {s.path for s in train} & {s.path for s in val}


def test_the_split_is_a_function_of_the_seed(tmp_path):
    manifest = read_manifest(train_manifest(tmp_path))
    assert carve(manifest, 0.2, seed=0) == carve(manifest, 0.2, seed=0)
    assert carve(manifest, 0.2, seed=0)[1] != carve(manifest, 0.2, seed=1)[1]


def test_clips_of_one_file_stay_in_one_part(tmp_path):
    manifest = read_manifest(train_manifest(tmp_path, per_class=(6, 6), clips_per_file=3))
    train, val = carve(manifest, 0.34, seed=0)
    assert len(val) == 2 * 2 * 3 and not {s.path for s in train} & {s.path for s in val}


def test_bad_fraction_and_a_file_with_two_labels_are_refused(tmp_path):
    manifest = read_manifest(train_manifest(tmp_path))
    with pytest.raises(ManifestError, match="fraction"):
        carve(manifest, 1.0, seed=0)
    path = tmp_path / "two.tsv"
    write_manifest(path, [Sample("a.mp4", 0, 0, 8), Sample("a.mp4", 1, 8, 16)], {"x": 0, "y": 1})
    with pytest.raises(ManifestError, match="two labels"):
        carve(read_manifest(path), 0.5, seed=0)


def test_cli_writes_manifests_elsewhere_that_resolve_the_original_files(tmp_path, capsys):
    source = train_manifest(tmp_path)
    out = tmp_path / "dev"
    assert main(["data", "dev-split", "--manifest", str(source), "--out", str(out)]) == 0
    original = read_manifest(source)
    parts = [read_manifest(out / f"train.{part}.tsv") for part in ("devtrain", "devval")]
    assert {p.resolve(s) for p in parts for s in p.samples} == {original.resolve(s) for s in original.samples}
    assert all(p.label_map == original.label_map for p in parts)
    assert "train.devval.tsv: 7 samples" in capsys.readouterr().out
