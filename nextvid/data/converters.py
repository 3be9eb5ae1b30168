"""Converters from the usual on-disk forms of the benchmarks to the one manifest format.

Each returns a `Converted` (rows, label map, skip log); `Converted.write(out)` writes the manifest,
its label map and `<name>.skips.json` atomically. Converters only check that each file exists
(missing videos are common: K400 loses YouTube videos); whether a file decodes is
`nextvid data check`'s job. Label ids follow the dataset's own convention where it has one (SSv2's
labels.json, Diving-48's 48 ids) and sorted class names otherwise (K400, image folders), and can be
fixed by passing the train split's label map when converting another split.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

from nextvid.data.badinput import BadRecord, SkipLog
from nextvid.data.manifest import (
    UNLABELLED,
    ManifestError,
    Sample,
    label_map_path,
    portable_path,
    read_label_map,
    write_manifest,
)
from nextvid.data.video import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from nextvid.errors import read_user_json

log = logging.getLogger(__name__)

DIVING48_CLASSES = 48
_K400_NAME = re.compile(r"^(?P<yid>.+)_(?P<start>\d{6})_(?P<end>\d{6})$")


@dataclass
class Converted:
    """Rows before the manifest is written: `rows` are (absolute file, label, start, end)."""

    rows: list[tuple[Path, int, Optional[int], Optional[int]]]
    label_map: dict[str, int]
    skips: SkipLog

    def write(self, out: str | Path) -> str:
        """Write manifest, label map and skip report; return the manifest's sha256. Raises
        TooManyBadInputs (writing nothing) when too many rows were skipped."""
        out = Path(out)
        self.skips.check()
        self.skips.write(skips_path(out))
        samples = [Sample(portable_path(p, out), label, start, end) for p, label, start, end in self.rows]
        sha = write_manifest(out, samples, self.label_map)
        log.info("%s: %d samples, %d classes, %s", out, len(samples), len(self.label_map), self.skips.summary())
        return sha


def skips_path(manifest_path: str | Path) -> Path:
    p = Path(manifest_path)
    return p.with_name(p.name.removesuffix(".tsv") + ".skips.json")


def load_label_map(path: str | Path) -> dict[str, int]:
    """A label map written by a converter (`<name>.labels.json`), or the label map of a manifest."""
    p = Path(path)
    return read_label_map(label_map_path(p) if p.suffix == ".tsv" else p)


class _Collector:
    def __init__(self, source: str, total: int, max_bad_fraction: float):
        self.rows: list[tuple[Path, int, Optional[int], Optional[int]]] = []
        self.skips = SkipLog(max_bad_fraction, total=total, name=source)

    def add(
        self, path: Path, label: int, start: Optional[int] = None, end: Optional[int] = None, line: Optional[int] = None
    ) -> None:
        if not path.is_file():
            self.skips.add(BadRecord(str(path), "missing_file", "", line))
            return
        self.skips.add_good()
        self.rows.append((path, label, start, end))

    def reject_label(self, path: Path, label: object, line: Optional[int]) -> None:
        self.skips.add(BadRecord(str(path), "label_out_of_range", f"label {label!r} is not in the label map", line))

    def done(self, label_map: dict[str, int]) -> Converted:
        return Converted(self.rows, label_map, self.skips)


def _sorted_map(names: Iterable[str]) -> dict[str, int]:
    return {name: i for i, name in enumerate(sorted(set(names)))}


# --- Kinetics-400 ---------------------------------------------------------------------------------


def index_k400_videos(videos_dir: str | Path) -> tuple[dict[tuple[str, int, int], Path], dict[str, list[Path]]]:
    """Video files under `videos_dir` (recursively: flat or per-class folders), by
    (youtube_id, start, end) from `<id>_<start:06d>_<end:06d>.<ext>`, and by youtube_id alone."""
    exact: dict[tuple[str, int, int], Path] = {}
    by_id: dict[str, list[Path]] = {}
    for p in _walk(videos_dir, VIDEO_SUFFIXES):
        m = _K400_NAME.match(p.stem)
        yid = m["yid"] if m else p.stem
        if m:
            exact[(yid, int(m["start"]), int(m["end"]))] = p
        by_id.setdefault(yid, []).append(p)
    return exact, by_id


def from_k400_csv(
    csv_path: str | Path,
    videos_dir: str | Path,
    *,
    split: Optional[str] = None,
    label_map: Optional[dict[str, int]] = None,
    max_bad_fraction: float = 0.05,
) -> Converted:
    """The official CSV (`label,youtube_id,time_start,time_end,split`; test CSVs may lack `label`)."""
    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    required = {"youtube_id", "time_start", "time_end"}
    if not rows or not required <= set(rows[0]):
        raise ManifestError(
            f"{csv_path}: expected a header with {sorted(required | {'label'})}, got {list(rows[0]) if rows else 'no rows'}"
        )
    if split is not None:
        if "split" not in rows[0]:
            raise ManifestError(f"{csv_path}: no `split` column to select {split!r} from")
        rows = [r for r in rows if r["split"] == split]
    labelled = "label" in rows[0] and all(r["label"] for r in rows)
    lmap = label_map if label_map is not None else (_sorted_map(r["label"] for r in rows) if labelled else {})
    exact, by_id = index_k400_videos(videos_dir)
    c = _Collector(str(csv_path), len(rows), max_bad_fraction)
    for line, r in enumerate(rows, start=2):
        yid, start, end = r["youtube_id"], int(float(r["time_start"])), int(float(r["time_end"]))
        path = exact.get((yid, start, end))
        if path is None and len(by_id.get(yid, ())) == 1:
            path = by_id[yid][0]
        if path is None:
            c.skips.add(
                BadRecord(
                    f"{yid}_{start:06d}_{end:06d}",
                    "missing_file",
                    f"no video for youtube_id {yid} under {videos_dir}",
                    line,
                )
            )
            continue
        if labelled and r["label"] not in lmap:
            c.reject_label(path, r["label"], line)
            continue
        c.add(path, lmap[r["label"]] if labelled else UNLABELLED, line=line)
    return c.done(lmap)


def from_list(
    list_path: str | Path,
    *,
    root: str | Path | None = None,
    label_map: Optional[dict[str, int]] = None,
    max_bad_fraction: float = 0.05,
) -> Converted:
    """The V-JEPA list: `/path/video.mp4 <int label>` per line (space separated; the path may contain
    spaces). Relative paths are relative to `root` (default: the list's folder). Without a label map
    the ids are kept and named by themselves (0..max)."""
    base = Path(root) if root else Path(list_path).parent
    entries = []
    for line, text in enumerate(Path(list_path).read_text().splitlines(), start=1):
        if not text.strip():
            continue
        parts = text.strip().rsplit(None, 1)
        if len(parts) != 2:
            raise ManifestError(f"{list_path}:{line}: expected `path label`, got {text!r}")
        try:
            entries.append((line, parts[0], int(parts[1])))
        except ValueError:
            raise ManifestError(f"{list_path}:{line}: label {parts[1]!r} is not an integer") from None
    lmap = (
        label_map if label_map is not None else {str(i): i for i in range(max((e[2] for e in entries), default=-1) + 1)}
    )
    valid = set(lmap.values())
    c = _Collector(str(list_path), len(entries), max_bad_fraction)
    for line, name, label in entries:
        path = Path(name) if os.path.isabs(name) else base / name
        if label != UNLABELLED and label not in valid:
            c.reject_label(path, label, line)
            continue
        c.add(path, label, line=line)
    return c.done(lmap)


# --- Something-Something-V2 ------------------------------------------------------------------------


def ssv2_class(template: str) -> str:
    """`Putting [something] on [something]` -> `Putting something on something` (labels.json's key)."""
    return template.replace("[", "").replace("]", "")


def from_ssv2(
    labels_json: str | Path, split_json: str | Path, videos_dir: str | Path, *, max_bad_fraction: float = 0.05
) -> Converted:
    """`labels.json` (class -> id as a string), `train.json`/`validation.json` ([{id, template,
    placeholders, ...}]), videos `<id>.webm` (a split without templates, e.g. test, gets label -1)."""
    lmap = {name: int(i) for name, i in read_user_json(labels_json, "SSv2 labels file", ManifestError).items()}
    entries = read_user_json(split_json, "split file", ManifestError)
    c = _Collector(str(split_json), len(entries), max_bad_fraction)
    videos = Path(videos_dir)
    for n, e in enumerate(entries):
        path = videos / f"{e['id']}.webm"
        if "template" not in e:
            c.add(path, UNLABELLED, line=n)
            continue
        name = ssv2_class(e["template"])
        if name not in lmap:
            c.reject_label(path, name, n)
            continue
        c.add(path, lmap[name], line=n)
    return c.done(lmap)


# --- Diving-48 -------------------------------------------------------------------------------------


def from_diving48(
    split_json: str | Path, videos_dir: str | Path, *, vocab: str | Path | None = None, max_bad_fraction: float = 0.05
) -> Converted:
    """`Diving48_V2_train.json`/`_test.json` ([{vid_name, label, start_frame, end_frame}]), videos
    `<vid_name>.mp4`. `end_frame` is taken as exclusive (indices past the video are clamped).
    Class names come from `Diving48_vocab.json` (a list of [takeoff, somersault, twist, flight])
    when given, else the ids themselves."""
    if vocab:
        names = [
            "/".join(v) if isinstance(v, list) else str(v)
            for v in read_user_json(vocab, "vocabulary file", ManifestError)
        ]
        if len(set(names)) != DIVING48_CLASSES:
            raise ManifestError(f"{vocab}: {len(set(names))} distinct classes, Diving-48 has {DIVING48_CLASSES}")
    else:
        names = [str(i) for i in range(DIVING48_CLASSES)]
    lmap = {name: i for i, name in enumerate(names)}
    entries = read_user_json(split_json, "split file", ManifestError)
    c = _Collector(str(split_json), len(entries), max_bad_fraction)
    videos = Path(videos_dir)
    for n, e in enumerate(entries):
        path = videos / f"{e['vid_name']}.mp4"
        label = int(e["label"])
        if not 0 <= label < DIVING48_CLASSES:
            c.reject_label(path, label, n)
            continue
        c.add(path, label, _opt_int(e, "start_frame"), _opt_int(e, "end_frame"), line=n)
    return c.done(lmap)


def _opt_int(entry: dict, key: str) -> Optional[int]:
    return int(entry[key]) if key in entry and entry[key] is not None else None


# --- folders ---------------------------------------------------------------------------------------


def from_image_folder(
    root: str | Path, *, label_map: Optional[dict[str, int]] = None, max_bad_fraction: float = 0.05
) -> Converted:
    """ImageNet-style class folders: `<root>/<class>/*.JPEG` (sorted class names -> ids)."""
    root = Path(root)
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    if not classes:
        raise ManifestError(f"{root}: no class folders")
    lmap = label_map if label_map is not None else _sorted_map(classes)
    files = [(cls, p) for cls in classes for p in _walk(root / cls, IMAGE_SUFFIXES)]
    c = _Collector(str(root), len(files), max_bad_fraction)
    for n, (cls, p) in enumerate(files):
        if cls not in lmap:
            c.reject_label(p, cls, n)
            continue
        c.add(p, lmap[cls], line=n)
    return c.done(lmap)


def from_folder(root: str | Path, *, images: bool = False, max_bad_fraction: float = 0.05) -> Converted:
    """Every video (and, with `images`, every image) under `root`, unlabelled (-1): a pretraining corpus."""
    suffixes = VIDEO_SUFFIXES + (IMAGE_SUFFIXES if images else ())
    files = list(_walk(root, suffixes))
    if not files:
        raise ManifestError(f"{root}: no files ending in {', '.join(suffixes)}")
    c = _Collector(str(root), len(files), max_bad_fraction)
    for n, p in enumerate(files):
        c.add(p, UNLABELLED, line=n)
    return c.done({})


def _walk(root: str | Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Files under `root` with one of `suffixes` (case-insensitive), sorted: a stable row order."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        out += [Path(dirpath) / f for f in filenames if f.lower().endswith(suffixes) and not f.startswith(".")]
    return sorted(out)
