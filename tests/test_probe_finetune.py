"""`nextvid probe --finetune` (nextvid.probe.finetune): the encoder and the head trained end to end
with labels, evaluated as the frozen probe is. The encoder's weights move on this path and stay put
on the frozen one; on a task a random bottleneck encoder hides from a frozen probe, finetuning
recovers it; the record is marked; bad arguments are clear errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from nextvid.config import ConfigError
from nextvid.probe import fit
from nextvid.probe.encoders import EncoderTokens, TokenSource, load_token_source
from nextvid.probe.finetune import run_finetune
from nextvid.probe.protocol import load_protocol
from nextvid.probe.run import ProbeData, run_probe

sys.path.insert(0, str(Path(__file__).parent))
from probe_synthetic import TokenClips, token_source  # noqa: E402

pytestmark = pytest.mark.usefixtures("single_thread")  # see conftest.py

FAST = [
    "heads=2",
    "epochs=10",
    "batch_size=32",
    "warmup_epochs=0.5",
    "grid.lr=[0.03]",
    "grid.weight_decay=[0.01]",
    "segments=1",
]


class Bottleneck(nn.Module):
    """A linear encoder whose initial weights see none of the class signal: random directions
    orthogonal to the class means of TokenClips. A frozen probe over it is at chance; training it
    with labels can turn it toward the means."""

    def __init__(self, dim: int = 16, width: int = 8, classes: int = 4):
        super().__init__()
        means = TokenClips(1, classes, dim=dim).means  # (classes, dim): the signal's subspace
        basis, _ = torch.linalg.qr(means.T)  # (dim, classes) orthonormal
        w = torch.randn(width, dim, generator=torch.Generator().manual_seed(7))
        w = w - (w @ basis) @ basis.T  # remove the signal's subspace
        self.proj = nn.Linear(dim, width)
        with torch.no_grad():
            self.proj.weight.copy_(w * 0.3)
            self.proj.bias.zero_()

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.proj(clips[..., 0, 0])


def bottleneck_source() -> TokenSource:
    module = Bottleneck().requires_grad_(False)  # frozen, as EncoderTokens is
    return TokenSource(module, 8, "random", 2, {"path": "synthetic-bottleneck", "step": 0, "sha256": None})


def data(n_train=160, n_val=60, views=1, classes=4):
    train = TokenClips(n_train, classes, segments=1, views=1, seed=1, separation=2.0)
    val = TokenClips(n_val, classes, segments=1, views=views, seed=2, separation=2.0)
    heldout = TokenClips(n_train, classes, segments=1, views=views, seed=1, separation=2.0) if views > 1 else None
    return ProbeData(
        lambda epoch: train, val, num_classes=classes, heldout_clips=heldout, record={"train_manifest": "synthetic"}
    )


def test_finetune_moves_the_encoder_and_beats_the_frozen_probe(tmp_path):
    protocol = load_protocol("motion", overrides=FAST + ["holdout_fraction=0"])
    source = bottleneck_source()
    before = {k: v.clone() for k, v in source.module.state_dict().items()}
    frozen = run_probe(source, protocol, data(), tmp_path / "frozen")
    assert all(torch.equal(before[k], v) for k, v in source.module.state_dict().items())  # frozen: untouched
    tuned = run_finetune(source, protocol, data(), tmp_path / "tuned")
    assert all(
        torch.equal(before[k], v) for k, v in source.module.state_dict().items()
    )  # the source is copied, not trained
    run = tuned["finetune"]["runs"][0]
    assert run["encoder_relative_change"] > 0.05  # the trained copy moved
    assert frozen["mode"] == "frozen" and tuned["mode"] == "finetune"
    f, t = frozen["results"]["best_on_val"]["top1"], tuned["results"]["best_on_val"]["top1"]
    assert t >= f + 15, (f, t)
    assert json.loads((tmp_path / "tuned" / "metrics.json").read_text())["mode"] == "finetune"
    assert tuned["data"]["num_val"] == 60 and tuned["data"]["num_train"] == 160


def test_finetune_views_and_selection_rule(tmp_path):
    """Several val views are averaged per sample; with a held-out part both selection rules are
    reported, from one model per (lr, wd) per rule."""
    protocol = load_protocol(
        "motion", overrides=FAST + ["views=2", "epochs=2", "grid.lr=[0.01, 0.001]", "holdout_fraction=0.2"]
    )
    m = run_finetune(bottleneck_source(), protocol, data(views=2), tmp_path)
    assert set(m["results"]) == {"best_on_val", "heldout_selected"}
    assert [r["without_heldout"] for r in m["finetune"]["runs"]] == [False, False, True, True]
    held = fit.holdout_split(data().train_clips(0).labels, 0.2, protocol.seed)[1]
    assert m["data"]["num_heldout"] == len(held) > 0 and m["data"]["num_val"] == 60
    assert 0 <= m["results"]["heldout_selected"]["heldout_top1"] <= 100


def test_encoder_lr_scale_slows_the_encoder_only(tmp_path):
    protocol = load_protocol("motion", overrides=FAST + ["holdout_fraction=0", "epochs=2"])
    full = run_finetune(bottleneck_source(), protocol, data(), tmp_path / "a")
    slow = run_finetune(bottleneck_source(), protocol, data(), tmp_path / "b", encoder_lr_scale=0.01)
    assert slow["finetune"]["encoder_lr_scale"] == 0.01 and full["finetune"]["encoder_lr_scale"] == 1.0
    assert (
        0
        < slow["finetune"]["runs"][0]["encoder_relative_change"]
        < 0.1 * full["finetune"]["runs"][0]["encoder_relative_change"]
    )
    with pytest.raises(ConfigError, match="encoder-lr-scale"):
        run_finetune(bottleneck_source(), protocol, data(), tmp_path / "c", encoder_lr_scale=0)


def test_finetune_refuses_an_encoder_free_source(tmp_path):
    protocol = load_protocol("motion", overrides=FAST)
    with pytest.raises(ConfigError, match="no weights to train"):
        run_finetune(token_source(), protocol, data(), tmp_path)


def test_finetune_trains_a_copy_of_a_real_encoder(tmp_path):
    """random:nano through the real encoder path (EncoderTokens): frozen stays frozen (no grad, same
    weights), the finetune copy changes."""
    protocol = load_protocol(
        "motion",
        overrides=[
            "resolution=32",
            "frames=4",
            "segments=1",
            "heads=2",
            "epochs=2",
            "warmup_epochs=0",
            "batch_size=8",
            "grid.lr=[0.001]",
            "grid.weight_decay=[0.01]",
            "holdout_fraction=0",
            "precision=fp32",
        ],
    )
    source = load_token_source("random:nano", "reference", protocol)
    assert isinstance(source.module, EncoderTokens)
    before = {k: v.clone() for k, v in source.module.state_dict().items()}

    class Videos:
        segments, views = 1, 1

        def __init__(self, n):
            self.labels = [i % 2 for i in range(n)]

        def __len__(self):
            return len(self.labels)

        def __getitem__(self, i):
            g = torch.Generator().manual_seed(i)
            return {"video": torch.rand(1, 3, 4, 32, 32, generator=g) * 2 - 1, "label": self.labels[i], "index": i}

    clips = Videos(16)
    m = run_finetune(source, protocol, ProbeData(lambda e: clips, Videos(6), num_classes=2), tmp_path)
    assert m["finetune"]["runs"][0]["encoder_relative_change"] > 0
    assert all(torch.equal(before[k], v) for k, v in source.module.state_dict().items())
    assert not any(p.requires_grad for p in source.module.parameters())


class MovingSquares:
    """Class = direction (left / right) of a bright 6-px square moving 3 px per frame over noise: a
    still frame says nothing, consecutive frames do."""

    segments, views = 1, 1

    def __init__(self, n: int, seed: int):
        self.labels, self.seed = [i % 2 for i in range(n)], seed

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(self.seed * 100_000 + i)
        video = torch.rand(1, 3, 8, 32, 32, generator=g) * 0.6 - 1
        x0, y0 = (int(v) for v in torch.randint(4, 22, (2,), generator=g))
        step = 3 if self.labels[i] else -3
        for t in range(8):
            x = min(max((x0 - 10 if step > 0 else x0 + 10) + step * t, 0), 26)
            video[0, :, t, y0 : y0 + 6, x : x + 6] = 1.0
        return {"video": video, "label": self.labels[i], "index": i}


def test_convnet_source_is_seeded_frozen_and_tokenises_a_clip():
    protocol = load_protocol("motion", overrides=["resolution=48", "frames=8", "precision=fp32"])
    a, b = (load_token_source("random:nano", "convnet", protocol) for _ in range(2))
    assert a.kind == "convnet" and a.record["encoder"] == "convnet" and not a.module.training
    assert all(torch.equal(x, y) for x, y in zip(a.module.state_dict().values(), b.module.state_dict().values()))
    assert not any(p.requires_grad for p in a.module.parameters())
    assert a.module(torch.zeros(2, 3, 8, 48, 48)).shape == (2, 2 * 6 * 6, a.dim)


def test_convnet_widths_come_from_the_protocol():
    from nextvid.probe.convnet import WIDTHS

    assert load_protocol("motion").convnet_widths == WIDTHS  # the protocol's default is the CNN's own
    protocol = load_protocol("motion", overrides=["convnet_widths=[8,16,24,40]", "precision=fp32"])
    source = load_token_source("random:nano", "convnet", protocol)
    convs = [m for m in source.module.modules() if isinstance(m, torch.nn.Conv3d)]
    assert [c.out_channels for c in convs] == [8, 16, 24, 40] and source.dim == 40
    assert source.record["widths"] == [8, 16, 24, 40]


def test_convnet_ceiling_learns_motion_direction_a_frozen_probe_cannot_read(tmp_path):
    """The ceiling's point: with labels, the CNN learns from a few hundred clips what its random
    features do not show a frozen probe (here: which way a square moves)."""
    overrides = [
        "resolution=32",
        "frames=8",
        "segments=1",
        "heads=2",
        "epochs=6",
        "warmup_epochs=0.5",
        "batch_size=16",
        "grid.lr=[0.003]",
        "grid.weight_decay=[0.01]",
        "holdout_fraction=0",
        "precision=fp32",
    ]
    protocol = load_protocol("motion", overrides=overrides)
    source = load_token_source("random:nano", "convnet", protocol)
    train, val = MovingSquares(192, seed=1), MovingSquares(64, seed=2)
    data = ProbeData(lambda e: train, val, num_classes=2)
    tuned = run_finetune(source, protocol, data, tmp_path / "tuned")
    frozen = run_probe(source, protocol, data, tmp_path / "frozen")
    assert tuned["results"]["best_on_val"]["top1"] >= 90, tuned["results"]
    assert frozen["results"]["best_on_val"]["top1"] <= 75, frozen["results"]
