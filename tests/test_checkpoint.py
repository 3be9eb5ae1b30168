"""Checkpoint writes under faults: a kill between any two filesystem operations of `save` leaves a
loadable `latest.pt`, never at a kept step whose file is missing, and the next start removes the temp
files it left. done.json names only kept checkpoints that exist."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch

from nextvid.config import merge
from nextvid.presets import get_preset
from nextvid.train import checkpoint as ckpt
from nextvid.train.loop import Trainer

sys.path.insert(0, str(Path(__file__).parent))
from clips import DriftingPatterns  # noqa: E402

# every filesystem operation `save` makes goes through one of these
FS_OPS = [(os, "replace"), (os, "rename"), (os, "link"), (os, "unlink"), (os, "fsync"), (torch, "save")]


class Killed(BaseException):
    """The process died here (a BaseException: no `except Exception` may swallow it)."""


class Faults:
    """Counts `save`'s filesystem operations; from operation `kill_at` on, every one raises, as if the
    process had been killed just before it (so no cleanup in a `finally` runs either)."""

    def __init__(self, monkeypatch, kill_at: int | None = None):
        self.count, self.kill_at, self.names = 0, kill_at, []
        for module, name in FS_OPS:
            monkeypatch.setattr(module, name, self._wrap(getattr(module, name), name))

    def _wrap(self, fn, name):
        def op(*args, **kwargs):
            if self.kill_at is not None and self.count >= self.kill_at:
                raise Killed(name)
            self.count += 1
            self.names.append(name)
            return fn(*args, **kwargs)

        return op


def state(step: int) -> dict:
    return {"step": step, "payload": torch.full((1000,), float(step))}


def check_invariants(directory: Path, kept: set[int], steps: set[int]) -> None:
    """latest.pt is complete, at one of `steps`; if that step is kept, its file exists with the same
    bytes; every kept file present is complete and names its own step."""
    latest = ckpt.load(directory / ckpt.LATEST)
    assert latest["step"] in steps
    assert torch.all(latest["payload"] == float(latest["step"]))
    if latest["step"] in kept:
        kept_file = directory / ckpt.step_name(latest["step"])
        assert kept_file.is_file(), f"latest.pt is at kept step {latest['step']}, whose file is missing"
    for path in directory.glob("step_*.pt"):
        s = ckpt.load(path)
        assert path.name == ckpt.step_name(s["step"]) and torch.all(s["payload"] == float(s["step"]))


def count_ops(monkeypatch, tmp_path: Path, keep: bool) -> int:
    with monkeypatch.context() as m:
        faults = Faults(m)
        ckpt.save(tmp_path / "count", state(20), keep=keep)
    assert {"replace", "save"} <= set(faults.names)
    return faults.count


@pytest.mark.parametrize("previous_kept", [False, True])
@pytest.mark.parametrize("keep", [False, True])
def test_a_kill_between_any_two_operations_of_save_keeps_the_set_consistent(monkeypatch, tmp_path, keep, previous_kept):
    n_ops = count_ops(monkeypatch, tmp_path, keep)
    kept = {10} if previous_kept else set()
    kept |= {20} if keep else set()
    dirs = [tmp_path / f"kill{kill_at}" for kill_at in range(n_ops + 1)]
    for kill_at, directory in enumerate(dirs):
        ckpt.save(directory, state(10), keep=previous_kept)
        with monkeypatch.context() as m:
            Faults(m, kill_at)
            try:
                ckpt.save(directory, state(20), keep=keep)
            except Killed:
                pass
        check_invariants(directory, kept, {10, 20})
    for directory in dirs:
        # the next start: temp files of the run's own naming are removed, nothing else is
        (directory / ".notes.tmp").write_text("not ours")
        ckpt.clean_stale(directory)
        assert sorted(p.name for p in directory.iterdir() if p.name.startswith(".")) == [".notes.tmp"]
        # the resumed run writes the step again, completely
        ckpt.save(directory, state(20), keep=keep)
        check_invariants(directory, kept, {20})
        assert (directory / ckpt.step_name(20)).is_file() == keep


def nano(**overrides):
    base = {
        "data": {"num_workers": 0},
        "train": {"checkpoint_every": 3, "log_every": 3, "deterministic": True},
        "schedule": {"total_steps": 6},
    }
    return merge(merge(get_preset("nano"), base), overrides)


def test_resume_recreates_a_kept_step_left_missing_by_an_older_save(tmp_path):
    """An older `save` renamed latest.pt into place before linking the kept step: a kill between the
    two left latest.pt at a kept step without its file. The resumed run recreates it."""
    cfg = nano(train={"keep_steps": [3]})
    Trainer(cfg, tmp_path, DriftingPatterns).run(stop_at=3)
    kept = tmp_path / "checkpoints" / ckpt.step_name(3)
    kept.unlink()
    (tmp_path / "checkpoints" / ".latest.pt.abc123.tmp").write_bytes(b"half")
    trainer = Trainer(cfg, tmp_path, DriftingPatterns)
    assert trainer.step == 3 and ckpt.load(kept)["step"] == 3
    assert not list((tmp_path / "checkpoints").glob(".*.tmp"))
    summary = trainer.run()
    done = json.loads((tmp_path / "done.json").read_text())
    assert done["kept"] == [str(tmp_path / "checkpoints" / ckpt.step_name(s)) for s in (3, 6)] == summary["kept"]
    assert all(ckpt.load(p)["step"] == s for p, s in zip(done["kept"], (3, 6)))


def test_a_kept_step_passed_without_its_file_fails_at_start_not_at_probe_time(tmp_path):
    Trainer(nano(), tmp_path, DriftingPatterns).run(stop_at=4)
    with pytest.raises(ckpt.CheckpointError, match=r"kept steps \[3\]"):
        Trainer(nano(train={"keep_steps": [3]}), tmp_path, DriftingPatterns)


def test_done_json_is_not_written_when_a_kept_file_is_missing(tmp_path, monkeypatch):
    def lose_kept(directory, state, keep=False):
        out = original(directory, state, keep)
        if keep and state["step"] == 3:
            (Path(directory) / ckpt.step_name(3)).unlink()
        return out

    original = ckpt.save
    monkeypatch.setattr(ckpt, "save", lose_kept)
    with pytest.raises(ckpt.CheckpointError, match="step_0000003.pt \\(missing\\)"):
        Trainer(nano(train={"keep_steps": [3]}), tmp_path, DriftingPatterns).run()
    assert not (tmp_path / "done.json").exists()


def test_train_deterministic_holds_for_the_run_and_is_undone_after_it(tmp_path, monkeypatch):
    """torch's deterministic switch is process-wide: the Trainer turns it on for its steps only and
    gives the process back as it found it (a later probe or test in the same process is unaffected)."""
    import nextvid.train.loop as loop

    seen = []

    def recording_step(*args, **kwargs):
        seen.append(torch.are_deterministic_algorithms_enabled())
        return original(*args, **kwargs)

    original = loop.train_step
    monkeypatch.setattr(loop, "train_step", recording_step)
    torch.use_deterministic_algorithms(False)
    trainer = Trainer(nano(), tmp_path, DriftingPatterns)
    assert not torch.are_deterministic_algorithms_enabled(), "switched on before the run"
    trainer.run(stop_at=2)
    assert seen == [True, True] and not torch.are_deterministic_algorithms_enabled()
    Trainer(nano(train={"deterministic": False}), tmp_path / "free", DriftingPatterns).run(stop_at=1)
    assert seen[-1] is False
