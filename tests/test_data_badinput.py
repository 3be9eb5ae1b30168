"""Bad input never crashes a run and never passes silently: every kind is skipped, logged with its
path and reason and counted, also through a DataLoader with worker processes, and too much of it
stops the run with a clear error."""

from __future__ import annotations

import json
import os

import av
import numpy as np
import pytest

from nextvid.cli import main
from nextvid.data.badinput import SkipLog, TooManyBadInputs, collate
from nextvid.data.check import check_manifest
from nextvid.data.datasets import EvalClips, ManifestSource, TrainClips, make_loader
from nextvid.data.manifest import Sample, read_manifest, write_manifest
from nextvid.data.sampling import ClipSpec
from nextvid.data.video import write_video

# file -> the reason it is skipped for (None: good)
EXPECTED = {
    "good.mp4": None,
    "good.webm": None,
    "short.mp4": None,  # 5 frames, shorter than a clip: padded, not bad
    "good.jpg": None,
    "missing.mp4": "missing_file",
    "empty.mp4": "empty_file",
    "garbage.mp4": "unreadable",
    "truncated.mp4": "unreadable",  # cut before its index (moov at the end)
    "truncated_faststart.mp4": "decode_error",  # index first, data cut: the last frames do not decode
    "bad_codec.avi": "unsupported_codec",
    "audio_only.m4a.mp4": "no_video_stream",
    "zeroed.mp4": "no_frames",  # container and index intact, not one frame decodes
    "bad.jpg": "unreadable_image",
}
OUT_OF_MAP = "good_but_label_7.mp4"


def frames(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 48, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def bad_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    write_video(d / "good.mp4", frames(40), options={"preset": "ultrafast"})
    write_video(d / "good.webm", frames(40, 1), codec="libvpx-vp9", options={"deadline": "realtime", "cpu-used": "8"})
    write_video(d / "short.mp4", frames(5, 2), options={"preset": "ultrafast"})
    write_video(d / OUT_OF_MAP, frames(10, 3), options={"preset": "ultrafast"})
    from PIL import Image

    Image.fromarray(frames(1)[0]).save(d / "good.jpg")
    (d / "empty.mp4").write_bytes(b"")
    (d / "garbage.mp4").write_bytes(os.urandom(4000))
    data = (d / "good.mp4").read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 2])
    _write_faststart(d / "faststart.mp4", frames(40, 4))
    data = (d / "faststart.mp4").read_bytes()
    (d / "truncated_faststart.mp4").write_bytes(data[: len(data) * 2 // 3])
    # an AVI whose codec tag no decoder knows
    write_video(d / "mpeg4.avi", frames(10, 5), codec="mpeg4")
    (d / "bad_codec.avi").write_bytes((d / "mpeg4.avi").read_bytes().replace(b"FMP4", b"QQZ9"))
    _write_audio_only(d / "audio_only.m4a.mp4")
    # zero the media data of a valid mp4: the index still promises 40 frames
    data = bytearray((d / "good.mp4").read_bytes())
    start, end = data.find(b"mdat") + 4, data.find(b"moov") - 4
    data[start:end] = bytes(end - start)
    (d / "zeroed.mp4").write_bytes(bytes(data))
    (d / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(300))
    rows = [Sample(name, 0) for name in EXPECTED] + [Sample(OUT_OF_MAP, 7)]
    write_manifest(d / "all.tsv", rows, {"zero": 0, "one": 1})
    return d


def _write_faststart(path, video) -> None:
    """H.264 with the index (moov) before the data, a keyframe every 10 frames."""
    with av.open(str(path), "w", options={"movflags": "faststart"}) as c:
        s = c.add_stream("libx264", rate=25)
        s.height, s.width = video.shape[1:3]
        s.pix_fmt = "yuv420p"
        s.codec_context.gop_size = 10
        s.options = {"preset": "ultrafast"}
        for f in video:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def _write_audio_only(path) -> None:
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 8000
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode():
            c.mux(p)


def expected_counts() -> dict[str, int]:
    counts: dict[str, int] = {"label_out_of_range": 1}
    for reason in EXPECTED.values():
        if reason:
            counts[reason] = counts.get(reason, 0) + 1
    return counts


def test_manifest_reports_labels_outside_the_map(bad_dir):
    m = read_manifest(bad_dir / "all.tsv")
    assert len(m.samples) == len(EXPECTED)
    (rec,) = m.rejected
    assert rec.path == OUT_OF_MAP and rec.reason == "label_out_of_range" and rec.index == len(EXPECTED) + 2


def test_check_counts_every_reason_and_loads_the_good_files(bad_dir, caplog):
    skips, infos = check_manifest(bad_dir / "all.tsv", max_bad_fraction=1.0)
    assert skips.counts == expected_counts()
    by_path = {os.path.basename(r.path): r.reason for r in skips.records}
    assert by_path == {name: reason for name, reason in EXPECTED.items() if reason} | {OUT_OF_MAP: "label_out_of_range"}
    m = read_manifest(bad_dir / "all.tsv")
    good = {os.path.basename(m.samples[i].path) for i in infos}
    assert good == {name for name, reason in EXPECTED.items() if reason is None}
    assert infos[[s.path for s in m.samples].index("short.mp4")]["num_frames"] == 5
    # each skip is logged with its path and reason
    assert "zeroed.mp4: no_frames" in caplog.text and "bad.jpg: unreadable_image" in caplog.text


@pytest.mark.parametrize("backend", ["auto", "pyav"])
def test_loader_with_workers_counts_each_skip_once(bad_dir, backend):
    """Skips inside DataLoader workers reach the main process through the batch; no sample is
    replaced by another one. The clip spans the whole video, so damage at its end is found."""
    source = ManifestSource(bad_dir / "all.tsv", backend)
    ds = EvalClips(source, ClipSpec(8, frame_step=6), 32, segments=1, views=1)
    skips = ds.skip_log(max_fraction=1.0)
    seen_indices = []
    for batch in make_loader(ds, batch_size=4, workers=2):
        batch = skips.consume(batch)
        if batch is not None:
            seen_indices += batch["index"].tolist()
            assert batch["video"].shape[1:] == (1, 3, 8, 32, 32)
    assert skips.counts == expected_counts()
    assert skips.seen == skips.total == len(EXPECTED) + 1
    good = [i for i, s in enumerate(source.manifest.samples) if EXPECTED[s.path] is None]
    assert sorted(seen_indices) == good  # each good sample exactly once, nothing substituted


def test_short_video_is_padded_not_skipped(bad_dir):
    ds = TrainClips(ManifestSource(bad_dir / "all.tsv"), ClipSpec(16, frame_step=2), 32)
    i = [s.path for s in ds.source.manifest.samples].index("short.mp4")
    video = ds[i]["video"]
    assert video.shape == (3, 16, 32, 32)
    assert all(video[:, t].equal(video[:, 4]) for t in range(4, 16))  # frames past the 5th repeat the last


def test_too_many_bad_samples_stop_the_run_with_a_clear_error(bad_dir):
    ds = TrainClips(ManifestSource(bad_dir / "all.tsv"), ClipSpec(4, frame_step=1), 32)
    skips = ds.skip_log(max_fraction=0.05)  # the rejected label alone is 1/14 > 5%
    with pytest.raises(TooManyBadInputs, match=r"1 of 14 samples are bad .*label_out_of_range"):
        skips.consume(collate([ds[0]]))


def test_skip_log_json_round_trip(tmp_path):
    from nextvid.data.badinput import BadRecord

    log = SkipLog(0.1, total=10, name="x")
    log.add(BadRecord("a.mp4", "missing_file", "", 3))
    log.add_good(4)
    log.write(tmp_path / "skips.json")
    back = SkipLog.from_dict(json.loads((tmp_path / "skips.json").read_text()))
    assert back.to_dict() == log.to_dict() and back.counts == {"missing_file": 1} and back.seen == 5


def test_data_check_cli_writes_report_and_clean_manifest(bad_dir, tmp_path, capsys):
    report, clean = tmp_path / "report.json", tmp_path / "clean.tsv"
    rc = main(["data", "check", str(bad_dir / "all.tsv"), "--report", str(report), "--clean", str(clean)])
    assert rc == 1  # 10 of 14 bad is far above the default 5%
    assert "more than 5.0%" in capsys.readouterr().err
    data = json.loads(report.read_text())
    assert data["counts"] == expected_counts() and data["good"] == 4
    m = read_manifest(clean)
    assert sorted(os.path.basename(s.path) for s in m.samples) == sorted(n for n, r in EXPECTED.items() if r is None)
    assert all(m.resolve(s).is_file() for s in m.samples)
    assert main(["data", "check", str(clean), "--report", str(tmp_path / "r2.json")]) == 0
