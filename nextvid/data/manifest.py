"""The one manifest format every dataset is converted to.

A manifest is a TSV with a header `path  label  start_frame  end_frame` (start/end empty when the
whole video is used; label -1 for unlabelled pretraining corpora); relative paths are relative to the
manifest's directory. The label map (class name -> id) lies beside it as `<name>.labels.json`.
The manifest's sha256 identifies the exact sample list in every result that used it.

A row whose label is not in the label map is not an error of the whole manifest: `read_manifest`
leaves it out of `samples` and lists it in `rejected` (reason `label_out_of_range`), and datasets
count it as a skipped sample (nextvid.data.badinput).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

from nextvid.data.badinput import BadRecord
from nextvid.errors import UserInputError, read_user_json
from nextvid.io import atomic_write_text, sha256_file

COLUMNS = ("path", "label", "start_frame", "end_frame")
UNLABELLED = -1


class ManifestError(UserInputError):
    """A manifest or label map is malformed; the message names the file and line."""


@dataclass(frozen=True)
class Sample:
    path: str
    label: int = UNLABELLED
    start_frame: Optional[int] = None
    end_frame: Optional[int] = None  # exclusive


@dataclass(frozen=True)
class Manifest:
    path: Path
    samples: tuple[Sample, ...]
    label_map: dict[str, int]
    sha256: str
    rejected: tuple[BadRecord, ...] = ()  # rows left out of `samples` (index = line number)

    def resolve(self, sample: Sample) -> Path:
        p = Path(sample.path)
        return p if p.is_absolute() else self.path.parent / p

    @property
    def num_classes(self) -> int:
        return len(self.label_map)


def label_map_path(manifest_path: str | Path) -> Path:
    p = Path(manifest_path)
    return p.with_name(p.name.removesuffix(".tsv") + ".labels.json")


def write_manifest(path: str | Path, samples: Iterable[Sample], label_map: dict[str, int]) -> str:
    """Write manifest + label map atomically; return the manifest's sha256."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t", lineterminator="\n")
    writer.writerow(COLUMNS)
    for s in samples:
        writer.writerow([s.path, s.label, _opt(s.start_frame), _opt(s.end_frame)])
    atomic_write_text(label_map_path(path), json.dumps(label_map, indent=1, sort_keys=True) + "\n")
    atomic_write_text(path, buf.getvalue())
    return sha256_file(path)


def read_manifest(path: str | Path) -> Manifest:
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    lm_path = label_map_path(path)
    label_map = read_label_map(lm_path) if lm_path.is_file() else {}
    valid_ids = set(label_map.values())
    samples, rejected = [], []
    with open(path, newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        header = next(reader, None)
        if tuple(header or ()) != COLUMNS:
            raise ManifestError(f"{path}:1: header must be {' '.join(COLUMNS)} (tab-separated), got {header}")
        for lineno, row in enumerate(reader, start=2):
            if len(row) != len(COLUMNS):
                raise ManifestError(f"{path}:{lineno}: expected {len(COLUMNS)} tab-separated fields, got {len(row)}")
            try:
                label = int(row[1])
                start, end = _int_or_none(row[2]), _int_or_none(row[3])
            except ValueError as err:
                raise ManifestError(f"{path}:{lineno}: {err}") from None
            if label != UNLABELLED and label_map and label not in valid_ids:
                rejected.append(
                    BadRecord(row[0], "label_out_of_range", f"label {label} is not in {lm_path.name}", lineno)
                )
                continue
            samples.append(Sample(row[0], label, start, end))
    return Manifest(path, tuple(samples), label_map, sha256_file(path), tuple(rejected))


def read_label_map(path: str | Path) -> dict[str, int]:
    """A `<name>.labels.json`: a JSON object of class name -> integer id (ManifestError naming the file)."""
    data = read_user_json(path, "label map", ManifestError)
    if not isinstance(data, dict) or not all(isinstance(v, int) and not isinstance(v, bool) for v in data.values()):
        raise ManifestError(f"{path}: a label map is a JSON object of class name -> integer id")
    return data


def portable_path(file: str | Path, manifest_path: str | Path) -> str:
    """How a manifest row names `file`: relative to the manifest's directory when the file lies under
    it (the two can then move together), absolute otherwise."""
    file, base = Path(file).absolute(), Path(manifest_path).absolute().parent
    return str(file.relative_to(base)) if file.is_relative_to(base) else str(file)


def _opt(v: Optional[int]) -> str:
    return "" if v is None else str(v)


def _int_or_none(text: str) -> Optional[int]:
    return int(text) if text.strip() else None
