"""The workflow's VAE (nextvid.vae): training on mixture frames lowers the reconstruction loss; the
directory it writes loads as a `vae` generation target whose latents its stats.json normalises; a
rerun with the same seed writes identical weights; a failed run leaves no half-written directory.
Tiny sizes (32-pixel frames, two levels of 8 and 16 channels), one thread, a synthetic mixture."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")

from nextvid import config  # noqa: E402
from nextvid.cli import main  # noqa: E402
from nextvid.data.badinput import SkipLog  # noqa: E402
from nextvid.data.embedded_render import write_clip, write_image  # noqa: E402
from nextvid.data.manifest import Sample, write_manifest  # noqa: E402
from nextvid.models.targets import VaeTarget, load_vae_target, target_dim  # noqa: E402
from nextvid.vae import train as vae_train  # noqa: E402
from nextvid.vae.config import load_vae_config, target_overrides  # noqa: E402
from nextvid.vae.data import MixtureFrames, mixture_batches  # noqa: E402
from nextvid.vae.evaluate import down_up, frame_mse, psnr  # noqa: E402

pytestmark = pytest.mark.usefixtures("single_thread")  # see conftest.py

TINY = [
    "image_size=32",
    "crop=16",
    "block_out_channels=[8, 16]",
    "norm_num_groups=4",
    "latent_channels=4",
    "steps=24",
    "batch_size=8",
    "lr=0.003",
    "warmup_steps=2",
    "log_every=4",
    "stats_frames=16",
    "val_samples=4",
]
SIDE = 40


def pattern(rng: np.random.Generator, frames: int = 1) -> np.ndarray:
    """Smooth colour blobs drifting over `frames` frames: (T, SIDE, SIDE, 3) uint8."""
    coarse = rng.random((5, 5, 3))
    yy, xx = np.mgrid[0:SIDE, 0:SIDE] / SIDE * 4
    out = []
    for t in range(frames):
        y, x = (yy + 0.2 * t) % 4, xx
        y0, x0 = y.astype(int), x.astype(int)
        fy, fx = (y - y0)[..., None], (x - x0)[..., None]
        img = (
            coarse[y0, x0] * (1 - fy) * (1 - fx)
            + coarse[y0 + 1, x0] * fy * (1 - fx)
            + coarse[y0, x0 + 1] * (1 - fy) * fx
            + coarse[y0 + 1, x0 + 1] * fy * fx
        )
        out.append((img * 255).astype(np.uint8))
    return np.stack(out)


@pytest.fixture(scope="module")
def mixture(tmp_path_factory) -> dict:
    """A two-source mixture (PNG images, short H.264 clips) and a held-out manifest of both kinds."""
    root = tmp_path_factory.mktemp("vae-mixture")
    rng = np.random.default_rng(0)
    (root / "files").mkdir()
    images, clips, val = [], [], []
    for i in range(12):
        write_image(root / "files" / f"img{i}.png", pattern(rng)[0])
        images.append(Sample(f"files/img{i}.png"))
    for i in range(4):
        write_clip(root / "files" / f"clip{i}.mp4", pattern(rng, frames=6), fps=8)
        clips.append(Sample(f"files/clip{i}.mp4"))
    for i in range(3):
        write_image(root / "files" / f"val{i}.png", pattern(rng)[0])
        write_clip(root / "files" / f"valclip{i}.mp4", pattern(rng, frames=6), fps=8)
        val += [Sample(f"files/val{i}.png"), Sample(f"files/valclip{i}.mp4")]
    write_manifest(root / "images.tsv", images, {})
    write_manifest(root / "clips.tsv", clips, {})
    write_manifest(root / "val.tsv", val, {})
    spec = {
        "sources": [
            {"name": "images", "manifest": "images.tsv", "weight": 0.5},
            {"name": "clips", "manifest": "clips.tsv", "weight": 0.5},
        ]
    }
    (root / "mixture.json").write_text(json.dumps(spec))
    return {"mixture": root / "mixture.json", "val": root / "val.tsv"}


@pytest.fixture(scope="module")
def trained(mixture, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("vae-run") / "vae"
    cfg = load_vae_config(TINY)
    metrics = vae_train.train_vae(mixture["mixture"], out, cfg, [mixture["val"]])
    return {"out": out, "cfg": cfg, "metrics": metrics}


def test_training_lowers_the_reconstruction_loss(trained):
    log = trained["metrics"]["train"]["log"]
    assert [row["step"] for row in log] == list(range(4, 25, 4))
    assert log[-1]["reconstruction"] < 0.8 * log[0]["reconstruction"]
    assert trained["metrics"]["train"]["frames"] == 24 * 8


def test_metrics_report_held_out_psnr_beside_the_down_up_baseline(trained):
    m = json.loads((trained["out"] / "metrics.json").read_text())
    assert m == json.loads(json.dumps(trained["metrics"]))
    held = m["held_out"]["manifests"][0]
    assert held["vae"]["frames"] == held["bilinear_down_up"]["frames"] == 4  # val_samples of the 6 rows
    for row in (held["vae"], held["bilinear_down_up"]):
        assert row["psnr_db"] >= 10 * np.log10(4 / row["mse"]) - 1e-9  # the mean of per-frame PSNRs (Jensen)
        assert 0 < row["mse"] < 1
    assert m["held_out"]["all"]["vae"] == held["vae"]
    assert m["config"] == trained["cfg"].to_dict() and m["train"]["steps"] == 24
    assert m["stats"]["frames"] == 16 and m["model"]["latent_shape"] == [4, 16, 16]
    assert set(m["wall_s"]) == {"train", "stats", "eval", "total"}


def test_output_loads_as_a_vae_target_with_target_dim_channels(trained):
    cfg = config.load("nano", None, ["target.kind=vae", *target_overrides(trained["out"], trained["cfg"])])
    assert (cfg.target.latent_channels, cfg.target.latent_downsample) == (4, 2)
    target = load_vae_target(cfg)
    assert isinstance(target, VaeTarget)
    enc = cfg.model.encoder
    video = torch.rand(2, 3, enc.frames, enc.image_size, enc.image_size) * 2 - 1
    tokens = target(video)
    grid = enc.image_size // enc.patch_size
    assert tokens.shape == (2, enc.frames // enc.tubelet, grid * grid, target_dim(cfg))
    assert target_dim(cfg) == 2 * (16 // 2) ** 2 * 4


def test_stats_normalise_the_latents_of_the_frames_they_were_measured_on(trained):
    """stats.json: one mean and std per latent channel, of the posterior mean, as VaeTarget uses them."""
    stats = json.loads((trained["out"] / "stats.json").read_text())
    assert len(stats["mean"]) == len(stats["std"]) == 4 and min(stats["std"]) > 0
    cfg = config.load("nano", None, ["target.kind=vae", *target_overrides(trained["out"], trained["cfg"])])
    target = load_vae_target(cfg)
    frames = MixtureFrames(json_path(trained), trained["cfg"], crop=0)
    x = torch.cat(list(mixture_batches(frames, 0, 16, 8, SkipLog())))
    z = target.encode_frames(x[:, :, None])  # (N, C, 1, h, w), normalised
    assert torch.allclose(z.mean(dim=(0, 2, 3, 4)), torch.zeros(4), atol=1e-4)
    assert torch.allclose(z.std(dim=(0, 2, 3, 4), unbiased=False), torch.ones(4), atol=1e-3)


def json_path(trained) -> Path:
    return Path(trained["metrics"]["mixture"]["path"])


def test_rerun_with_the_same_seed_writes_identical_weights(trained, tmp_path):
    """The second run goes through the command line (`nextvid vae train`)."""
    out = tmp_path / "again"
    args = ["vae", "train", "--mixture", str(json_path(trained)), "--out", str(out), "--threads", "1"]
    assert main(args + [a for s in TINY for a in ("--set", s)]) == 0
    weights = "diffusion_pytorch_model.safetensors"
    assert (out / weights).read_bytes() == (trained["out"] / weights).read_bytes()
    assert (out / "stats.json").read_bytes() == (trained["out"] / "stats.json").read_bytes()
    assert json.loads((out / "config.json").read_text())["latent_channels"] == 4


def test_a_failed_run_leaves_no_half_written_directory(mixture, tmp_path, monkeypatch):
    out = tmp_path / "vae"
    cfg = load_vae_config(TINY + ["steps=6", "log_every=2"])

    def fail_at_step_3(vae, opt, x, step, cfg, generator):
        if step == 3:
            raise RuntimeError("killed mid-training")
        return real_step(vae, opt, x, step, cfg, generator)

    real_step = vae_train.train_step
    monkeypatch.setattr(vae_train, "train_step", fail_at_step_3)
    with pytest.raises(RuntimeError, match="mid-training"):
        vae_train.train_vae(mixture["mixture"], out, cfg)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(vae_train, "train_step", real_step)
    vae_train.train_vae(mixture["mixture"], out, cfg)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert {"config.json", "diffusion_pytorch_model.safetensors", "stats.json", "metrics.json"} <= set(before)

    def fail_while_writing(path, obj):  # the weights are already in the staging directory
        raise OSError("disk full")

    monkeypatch.setattr(vae_train, "atomic_write_json", fail_while_writing)
    with pytest.raises(OSError, match="disk full"):
        vae_train.train_vae(mixture["mixture"], out, load_vae_config(TINY + ["steps=6", "seed=1"]))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the previous run, untouched
    assert [p.name for p in tmp_path.iterdir()] == ["vae"]  # no staging directory left


def test_config_errors_name_the_key_and_targets_follow_the_config():
    with pytest.raises(config.ConfigError, match="stepz"):
        load_vae_config(["stepz=3"])
    with pytest.raises(config.ConfigError, match="vae.norm_num_groups"):
        load_vae_config(["block_out_channels=[12, 16]"])
    cfg = load_vae_config(["block_out_channels=[8, 16, 32, 32]", "norm_num_groups=8", "latent_channels=8"])
    assert cfg.downsample == 8
    assert target_overrides("/v", cfg) == [
        "target.vae_path=/v",
        "target.vae_stats=/v/stats.json",
        "target.latent_channels=8",
        "target.latent_downsample=8",
    ]
    default = load_vae_config()
    assert 16 % default.downsample == 0  # the tiny preset's patch size
    assert (
        config.load("tiny", None, ["target.kind=vae", *target_overrides("/v", default)]).target.latent_downsample == 4
    )


def test_psnr_and_the_down_up_baseline():
    x = torch.zeros(2, 3, 8, 8)
    assert torch.equal(down_up(x, 4), x)  # a constant frame survives the baseline exactly
    y = x + 0.2
    assert psnr(frame_mse(x, y)).tolist() == pytest.approx([10 * np.log10(4 / 0.04)] * 2)
