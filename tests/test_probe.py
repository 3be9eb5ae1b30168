"""The attentive probe: protocol config, the head grid's fast path, exact evaluation (each sample
once, per-sample view averaging, order/batch invariance), held-out selection without val
information, cached = recomputed features, bad samples skipped and counted, and accuracy on a
separable synthetic task."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
import torch

from nextvid.config import ConfigError
from nextvid.probe import fit
from nextvid.probe.clips import ProbeData
from nextvid.probe.features import build_store
from nextvid.probe.heads import AttentiveProbe, ProbeGrid, lr_factor
from nextvid.probe.protocol import PROTOCOLS, get_protocol, layer_indices, load_protocol
from nextvid.probe.run import run_probe

sys.path.insert(0, str(Path(__file__).parent))
from probe_synthetic import Identity, TokenClips, WithBad, token_source  # noqa: E402

FAST = [
    "heads=4",
    "epochs=6",
    "batch_size=32",
    "warmup_epochs=0.5",
    "grid.lr=[0.01, 0.001]",
    "grid.weight_decay=[0.01, 0.1]",
]


pytestmark = pytest.mark.usefixtures("single_thread")  # see conftest.py


def synthetic_run(
    tmp_path, val_labels=None, cache_train=None, views=1, n_train=120, n_val=37, separation=1.5, overrides=()
):
    protocol = load_protocol("motion", overrides=FAST + [f"views={views}", *overrides])
    train = TokenClips(n_train, 4, segments=2, views=1, seed=1, separation=separation)
    val = TokenClips(n_val, 4, segments=2, views=views, seed=2, separation=separation)
    if val_labels is not None:
        val.labels = val_labels(val.labels)
    heldout = TokenClips(n_train, 4, segments=2, views=views, seed=1, separation=separation) if views > 1 else None
    data = ProbeData(
        lambda epoch: train, val, num_classes=4, heldout_clips=heldout, record={"train_manifest": "synthetic"}
    )
    return run_probe(token_source(), protocol, data, tmp_path, cache_train=cache_train)


# ------------------------------------------------------------------------------------------ protocol


def test_paper_protocols_match_table10():
    got = {
        name: (p.clip_spec, p.frame_step, p.batch_size, p.epochs, p.layers)
        for name in ("k400", "ssv2", "diving48", "in1k")
        for p in [get_protocol(name)]
    }
    assert got == {
        "k400": ("16x8x3", 4, 192, 20, 1),
        "ssv2": ("16x2x3", 4, 96, 20, 1),
        "diving48": ("32x4x3", 2, 48, 100, 4),
        "in1k": ("16x1x1", 1, 384, 20, 1),
    }
    assert get_protocol("in1k").image and all(get_protocol(n).augment for n in ("k400", "ssv2", "diving48", "in1k"))
    for name in PROTOCOLS:  # every preset is valid and round-trips through the config machinery
        p = get_protocol(name)
        assert load_protocol(name) == p and p.heads >= 1
    embedded = [get_protocol(n) for n in ("images", "appearance", "motion", "motion_sequence")]
    assert all(p.resolution == 128 and not p.augment for p in embedded)
    assert get_protocol("motion_sequence").layers == 2 and get_protocol("diving48").layers == 4


def test_layer_indices_evenly_spaced_last_included():
    assert layer_indices(24, 1) == [23]
    assert layer_indices(24, 4) == [5, 11, 17, 23]
    assert layer_indices(6, 4) == [2, 3, 4, 5]
    with pytest.raises(ConfigError, match="^layers:"):
        layer_indices(2, 4)


@pytest.mark.parametrize(
    "overrides, key",
    [
        (["segmentz=2"], r"^segmentz: unknown key"),
        (["segments=two"], r"^segments: expected an integer"),
        (["grid.momentum=0.9"], r"^grid.momentum: unknown key"),
        (["grid.lr=[]"], r"^grid.lr:"),
        (["holdout_fraction=0.7"], r"^holdout_fraction:"),
        (["lr_schedule=step"], r"^lr_schedule:"),
        (["warmup_epochs=30"], r"^warmup_epochs:"),
        (["views=3"], r"^segments: an image benchmark"),
    ],
)
def test_protocol_errors_name_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key):
        load_protocol("images", overrides=overrides)


def test_protocol_file_and_unknown_benchmark(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("preset: ssv2\nepochs: 3\ngrid:\n  lr: [0.001]\n")
    p = load_protocol("my_ssv2", f)
    assert (p.benchmark, p.epochs, p.grid.lr, p.segments) == ("my_ssv2", 3, (0.001,), 2)
    f.write_text("preset: ssv2\ngrid:\n  lr: [1e-3, 3e-4]\n")  # strings to YAML 1.1, numbers here
    assert load_protocol("my_ssv2", f).grid.lr == (1e-3, 3e-4)
    f.write_text("frames: 8\nbogus: 1\n")
    with pytest.raises(ConfigError, match="^bogus: unknown key"):
        load_protocol("custom", f)
    with pytest.raises(ConfigError, match="unknown"):
        load_protocol("custom")


def test_lr_schedule_is_a_pure_function_of_step():
    assert lr_factor(0, 100, 10, "cosine") == pytest.approx(0.1)
    assert lr_factor(10, 100, 10, "cosine") == pytest.approx(1.0)
    assert lr_factor(99, 100, 10, "cosine") < 0.01
    assert lr_factor(50, 100, 0, "constant") == 1.0


# ------------------------------------------------------------------------------------------ heads


def test_grid_fast_path_equals_textbook_cross_attention():
    torch.manual_seed(0)
    grid = ProbeGrid(48, 5, heads=4, mlp_ratio=2.0, count=3)
    for probe in grid.probes:  # move every parameter (incl. LayerNorm affine, biases) off its init
        for p in probe.parameters():
            p.data += 0.2 * torch.randn_like(p)
    x = torch.randn(6, 33, 48) * 3 + 1
    reference = torch.stack([p(x) for p in grid.probes])
    torch.testing.assert_close(grid(x), reference, atol=1e-5, rtol=1e-5)
    assert isinstance(grid.probes[0], AttentiveProbe) and len(grid) == 3


def test_grid_heads_train_independently():
    """A head trained inside a grid equals the same head trained alone (same init, same batches)."""
    clips = TokenClips(64, 4, segments=1, views=1)
    feats = torch.stack([clips[i]["video"][0, ..., 0, 0] for i in range(len(clips))])
    labels = torch.tensor(clips.labels)

    def train(pairs):
        grid = ProbeGrid(16, 4, 4, 2.0, len(pairs), seed=3)
        opt = fit.make_optimizer(grid, pairs, (0.9, 0.999))
        for _ in range(5):
            loss = (
                torch.nn.functional.cross_entropy(
                    grid(feats).flatten(0, 1), labels.repeat(len(pairs)), reduction="none"
                )
                .view(len(pairs), -1)
                .mean(1)
            )
            opt.zero_grad()
            loss.sum().backward()
            opt.step()
        return grid

    together = train([(1e-2, 0.1), (1e-3, 0.0)])
    alone = train([(1e-3, 0.0)])
    for a, b in zip(together.probes[1].parameters(), alone.probes[0].parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


# ------------------------------------------------------------------------------------------ evaluation


def _store(tmp_path, clips, name="val"):
    return build_store(tmp_path / name, clips, Identity(), key=name, device=torch.device("cpu"))


def test_val_order_and_batch_size_do_not_change_the_result(tmp_path):
    clips = TokenClips(37, 4, segments=2, views=3, seed=5)  # odd size: no batch size below divides it
    store = _store(tmp_path, clips)
    grid = ProbeGrid(16, 4, 4, 2.0, count=2, seed=1).eval()
    base = fit.predict(grid, store, range(37), 37, torch.device("cpu"))
    perm = torch.randperm(37, generator=torch.Generator().manual_seed(0)).tolist()
    for batch_size in (1, 5, 8, 64):
        probs = fit.predict(grid, store, perm, batch_size, torch.device("cpu"))
        torch.testing.assert_close(probs, base[:, perm], atol=1e-6, rtol=1e-5)
        got, want = fit.scores(probs, store.labels[perm]), fit.scores(base, store.labels)
        assert got["top1"] == want["top1"] and got["nll"] == pytest.approx(want["nll"], rel=1e-6)
    with pytest.raises(ValueError, match="twice"):
        fit.predict(grid, store, [0, 1, 1], 2, torch.device("cpu"))


def test_training_features_normalised_once_give_the_per_batch_logits(tmp_path):
    from nextvid.probe.features import CachedTrainFeatures

    store = _store(tmp_path, TokenClips(21, 4, segments=2, seed=4), name="train")
    grid = ProbeGrid(16, 4, 4, 2.0, count=2, seed=1).eval()
    batches = [[3, 0, 7], list(range(8, 21)), [1, 2, 4, 5, 6]]
    once = CachedTrainFeatures(store, ProbeGrid.normalize, chunk=4)  # chunked across the batches
    per_batch = CachedTrainFeatures(store, ProbeGrid.normalize, max_bytes=0)  # over the limit: per batch
    assert once.prepared and not per_batch.prepared and not CachedTrainFeatures(store).prepared
    for a, b in zip(once.epoch(0, batches), per_batch.epoch(0, batches)):
        assert a[2] == b[2] and torch.equal(a[1], b[1])
        assert torch.equal(grid(a[0], normalized=True), grid(b[0]))


def test_each_sample_counted_once_per_sample_means(tmp_path):
    clips = TokenClips(11, 3, seed=7)
    store = _store(tmp_path, clips)
    assert len(store) == 11 and sorted(store.indices.tolist()) == list(range(11))
    probs = torch.zeros(1, 11, 3)
    probs[0, torch.arange(11), store.labels] = 1.0  # all right ...
    probs[0, 10] = torch.tensor([1.0, 0, 0]) if store.labels[10] != 0 else torch.tensor([0, 1.0, 0])  # ... but the last
    assert fit.scores(probs, store.labels)["top1"][0] == pytest.approx(100 * 10 / 11)  # not a per-batch mean
    assert "top5" not in fit.scores(probs, store.labels)
    assert "top5" in fit.scores(torch.rand(1, 4, 11), torch.arange(4))


def test_multiview_averages_softmax_per_sample(tmp_path):
    clips = TokenClips(9, 4, segments=2, views=3, seed=3)
    store = _store(tmp_path, clips)
    assert store.array.shape == (9, 3, 2 * 12, 16)  # (samples, views, segments x tokens, dim)
    grid = ProbeGrid(16, 4, 4, 2.0, count=1, seed=2).eval()
    for p in grid.parameters():
        p.data += 0.5 * torch.randn_like(p)
    probs = fit.predict(grid, store, range(9), 4, torch.device("cpu"))
    for i in range(9):
        video = clips[i]["video"][..., 0, 0].view(2, 3, 12, 16)  # (segments, views, N, D)
        views = [video[:, v].reshape(24, 16) for v in range(3)]  # segments concatenated per view
        want = torch.stack([torch.softmax(grid.probes[0](v.half().float()[None])[0], -1) for v in views]).mean(0)
        torch.testing.assert_close(probs[0, i], want, atol=1e-5, rtol=1e-4)


# ------------------------------------------------------------------------------------------ end to end on features


def test_probe_reaches_high_accuracy_on_separable_features(tmp_path):
    m = synthetic_run(tmp_path, separation=3.0, overrides=["epochs=10"])
    assert m["results"]["best_on_val"]["top1"] >= 95
    assert m["results"]["heldout_selected"]["top1"] >= 95
    assert m["data"]["num_val"] == 37 and m["data"]["num_heldout"] == pytest.approx(12, abs=2)
    assert m["features"]["train"].startswith("cached") and (tmp_path / "features" / "train.npy").is_file()
    assert len(m["heads"]) == 4


def test_chance_on_unlearnable_features(tmp_path):
    m = synthetic_run(tmp_path, separation=0.0, n_val=200)
    assert m["results"]["heldout_selected"]["top1"] < 45  # 4 classes: chance 25


def test_cached_and_recomputed_features_give_identical_metrics(tmp_path):
    cached = synthetic_run(tmp_path / "a", cache_train=True)
    live = synthetic_run(tmp_path / "b", cache_train=False)
    assert live["features"]["train"] == "recomputed every epoch"
    assert cached["results"] == live["results"] and cached["heads"] == live["heads"]


def test_bad_samples_are_skipped_counted_and_limited(tmp_path):
    from nextvid.data.badinput import TooManyBadInputs
    from nextvid.probe.features import FeatureStore

    protocol = load_protocol("motion", overrides=FAST + ["max_bad_fraction=0.06"])
    bad_train = {3, 50, 51, 77}
    train = WithBad(TokenClips(120, 4, segments=2, seed=1), bad_train)
    val = WithBad(TokenClips(37, 4, segments=2, seed=2), {0, 36})
    data = ProbeData(lambda epoch: train, val, num_classes=4)
    cached = run_probe(token_source(), protocol, data, tmp_path / "a")
    live = run_probe(token_source(), protocol, data, tmp_path / "b", cache_train=False)
    assert cached["results"] == live["results"] and cached["heads"] == live["heads"]  # the same samples drop out
    _, held = fit.holdout_split(train.labels, protocol.holdout_fraction, protocol.seed)
    d = cached["data"]
    assert (d["num_train"], d["num_val"], d["num_heldout"]) == (116, 35, len(set(held) - bad_train))
    assert d["skipped"] == {"train": 4, "val": 2}  # held-out rows come from the cached training features
    assert live["data"]["skipped"] == {"train": 4, "val": 2, "heldout": len(set(held) & bad_train)}
    assert cached["skipped"]["val"]["counts"] == {"decode_error": 2}
    assert sorted(r["index"] for r in cached["skipped"]["train"]["records"]) == sorted(bad_train)
    assert live["skipped"]["train"]["bad_per_epoch"] == [4] * protocol.epochs
    store = FeatureStore(tmp_path / "a" / "features" / "val")  # every good val sample exactly once
    assert sorted(store.indices.tolist()) == list(range(1, 36)) and len(store) == 35
    rerun = run_probe(token_source(), protocol, data, tmp_path / "a")  # reused stores keep their skip logs
    assert rerun["data"]["skipped"] == d["skipped"] and rerun["results"] == cached["results"]
    with pytest.raises(TooManyBadInputs, match="val: 3 of 37 samples are bad"):
        run_probe(
            token_source(), protocol, ProbeData(lambda epoch: train, WithBad(val.clips, {0, 1, 2}), 4), tmp_path / "c"
        )
    with pytest.raises(TooManyBadInputs, match="val: 2 of 37"):  # a reused store is checked against the current limit
        run_probe(
            token_source(), load_protocol("motion", overrides=FAST + ["max_bad_fraction=0.02"]), data, tmp_path / "a"
        )


def test_heldout_selection_uses_no_val_information(tmp_path):
    def shuffled(labels):
        return [labels[(i * 7) % len(labels)] for i in range(len(labels))]

    a = synthetic_run(tmp_path / "a", separation=0.4, views=3)
    b = synthetic_run(tmp_path / "b", separation=0.4, views=3, val_labels=shuffled)
    keys = ("head", "lr", "weight_decay", "heldout_top1", "heldout_nll")
    assert {k: a["results"]["heldout_selected"][k] for k in keys} == {
        k: b["results"]["heldout_selected"][k] for k in keys
    }
    assert a["features"]["heldout"].startswith("cached (computed once, evaluation views)")
    assert [h["val_top1"] for h in a["heads"]] != [h["val_top1"] for h in b["heads"]]  # val did change


def test_holdout_split_is_stratified_and_deterministic():
    labels = [0] * 50 + [1] * 30 + [2] * 20
    rest, held = fit.holdout_split(labels, 0.1, seed=0)
    assert sorted(rest + held) == list(range(100)) and not set(rest) & set(held)
    assert [sum(labels[p] == c for p in held) for c in range(3)] == [5, 3, 2]
    assert fit.holdout_split(labels, 0.1, seed=0) == (rest, held) != fit.holdout_split(labels, 0.1, seed=1)
    assert fit.holdout_split(labels, 0.0, seed=0) == (list(range(100)), [])


def test_bf16_reaches_encoder_and_heads_and_is_recorded(tmp_path):
    from nextvid.probe.features import encode_views

    torch.manual_seed(0)
    linear = torch.nn.Linear(24, 32)
    video = torch.randn(3, 2, 4, 24)  # (n, S*V, ...) whose last axis the "encoder" maps
    tokens = {bf16: encode_views(linear, video, 2, 1, chunk=2, bf16=bf16).float() for bf16 in (False, True)}
    assert not torch.equal(tokens[True], tokens[False])  # autocast ran the matmul in bf16
    torch.testing.assert_close(tokens[True], tokens[False], atol=0.05, rtol=0.05)
    runs = {
        bf16: synthetic_run(
            tmp_path / str(bf16), separation=3.0, overrides=["epochs=10", f"precision={'bf16' if bf16 else 'fp32'}"]
        )
        for bf16 in (False, True)
    }
    assert (
        runs[True]["features"]["heads_precision"] == "bf16 autocast"
        and runs[False]["features"]["heads_precision"] == "fp32"
    )
    assert runs[True]["heads"] != runs[False]["heads"]  # the heads trained under autocast
    assert all(r["results"]["best_on_val"]["top1"] >= 95 for r in runs.values())


def test_probe_resolves_auto_once_and_records_it(tmp_path, no_native_bf16):
    metrics = synthetic_run(tmp_path, separation=3.0, overrides=["epochs=2", "precision=auto"])
    assert metrics["features"]["precision"] == {
        "requested": "auto",
        "resolved": "fp32",
        "bf16_native": False,
        "device": "cpu",
    }
    assert metrics["features"]["encoder_precision"] == metrics["features"]["heads_precision"] == "fp32"
    assert metrics["protocol"]["precision"] == "auto"


def test_metrics_carry_the_protocol(tmp_path):
    import json

    synthetic_run(tmp_path, overrides=["holdout_fraction=0"])
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert set(m["results"]) == {"best_on_val"}  # no held-out part: only the paper's rule
    for key in ("checkpoint", "encoder", "data", "clips", "probe", "features", "protocol", "provenance", "heads"):
        assert key in m
    assert m["clips"]["frames_segments_views"] == "8x2x1" and m["probe"]["grid"] == {
        "lr": [0.01, 0.001],
        "weight_decay": [0.01, 0.1],
    }
    assert m["provenance"]["git_commit"]
    assert dataclasses.asdict(get_protocol("motion"))["frames"] == 8


def test_bench_probe_reports_speedup_and_equal_accuracy(tmp_path, no_native_bf16):
    from nextvid.bench.probe import bench_probe, table

    protocol = load_protocol("motion", overrides=FAST)
    train, val = TokenClips(80, 4, segments=2, seed=1), TokenClips(30, 4, segments=2, seed=2)
    result = bench_probe(token_source(), protocol, ProbeData(lambda epoch: train, val, 4), work_dir=tmp_path)
    assert (
        result["heads"] == 4
        and result["speedup"] > 0
        and result["accuracy_delta"] == 0.0
        and result["val_nll_delta"] == 0.0
    )
    assert list(tmp_path.iterdir()) == []  # the bench leaves nothing behind
    # on a machine without native bf16 the embedded protocol's `auto` ran fp32, and says so
    assert result["bf16_native"] is False and result["precision"] == "fp32" and "bf16 native: False" in table(result)
