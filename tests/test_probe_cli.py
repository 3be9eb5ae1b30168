"""`nextvid probe` end to end: a nano checkpoint in the trainer's format, tiny H.264 videos written
with PyAV, manifests; the command writes a complete metrics.json. Plus the reference rows
(random:PRESET, pixels), the clip sets (the data layer's EvalClips with V-JEPA's eval geometry),
bad input skipped and counted, and `nextvid bench probe`."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from nextvid.cli import main
from nextvid.data.manifest import Sample, write_manifest
from nextvid.models.nextvid import build_model
from nextvid.presets import get_preset
from nextvid.probe.protocol import get_protocol
from nextvid.train import checkpoint as ckpt
from nextvid.train.schedule import samples_before

SIZE, FRAMES = 64, 12


pytestmark = pytest.mark.usefixtures("single_thread")  # see conftest.py


def write_video(path: Path, label: int, seed: int) -> None:
    """A bright square moving right (label 0) or left (label 1) over a noisy background."""
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 80, size=(SIZE, SIZE, 3), dtype=np.uint8)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=8)
        stream.width = stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        for t in range(FRAMES):
            frame = background.copy()
            x = 4 + 3 * t if label == 0 else SIZE - 20 - 3 * t
            frame[24:40, x : x + 16] = 255
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe_bench")
    (root / "videos").mkdir()
    splits = {"train": 16, "val": 7}
    for split, n in splits.items():
        samples = []
        for i in range(n):
            label = i % 2
            write_video(root / "videos" / f"{split}_{i}.mp4", label, seed=hash((split, i)) % 1000)
            samples.append(Sample(f"videos/{split}_{i}.mp4", label))
        write_manifest(root / f"{split}.tsv", samples, {"right": 0, "left": 1})
    cfg = get_preset("nano")
    torch.manual_seed(0)
    model = build_model(cfg)
    ckpt.save(root / "run", {"step": 7, "model": model.state_dict(), "config": cfg.to_dict()})
    return root


def probe(bench_dir, out, *extra):
    args = [
        "probe",
        "--benchmark",
        "motion",
        "--out",
        str(out),
        "--train-manifest",
        str(bench_dir / "train.tsv"),
        "--val-manifest",
        str(bench_dir / "val.tsv"),
        "--set",
        "resolution=64",
        "--set",
        "frames=4",
        "--set",
        "epochs=3",
        "--set",
        "batch_size=8",
        "--set",
        "grid.lr=[0.01, 0.001]",
        "--set",
        "grid.weight_decay=[0.01]",
        "--set",
        "holdout_fraction=0.25",
        *extra,
    ]
    assert main(args) == 0
    return json.loads((out / "metrics.json").read_text())


def test_probe_command_writes_complete_metrics(bench_dir, tmp_path):
    m = probe(bench_dir, tmp_path / "p", "--checkpoint", str(bench_dir / "run" / ckpt.LATEST), "--set", "views=2")
    assert m["checkpoint"]["step"] == 7 and len(m["checkpoint"]["sha256"]) == 64
    assert (
        m["checkpoint"]["clips_seen"] == samples_before(get_preset("nano").schedule, 7) == 28
    )  # the budget, for checkpoints that predate its record
    assert m["encoder"]["encoder"] == "reference" and m["encoder"]["layers"] == [1]
    assert m["encoder"]["attention_mask"] == "frame_causal"
    data = m["data"]
    assert (data["num_train"], data["num_heldout"], data["num_val"], data["num_classes"]) == (16, 4, 7, 2)
    assert len(data["train_sha256"]) == len(data["val_sha256"]) == 64
    assert (
        m["clips"]["frames_segments_views"] == "4x2x2"
        and m["clips"]["frame_step"] == 2
        and m["clips"]["resolution"] == 64
    )
    assert m["features"]["train"].startswith("cached") and m["features"]["heldout"].startswith(
        "cached (computed once, evaluation views)"
    )
    assert set(m["results"]) == {"best_on_val", "heldout_selected"} and len(m["heads"]) == 2
    for rule in m["results"].values():
        assert 0 <= rule["top1"] <= 100 and "rule" in rule
    assert m["probe"]["heads"] == 4 and m["probe"]["epochs"] == 3 and m["provenance"]["git_commit"]


def test_reference_rows_random_and_pixels(bench_dir, tmp_path):
    r = probe(
        bench_dir, tmp_path / "r", "--checkpoint", "random:nano", "--set", "layers=2", "--set", "bidirectional=true"
    )
    assert r["checkpoint"]["path"] == "random:nano" and r["encoder"]["encoder"] == "random"
    assert (
        r["encoder"]["layers"] == [0, 1]
        and r["encoder"]["attention_mask"] == "bidirectional"
        and r["features"]["dim"] == 128
    )
    p = probe(
        bench_dir,
        tmp_path / "x",
        "--checkpoint",
        "random:nano",
        "--encoder",
        "pixels",
        "--set",
        "pixel_pool=8",
        "--workers",
        "1",
    )
    assert p["encoder"]["encoder"] == "pixels" and p["features"]["dim"] == 2 * 2 * 2 * 3
    # the pixels baseline separates left- from right-moving squares
    assert p["results"]["best_on_val"]["top1"] > 50


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--set", "segmnts=2"], "segmnts: unknown key"),
        ([], "train_manifest: no manifest given"),
        (["--encoder", "pixels", "--set", "pixel_pool=3"], "pixel_pool: 3 does not divide"),
        (["--finetune", "--encoder", "pixels"], "--finetune: raw pixels have no encoder"),
        (["--finetune", "--recompute-features"], "a finetune caches no features"),
        (["--encoder-lr-scale", "0.1"], "only a finetune trains the encoder"),
    ],
)
def test_config_errors_exit_2_naming_the_key(tmp_path, capsys, extra, message):
    rc = main(["probe", "--checkpoint", "random:nano", "--benchmark", "motion", "--out", str(tmp_path), *extra])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err


def test_finetune_command_marks_its_record(bench_dir, tmp_path, capsys):
    """`--finetune` from random:nano through the real clip sets: a complete record, marked, with the
    same data and protocol provenance as a frozen probe's."""
    m = probe(bench_dir, tmp_path / "f", "--checkpoint", "random:nano", "--finetune", "--set", "precision=fp32")
    assert m["mode"] == "finetune" and m["checkpoint"]["path"] == "random:nano" and m["encoder"]["encoder"] == "random"
    assert set(m["results"]) == {"best_on_val", "heldout_selected"} and len(m["finetune"]["runs"]) == 4
    assert m["data"]["num_val"] == 7 and m["data"]["train_sha256"] and m["provenance"]["git_commit"]
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["mode"] == "finetune"
    assert not (tmp_path / "f" / "features").exists()  # nothing cached: the encoder changes


def test_clip_sets_are_the_data_layers_eval_clips(bench_dir):
    from nextvid.data.datasets import EvalClips
    from nextvid.data.sampling import ClipSpec, segment_clips
    from nextvid.data.transforms import SpatialViews
    from nextvid.data.video import open_frames
    from nextvid.probe.clips import probe_data
    from nextvid.probe.protocol import load_protocol

    manifests = [
        f"train_manifest={bench_dir / 'train.tsv'}",
        f"val_manifest={bench_dir / 'val.tsv'}",
        "resolution=64",
        "frames=4",
    ]
    data = probe_data(load_protocol("motion", overrides=manifests + ["views=3"]))
    train, val, heldout = data.train_clips(0), data.val_clips, data.heldout_clips
    assert all(isinstance(c, EvalClips) for c in (train, val, heldout)) and data.train_clips(1) is train
    assert (train.segments, train.views, val.views, heldout.views) == (2, 1, 3, 3)
    # one view: short side to 64 * 256/224 = 73, centre crop [V-JEPA]; three views: short side 64
    assert (train.spatial.short_side, val.spatial.short_side) == (73, 64)
    item = val[1]
    assert item["video"].shape == (6, 3, 4, 64, 64) and item["index"] == 1 and item["label"] == 1
    reader = open_frames(bench_dir / "videos" / "val_1.mp4")
    idx = segment_clips(reader.num_frames, ClipSpec(4, frame_step=2), reader.fps, 2)
    torch.testing.assert_close(
        train[0]["video"][1], SpatialViews(64, 1, 73)(open_frames(bench_dir / "videos" / "train_0.mp4").get(idx[1]))[0]
    )
    torch.testing.assert_close(item["video"][3:], SpatialViews(64, 3)(reader.get(idx[1])))  # segment 1, views 0..2
    augmented = probe_data(load_protocol("motion", overrides=manifests + ["augment=true"]))
    assert (
        augmented.train_clips(0).augment is not None
        and augmented.train_clips(0).epoch == 0
        and augmented.train_clips(3).epoch == 3
    )
    assert not torch.equal(
        augmented.train_clips(0)[0]["video"], augmented.train_clips(1)[0]["video"]
    )  # a new crop per epoch


def test_token_sources_record_what_is_probed(tmp_path):
    from nextvid.config import merge
    from nextvid.probe.encoders import load_token_source
    from nextvid.probe.protocol import load_protocol

    protocol = load_protocol("motion_sequence", overrides=["resolution=32", "layers=2"])
    cfg = merge(
        get_preset("nano"),
        {"objective": {"method": "videomae"}, "masking": {"kind": "tube"}, "model": {"encoder": {"causal": False}}},
    )
    ckpt.save(tmp_path, {"step": 3, "model": build_model(cfg).state_dict(), "config": cfg.to_dict()})
    source = load_token_source(str(tmp_path / ckpt.LATEST), "reference", protocol)
    assert source.kind == "online" and source.record["encoder_requested"] == "reference"  # no EMA encoder
    assert source.record["attention_mask"] == "bidirectional" and source.record["pretrain_resolution"] == 64
    clips = torch.zeros(2, 3, 16, 32, 32)
    assert source.module(clips).shape == (2, 8 * 4, 2 * 64)  # 8 token-frames x 2x2 patches, 2 layers
    a = load_token_source("random:nano", "online", protocol).module(clips + 0.5)
    b = load_token_source("random:nano", "online", protocol).module(clips + 0.5)
    torch.testing.assert_close(a, b)  # random:PRESET is seeded


def test_bench_probe_command(bench_dir, tmp_path, capsys):
    assert (
        main(
            [
                "bench",
                "probe",
                "--checkpoint",
                "random:nano",
                "--benchmark",
                "motion",
                "--out",
                str(tmp_path / "probe.json"),
                "--json",
                "--train-manifest",
                str(bench_dir / "train.tsv"),
                "--val-manifest",
                str(bench_dir / "val.tsv"),
                "--work-dir",
                str(tmp_path),
                "--set",
                "resolution=64",
                "--set",
                "frames=4",
                "--set",
                "epochs=2",
                "--set",
                "batch_size=8",
                "--extract-batch",
                "1",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out.strip().splitlines()
    result = json.loads(out[-1])
    assert result == json.loads((tmp_path / "probe.json").read_text())
    assert result["benchmark"] == "probe" and result["probe_benchmark"] == "motion"
    assert (
        result["heads"] == len(get_protocol("motion").grid.pairs())
        and result["accuracy_delta"] == 0.0
        and result["val_nll_delta"] == 0.0
        and result["speedup"] > 0
    )
    assert any(line.startswith("speedup") for line in out)  # the table
    assert sorted(p.name for p in tmp_path.iterdir()) == ["probe.json"]  # the two runs' features are removed


def test_augmenting_protocol_recomputes_training_features(bench_dir, tmp_path):
    m = probe(
        bench_dir,
        tmp_path / "a",
        "--checkpoint",
        "random:nano",
        "--set",
        "augment=true",
        "--set",
        "hflip=true",
        "--set",
        "views=2",
    )
    assert (
        m["features"]["train"] == "recomputed every epoch" and not (tmp_path / "a" / "features" / "train.npy").exists()
    )
    assert m["clips"]["train_augmentation"].startswith("random resized crop") and m["features"]["heldout"].startswith(
        "cached"
    )


def test_bad_samples_are_skipped_and_counted_then_stop_the_probe(bench_dir, tmp_path, capsys):
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "broken.mp4").write_bytes(b"not a video")
    good = [Sample(str(bench_dir / "videos" / f"val_{i}.mp4"), i % 2) for i in range(7)]
    write_manifest(
        tmp_path / "val.tsv",
        good + [Sample("videos/broken.mp4", 1), Sample("videos/missing.mp4", 0)],
        {"right": 0, "left": 1},
    )
    m = probe(
        bench_dir,
        tmp_path / "ok",
        "--checkpoint",
        "random:nano",
        "--val-manifest",
        str(tmp_path / "val.tsv"),
        "--set",
        "max_bad_fraction=0.25",
    )
    assert (
        m["data"]["num_val"] == 7
        and m["data"]["skipped"]["val"] == 2
        and m["skipped"]["val"]["counts"] == {"missing_file": 1, "unreadable": 1}
    )
    assert sorted(r["index"] for r in m["skipped"]["val"]["records"]) == [7, 8]
    args = [
        "probe",
        "--checkpoint",
        "random:nano",
        "--benchmark",
        "motion",
        "--out",
        str(tmp_path / "o"),
        "--train-manifest",
        str(bench_dir / "train.tsv"),
        "--val-manifest",
        str(tmp_path / "val.tsv"),
        "--set",
        "resolution=64",
        "--set",
        "frames=4",
    ]
    assert main(args) == 1  # stops at the first bad sample past the default 5 % (1 of 9)
    err = capsys.readouterr().err
    assert "val: 1 of 9 samples are bad" in err and "broken.mp4 (unreadable)" in err
