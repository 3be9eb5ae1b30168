"""bf16 autocast: asked of the hardware, warned about where it would be emulated."""

import logging

import torch

from nextvid.train.precision import native_bf16


def test_cpu_bf16_is_native_only_with_its_flags(tmp_path):
    with_flag, without = tmp_path / "with", tmp_path / "without"
    with_flag.write_text("processor : 0\nflags : fpu avx2 avx512f avx512_bf16 avx512_vnni\n")
    without.write_text("processor : 0\nflags : fpu avx2 avx512f avx512_vnni avx512_bf16x\n")
    cpu = torch.device("cpu")
    assert native_bf16(cpu, with_flag)
    assert not native_bf16(cpu, without)
    assert native_bf16(cpu, tmp_path / "missing")  # cannot tell: claim nothing


def test_trainer_warns_when_bf16_would_be_emulated(tmp_path, monkeypatch, caplog):
    from nextvid.config import merge
    from nextvid.presets import get_preset
    from nextvid.train import loop, precision

    monkeypatch.setattr(precision, "native_bf16", lambda device: False)
    cfg = merge(get_preset("nano"), {"schedule": {"bf16": True}})
    with caplog.at_level(logging.WARNING, logger="nextvid.train.precision"):
        loop.Trainer(cfg, tmp_path / "run", dataset_factory=None)
    assert any("schedule.bf16=false" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="nextvid.train.precision"):
        loop.Trainer(merge(cfg, {"schedule": {"bf16": False}}), tmp_path / "run2", dataset_factory=None)
    assert not caplog.records
