"""`nextvid probe` end to end: a nano checkpoint in the trainer's format, tiny H.264 videos written
with PyAV, manifests; the command writes a complete metrics.json. Plus the reference rows
(random:PRESET, pixels) and the clip geometry of the manifest reader."""

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
from nextvid.probe.clips import segment_indices, spatial_views
from nextvid.train import checkpoint as ckpt

SIZE, FRAMES = 64, 12


@pytest.fixture(autouse=True)
def one_thread():
    """Probe heads are many small ops: on 2 cores shared with other jobs, 2 OpenMP threads make
    each op wait for a descheduled thread (measured ~500x slower), so these tests use one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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
            frame[24:40, x:x + 16] = 255
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
        "probe", "--benchmark", "motion", "--out", str(out),
        "--train-manifest", str(bench_dir / "train.tsv"), "--val-manifest", str(bench_dir / "val.tsv"),
        "--set", "resolution=64", "--set", "frames=4", "--set", "epochs=3", "--set", "batch_size=8",
        "--set", "grid.lr=[0.01, 0.001]", "--set", "grid.weight_decay=[0.01]", "--set", "holdout_fraction=0.25",
        *extra,
    ]
    assert main(args) == 0
    return json.loads((out / "metrics.json").read_text())


def test_probe_command_writes_complete_metrics(bench_dir, tmp_path):
    m = probe(bench_dir, tmp_path / "p", "--checkpoint", str(bench_dir / "run" / ckpt.LATEST), "--set", "views=2")
    assert m["checkpoint"]["step"] == 7 and len(m["checkpoint"]["sha256"]) == 64
    assert m["encoder"]["encoder"] == "reference" and m["encoder"]["layers"] == [1]
    assert m["encoder"]["attention_mask"] == "frame_causal"
    data = m["data"]
    assert (data["num_train"], data["num_heldout"], data["num_val"], data["num_classes"]) == (16, 4, 7, 2)
    assert len(data["train_sha256"]) == len(data["val_sha256"]) == 64
    assert m["clips"]["frames_segments_views"] == "4x2x2" and m["clips"]["frame_step"] == 2 and m["clips"]["resolution"] == 64
    assert m["features"]["train"].startswith("cached") and m["features"]["heldout"].startswith("cached (computed once, evaluation views)")
    assert set(m["results"]) == {"best_on_val", "heldout_selected"} and len(m["heads"]) == 2
    for rule in m["results"].values():
        assert 0 <= rule["top1"] <= 100 and "rule" in rule
    assert m["probe"]["heads"] == 4 and m["probe"]["epochs"] == 3 and m["provenance"]["git_commit"]


def test_reference_rows_random_and_pixels(bench_dir, tmp_path):
    r = probe(bench_dir, tmp_path / "r", "--checkpoint", "random:nano", "--set", "layers=2", "--set", "bidirectional=true")
    assert r["checkpoint"]["path"] == "random:nano" and r["encoder"]["encoder"] == "random"
    assert r["encoder"]["layers"] == [0, 1] and r["encoder"]["attention_mask"] == "bidirectional" and r["features"]["dim"] == 128
    p = probe(bench_dir, tmp_path / "x", "--checkpoint", "random:nano", "--encoder", "pixels", "--set", "pixel_pool=8")
    assert p["encoder"]["encoder"] == "pixels" and p["features"]["dim"] == 2 * 2 * 2 * 3
    # the pixels baseline separates left- from right-moving squares
    assert p["results"]["best_on_val"]["top1"] > 50


@pytest.mark.parametrize(
    "extra, message",
    [(["--set", "segmnts=2"], "segmnts: unknown key"), ([], "train_manifest: no manifest given"), (["--encoder", "pixels", "--set", "pixel_pool=3"], "pixel_pool: 3 does not divide")],
)
def test_config_errors_exit_2_naming_the_key(tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as exc:
        main(["probe", "--checkpoint", "random:nano", "--benchmark", "motion", "--out", str(tmp_path), *extra])
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_clip_geometry():
    assert segment_indices(100, 4, 2, 1) == [[46, 48, 50, 52]]  # one segment: centred
    assert segment_indices(100, 4, 2, 2) == [[0, 2, 4, 6], [93, 95, 97, 99]]  # first and last
    assert segment_indices(5, 4, 2, 1) == [[0, 2, 4, 4]]  # short video: the last frame repeats
    video = torch.arange(2 * 48 * 96, dtype=torch.float32).view(1, 2, 48, 96)
    views = spatial_views(video, 32, 3)
    assert [v.shape for v in views] == [(1, 2, 32, 32)] * 3
    assert views[0][0, 0, 0, 0] < views[1][0, 0, 0, 0] < views[2][0, 0, 0, 0]  # left, centre, right


def test_token_sources_record_what_is_probed(tmp_path):
    from nextvid.config import merge
    from nextvid.probe.encoders import load_token_source
    from nextvid.probe.protocol import load_protocol

    protocol = load_protocol("motion_sequence", overrides=["resolution=32", "layers=2"])
    cfg = merge(get_preset("nano"), {"objective": {"method": "videomae"}, "masking": {"kind": "tube"}, "model": {"encoder": {"causal": False}}})
    ckpt.save(tmp_path, {"step": 3, "model": build_model(cfg).state_dict(), "config": cfg.to_dict()})
    source = load_token_source(str(tmp_path / ckpt.LATEST), "reference", protocol)
    assert source.kind == "online" and source.record["encoder_requested"] == "reference"  # no EMA encoder
    assert source.record["attention_mask"] == "bidirectional" and source.record["pretrain_resolution"] == 64
    clips = torch.zeros(2, 3, 16, 32, 32)
    assert source.module(clips).shape == (2, 8 * 4, 2 * 64)  # 8 token-frames x 2x2 patches, 2 layers
    a = load_token_source("random:nano", "online", protocol).module(clips + 0.5)
    b = load_token_source("random:nano", "online", protocol).module(clips + 0.5)
    torch.testing.assert_close(a, b)  # random:PRESET is seeded


def test_bench_probe_entry_point(bench_dir, tmp_path, capsys):
    import argparse

    from nextvid.probe.bench import configure_bench, run_bench

    parser = argparse.ArgumentParser()
    configure_bench(parser)
    args = parser.parse_args([
        "--checkpoint", "random:nano", "--benchmark", "motion", "--out", str(tmp_path / "probe.json"), "--json",
        "--train-manifest", str(bench_dir / "train.tsv"), "--val-manifest", str(bench_dir / "val.tsv"),
        "--set", "resolution=64", "--set", "frames=4", "--set", "epochs=2", "--set", "batch_size=8", "--extract-batch", "1",
    ])
    assert run_bench(args) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result == json.loads((tmp_path / "probe.json").read_text())
    assert result["heads"] == 6 and result["accuracy_delta"] == 0.0 and result["speedup"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["probe.json"]


def test_augmenting_protocol_recomputes_training_features(bench_dir, tmp_path):
    m = probe(bench_dir, tmp_path / "a", "--checkpoint", "random:nano", "--set", "augment=true", "--set", "hflip=true", "--set", "views=2")
    assert m["features"]["train"] == "recomputed every epoch" and not (tmp_path / "a" / "features" / "train.npy").exists()
    assert m["clips"]["train_augmentation"].startswith("random resized crop") and m["features"]["heldout"].startswith("cached")


def test_unreadable_sample_stops_the_probe(bench_dir, tmp_path, capsys):
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "broken.mp4").write_bytes(b"not a video")
    write_manifest(tmp_path / "val.tsv", [Sample(str(bench_dir / "videos" / "val_0.mp4"), 0), Sample("videos/broken.mp4", 1)], {"right": 0, "left": 1})
    args = ["probe", "--checkpoint", "random:nano", "--benchmark", "motion", "--out", str(tmp_path / "o"),
            "--train-manifest", str(bench_dir / "train.tsv"), "--val-manifest", str(tmp_path / "val.tsv"), "--set", "resolution=64", "--set", "frames=4"]
    assert main(args) == 1
    assert "broken.mp4: unreadable" in capsys.readouterr().err
