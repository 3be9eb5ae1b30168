"""Precision: `auto` resolved once per run from the hardware (bf16 where native, fp32 elsewhere),
recorded, kept on resume; machines without native bf16 faked through NEXTVID_CPUINFO."""

import json
import logging
import sys
from pathlib import Path

import pytest
import torch
import yaml

from nextvid.cli import main
from nextvid.config import merge
from nextvid.presets import get_preset
from nextvid.probe.protocol import PROTOCOLS, get_protocol
from nextvid.train import checkpoint as ckpt, precision
from nextvid.train.loop import Trainer
from nextvid.train.precision import native_bf16, resolve

sys.path.insert(0, str(Path(__file__).parent))
from clips import DriftingPatterns  # noqa: E402

CPU = torch.device("cpu")


def nano(**overrides):
    base = {
        "data": {"num_workers": 0},
        "schedule": {"total_steps": 8},
        "train": {"checkpoint_every": 4, "log_every": 2},
    }
    return merge(get_preset("nano"), base, overrides)


def test_cpu_bf16_is_native_only_with_its_flags(tmp_path):
    with_flag, without = tmp_path / "with", tmp_path / "without"
    with_flag.write_text("processor : 0\nflags : fpu avx2 avx512f avx512_bf16 avx512_vnni\n")
    without.write_text("processor : 0\nflags : fpu avx2 avx512f avx512_vnni avx512_bf16x\n")
    assert native_bf16(CPU, with_flag)
    assert not native_bf16(CPU, without)
    assert native_bf16(CPU, tmp_path / "missing")  # cannot tell: claim nothing


def test_auto_is_fp32_without_native_bf16(no_native_bf16):
    assert resolve("auto", CPU) == "fp32" and resolve("fp32", CPU) == "fp32"


def test_auto_is_bf16_with_native_bf16(native_bf16_cpu):
    assert resolve("auto", CPU) == "bf16" and resolve("fp32", CPU) == "fp32"


def test_bf16_asked_where_emulated_is_kept_with_a_warning(no_native_bf16, caplog):
    with caplog.at_level(logging.WARNING, logger="nextvid.train.precision"):
        assert resolve("bf16", CPU, "schedule.precision") == "bf16"
    assert any("schedule.precision=auto or fp32" in r.getMessage() for r in caplog.records)


def test_cpu_presets_and_embedded_protocols_are_auto_paper_ones_bf16():
    assert get_preset("tiny").schedule.precision == "auto"
    assert get_preset("nano").schedule.precision == "fp32"  # the tests' preset: the same numbers everywhere
    assert all(get_preset(p).schedule.precision == "bf16" for p in ("vit_l", "vit_h", "vit_g"))
    for name in ("images", "appearance", "motion", "motion_sequence"):
        assert get_protocol(name).precision == "auto"
    for name in ("k400", "ssv2", "diving48", "in1k"):
        assert get_protocol(name).precision == "bf16"
    assert set(PROTOCOLS) == {"images", "appearance", "motion", "motion_sequence", "k400", "ssv2", "diving48", "in1k"}


@pytest.mark.parametrize("native, expected", [(False, "fp32"), (True, "bf16")])
def test_nextvid_config_tiny_says_what_auto_resolves_to(native, expected, request, capsys):
    request.getfixturevalue("native_bf16_cpu" if native else "no_native_bf16")
    assert main(["config", "--preset", "tiny"]) == 0
    out = capsys.readouterr().out
    assert f"schedule.precision: auto -> {expected} on this machine (cpu, bf16 native: {native}" in out
    assert yaml.safe_load(out)["schedule"]["precision"] == "auto"  # the config itself (and its hash) is what was asked


def test_run_records_the_resolved_precision(tmp_path, no_native_bf16):
    cfg = nano(schedule={"precision": "auto"})
    summary = Trainer(cfg, tmp_path, DriftingPatterns).run()
    assert summary["precision"] == "fp32" and json.loads((tmp_path / "done.json").read_text())["precision"] == "fp32"
    state = ckpt.load(tmp_path / "checkpoints" / ckpt.LATEST)
    assert state["precision"] == "fp32" and state["config"]["schedule"]["precision"] == "auto"
    text = (tmp_path / "config.yaml").read_text()
    assert "this run computes in fp32" in text.splitlines()[0]
    assert yaml.safe_load(text) == cfg.to_dict()  # the header is a comment: the file loads as the run's config


def test_resumed_run_keeps_its_precision_on_another_machine(tmp_path, monkeypatch, caplog):
    """Started where bf16 is native, resumed where it is not: the run stays bf16 (with a warning),
    under the same training hash, and a finished copy of it is not trained again."""
    from conftest import fake_cpuinfo

    cfg = nano(schedule={"precision": "auto"})
    monkeypatch.setenv("NEXTVID_CPUINFO", str(fake_cpuinfo(tmp_path / "bf16", native=True)))
    Trainer(cfg, tmp_path / "run", DriftingPatterns).run(stop_at=4)
    monkeypatch.setenv("NEXTVID_CPUINFO", str(fake_cpuinfo(tmp_path / "avx2", native=False)))
    with caplog.at_level(logging.WARNING, logger="nextvid.train.precision"):
        resumed = Trainer(cfg, tmp_path / "run", DriftingPatterns)
    assert resumed.step == 4 and resumed.precision == "bf16"
    assert any("resumes in bf16" in r.getMessage() for r in caplog.records)
    assert resumed.run()["precision"] == "bf16"
    assert ckpt.load(tmp_path / "run" / "checkpoints" / ckpt.LATEST)["precision"] == "bf16"
    assert Trainer(cfg, tmp_path / "run", DriftingPatterns).is_complete()
    # a fresh run here resolves to fp32
    assert Trainer(cfg, tmp_path / "fresh", DriftingPatterns).precision == "fp32"


def test_resumed_bf16_equals_uninterrupted_bf16(tmp_path, native_bf16_cpu):
    cfg = nano(schedule={"precision": "auto"}, train={"deterministic": True})
    Trainer(cfg, tmp_path / "straight", DriftingPatterns).run()
    Trainer(cfg, tmp_path / "resumed", DriftingPatterns).run(stop_at=5)
    Trainer(cfg, tmp_path / "resumed", DriftingPatterns).run()
    a = ckpt.load(tmp_path / "straight/checkpoints" / ckpt.LATEST)["model"]
    b = ckpt.load(tmp_path / "resumed/checkpoints" / ckpt.LATEST)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_training_step_runs_in_the_resolved_precision(monkeypatch, tmp_path):
    """The trainer's autocast follows the resolved precision (bf16 changes the numbers)."""
    losses = {}
    for p in ("fp32", "bf16"):
        monkeypatch.setattr(precision, "resolve", lambda requested, device, setting="": p)
        summary = Trainer(nano(schedule={"precision": "auto", "total_steps": 4}), tmp_path / p, DriftingPatterns).run()
        assert summary["precision"] == p
        losses[p] = summary["final"]["loss"]
    assert losses["fp32"] != losses["bf16"]


def test_checkpoints_from_before_precision_read_as_the_same_setting(tmp_path):
    cfg = nano()
    Trainer(cfg, tmp_path, DriftingPatterns).run(stop_at=4)
    path = tmp_path / "checkpoints" / ckpt.LATEST
    state = torch.load(path, weights_only=True)
    state.pop("precision")
    state["config"]["schedule"].pop("precision")
    state["config"]["schedule"]["bf16"] = False
    torch.save(state, path)
    old = ckpt.load(path)
    assert old["precision"] == "fp32" and old["config"]["schedule"]["precision"] == "fp32"


@pytest.mark.parametrize(
    "cap, native",
    [("AVX2", False), ("avx512_core", False), ("AVX512_CORE_BF16", True), ("AVX512_CORE_AMX", True), ("", True)],
)
def test_a_onednn_isa_cap_below_bf16_makes_it_emulated(cap, native, native_bf16_cpu, monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    assert native_bf16(CPU) is native
    assert resolve("auto", CPU) == ("bf16" if native else "fp32")
    if not native:
        assert "ONEDNN_MAX_CPU_ISA" in precision.why_not_native(CPU)
