"""The pretraining engine: schedule boundaries, bitwise resume, atomic checkpoints under kill -9,
two-rank DDP equals one rank, non-finite loss handling, metrics file across restarts."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from nextvid.config import Config, ConfigError, merge
from nextvid.data.badinput import TooManyBadInputs
from nextvid.experiments import VARIANTS
from nextvid.presets import get_preset
from nextvid.train import checkpoint as ckpt, loop
from nextvid.train.loop import Trainer
from nextvid.train.metrics import read_metrics
from nextvid.train.schedule import plan, samples_before, stage_ends
from nextvid.train.step import NonFiniteLossError

sys.path.insert(0, str(Path(__file__).parent))
from clips import DriftingPatterns, PoisonedPatterns, UnreadableEvery  # noqa: E402

HERE = Path(__file__).parent


def nano(**overrides) -> Config:
    base = {"data": {"num_workers": 0}, "train": {"checkpoint_every": 7, "log_every": 3, "deterministic": True}}
    cfg = merge(get_preset("nano"), base)
    return merge(cfg, overrides) if overrides else cfg


def model_state(run_dir: Path) -> dict:
    return ckpt.load(run_dir / "checkpoints" / ckpt.LATEST)["model"]


# ------------------------------------------------------------------------------------------ schedule


def test_paper_schedule_boundaries_match_table8():
    sched = get_preset("vit_l").schedule
    assert stage_ends(sched) == (12_000, 40_000, 120_000, 132_000)
    expect = {  # step: (stage, lr, decoder_lr, tau_draws, frames, batch)
        0: ("warmup", 1e-4, 1e-4, 4, 16, 3072),
        11_999: ("warmup", 5e-4, 5e-4, 4, 16, 3072),
        12_000: ("stable1", 5e-4, 5e-4, 4, 16, 3072),
        39_999: ("stable1", 4.5e-4, 4.5e-4, 4, 16, 3072),
        40_000: ("stable2", 4.5e-4, 8e-4, 1, 16, 3072),
        119_999: ("stable2", 1e-4, 8e-4, 1, 16, 3072),
        120_000: ("cooldown", 1e-4, 3e-4, 1, 64, 768),
        131_999: ("cooldown", 1e-6, 3e-4, 1, 64, 768),
    }
    for step, (stage, lr, dlr, k, frames, batch) in expect.items():
        p = plan(sched, step)
        assert (p.stage, p.tau_draws, p.frames, p.batch_size) == (stage, k, frames, batch), step
        assert p.lr == pytest.approx(lr, rel=1e-9) and p.decoder_lr == pytest.approx(dlr, rel=1e-9), step
    # LR is linear inside a stage: the midpoint of warm-up is the mean of its ends
    assert plan(sched, 5999).lr == pytest.approx(1e-4 + 4e-4 * 5999 / 11999)
    assert samples_before(sched, 132_000) == 120_000 * 3072 + 12_000 * 768


@pytest.mark.parametrize("total", [40, 600, 1320, 13_200])
def test_scaled_schedule_keeps_stage_proportions(total):
    sched = merge(get_preset("tiny"), {"schedule": {"total_steps": total}}).schedule
    ends = stage_ends(sched)
    assert ends[-1] == total and all(b > a for a, b in zip((0,) + ends, ends))
    for end, paper_end in zip(ends, (12_000, 40_000, 120_000, 132_000)):
        assert abs(end - paper_end * total / 132_000) <= 1
    with pytest.raises(ValueError):
        plan(sched, total)


def test_lr_scale_multiplies_every_rate_of_every_stage_and_nothing_else():
    base = merge(get_preset("cpu"), {"schedule": {"total_steps": 200}}).schedule
    scaled = merge(get_preset("cpu"), {"schedule": {"total_steps": 200, "lr_scale": 0.1}}).schedule
    for step in range(200):
        a, b = plan(base, step), plan(scaled, step)
        assert b.lr == pytest.approx(0.1 * a.lr, rel=1e-12) and b.decoder_lr == pytest.approx(
            0.1 * a.decoder_lr, rel=1e-12
        )
        assert (b.stage, b.tau_draws, b.frames, b.batch_size) == (a.stage, a.tau_draws, a.frames, a.batch_size)
    with pytest.raises(ConfigError, match="lr_scale"):
        merge(get_preset("cpu"), {"schedule": {"lr_scale": 0.0}})


# ------------------------------------------------------------------------------------------ resume


def test_resume_equals_uninterrupted_bitwise(tmp_path):
    cfg = nano()
    Trainer(cfg, tmp_path / "straight", DriftingPatterns).run()
    first = Trainer(cfg, tmp_path / "resumed", DriftingPatterns).run(stop_at=17)  # mid-stage, off the checkpoint grid
    assert first == {"steps": 17, "complete": False}
    Trainer(cfg, tmp_path / "resumed", DriftingPatterns).run()
    a, b = model_state(tmp_path / "straight"), model_state(tmp_path / "resumed")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed run diverged from the uninterrupted one"
    # the metrics file of the resumed run describes one run: same steps, same losses, header once
    rows_a, rows_b = read_metrics(tmp_path / "straight/metrics.csv"), read_metrics(tmp_path / "resumed/metrics.csv")
    assert [r["step"] for r in rows_a] == [r["step"] for r in rows_b]
    assert [r["loss"] for r in rows_a] == [r["loss"] for r in rows_b]
    assert (tmp_path / "resumed/metrics.csv").read_text().count("step,stage") == 1


@pytest.mark.parametrize("variant", [v for v in VARIANTS if "vae" not in VARIANTS[v].needs])
def test_every_variant_trains_through_the_trainer(variant, tmp_path):
    """The workflow's variants run through the same train_step (its arguments reach every model)."""
    from nextvid.config import parse_override

    cfg = merge(nano(schedule={"total_steps": 4}), *map(parse_override, VARIANTS[variant].overrides))
    summary = Trainer(cfg, tmp_path, DriftingPatterns).run()
    assert summary["steps"] == 4 and (tmp_path / "done.json").is_file()
    assert all(math.isfinite(float(r["loss"])) for r in read_metrics(tmp_path / "metrics.csv"))


def test_checkpoint_is_complete_and_kept_steps_exist(tmp_path):
    cfg = nano(train={"keep_steps": [14]})
    summary = Trainer(cfg, tmp_path, DriftingPatterns).run()
    kept = sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*.pt"))
    assert kept == [ckpt.step_name(14), ckpt.step_name(cfg.schedule.total_steps)]
    state = ckpt.load(tmp_path / "checkpoints" / ckpt.step_name(14))
    assert state["step"] == 14 and state["samples_seen"] == samples_before(cfg.schedule, 14)
    assert {"model", "optimizer", "rng", "config", "config_hash", "provenance"} <= state.keys()
    assert any(k.startswith("reference.") for k in state["model"]), "EMA reference encoder missing"
    assert state["config"] == cfg.to_dict() and state["provenance"]["git_commit"]
    assert json.loads((tmp_path / "done.json").read_text())["steps"] == summary["steps"]
    # a finished run is not trained again
    again = Trainer(cfg, tmp_path, DriftingPatterns)
    assert again.is_complete() and again.step == cfg.schedule.total_steps


def test_early_stopped_run_takes_the_full_schedules_steps_and_ends_at_stop_at(tmp_path):
    """schedule.stop_at: every step is the full schedule's (LR, tau draws, stage), the run ends at the
    stop with a kept checkpoint and done.json, resumes across the stop, and is not trained again."""
    full = nano()  # 40 steps
    cfg = nano(schedule={"stop_at": 17}, train={"keep_steps": [6]})
    assert Trainer(cfg, tmp_path / "early", DriftingPatterns).run(stop_at=9) == {"steps": 9, "complete": False}
    summary = Trainer(cfg, tmp_path / "early", DriftingPatterns).run()
    assert summary["steps"] == 17 and summary["schedule_steps"] == 40
    assert json.loads((tmp_path / "early/done.json").read_text())["steps"] == 17
    kept = sorted(p.name for p in (tmp_path / "early/checkpoints").glob("step_*.pt"))
    assert kept == [ckpt.step_name(6), ckpt.step_name(17)]
    for row in read_metrics(tmp_path / "early/metrics.csv"):  # a row's step counts the steps done
        p = plan(full.schedule, int(row["step"]) - 1)
        assert (row["stage"], int(row["tau_draws"])) == (p.stage, p.tau_draws) and float(row["lr"]) == pytest.approx(
            p.lr, rel=1e-4
        )  # metrics.csv keeps 5 digits
    # the same weights as the first 17 steps of the whole schedule
    Trainer(full, tmp_path / "full", DriftingPatterns).run(stop_at=17)
    a, b = model_state(tmp_path / "early"), model_state(tmp_path / "full")
    assert all(torch.equal(a[k], b[k]) for k in a)
    again = Trainer(cfg, tmp_path / "early", DriftingPatterns)
    assert again.is_complete() and again.step == 17


def test_changed_config_refuses_to_resume(tmp_path):
    Trainer(nano(), tmp_path, DriftingPatterns).run(stop_at=5)
    with pytest.raises(ckpt.CheckpointError, match="config"):
        Trainer(nano(seed=1), tmp_path, DriftingPatterns)


def test_corrupt_latest_is_an_error_not_a_silent_restart(tmp_path):
    Trainer(nano(), tmp_path, DriftingPatterns).run(stop_at=5)
    latest = tmp_path / "checkpoints" / ckpt.LATEST
    latest.write_bytes(latest.read_bytes()[:1000])
    with pytest.raises(ckpt.CheckpointError, match="cannot be loaded"):
        Trainer(nano(), tmp_path, DriftingPatterns)


KILL_WRITER = """
import sys, torch
from nextvid.train import checkpoint as ckpt
i = 0
while True:
    i += 1
    ckpt.save(sys.argv[1], {"step": i, "payload": torch.full((4_000_000,), float(i))}, keep=i % 3 == 0)
"""


def test_kill_during_checkpoint_write_leaves_loadable_latest(tmp_path):
    for attempt in range(4):
        proc = subprocess.Popen([sys.executable, "-c", KILL_WRITER, str(tmp_path)])
        deadline = time.time() + 60
        while ckpt.latest(tmp_path) is None and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.1 + 0.37 * attempt)  # land at different moments of a write
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        state = ckpt.load(tmp_path / ckpt.LATEST)
        assert torch.all(state["payload"] == float(state["step"]))
        for kept in tmp_path.glob("step_*.pt"):
            s = ckpt.load(kept)
            assert kept.name == ckpt.step_name(s["step"])


# ------------------------------------------------------------------------------------------ failure


def test_non_finite_loss_stops_naming_the_step_and_keeps_last_checkpoint(tmp_path):
    cfg = nano()
    with pytest.raises(NonFiniteLossError, match=r"step 12\b"):  # batch 4: sample 48 is in step 12
        Trainer(cfg, tmp_path, PoisonedPatterns).run()
    state = ckpt.load(tmp_path / "checkpoints" / ckpt.LATEST)
    assert state["step"] == 7
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


# ------------------------------------------------------------------------------------------ DDP


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_gloo_ddp_matches_one_process(tmp_path):
    """Two ranks that also accumulate micro-batches of one clip (DDP's no_sync until the last) train
    what one process does with whole batches. Global mask truncation: two ranks then draw exactly one
    process's masks (per-device truncation, the default, truncates each rank's share on its own:
    tests/test_masking.py)."""
    cfg = nano(
        schedule={"total_steps": 8, "stages": {"3": {"batch_size": 2}}},
        masking={"truncation": "global"},
        train={"log_every": 1, "checkpoint_every": 8, "deterministic": False},
    )
    micro = merge(cfg, {"schedule": {"stages": {str(i): {"micro_batch": 1} for i in range(3)}}})
    (tmp_path / "cfg.json").write_text(json.dumps(micro.to_dict()))
    port = _free_port()
    procs = []
    for rank in range(2):
        env = dict(
            os.environ,
            RANK=str(rank),
            WORLD_SIZE="2",
            LOCAL_RANK=str(rank),
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, str(HERE / "ddp_worker.py"), str(tmp_path / "ddp"), str(tmp_path / "cfg.json")],
                env=env,
            )
        )
    codes = [p.wait(timeout=300) for p in procs]
    assert codes == [0, 0]
    torch.manual_seed(0)
    Trainer(cfg, tmp_path / "single", DriftingPatterns).run()
    ddp_rows, single_rows = read_metrics(tmp_path / "ddp/metrics.csv"), read_metrics(tmp_path / "single/metrics.csv")
    assert len(ddp_rows) == len(single_rows) == 8
    for a, b in zip(ddp_rows, single_rows):
        for key in ("loss", "flow", "align"):
            assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-4, abs=1e-6), (a["step"], key)
    a, b = model_state(tmp_path / "ddp"), model_state(tmp_path / "single")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=k)


# ------------------------------------------------------------------------------------------ bad data


def test_unreadable_samples_are_skipped_counted_and_resume_stays_exact(tmp_path):
    cfg = nano(data={"max_bad_fraction": 0.3})
    Trainer(cfg, tmp_path / "straight", UnreadableEvery).run()
    Trainer(cfg, tmp_path / "resumed", UnreadableEvery).run(stop_at=17)
    Trainer(cfg, tmp_path / "resumed", UnreadableEvery).run()
    for run in ("straight", "resumed"):
        report = json.loads((tmp_path / run / loop.SKIPS).read_text())
        total = samples_before(cfg.schedule, cfg.schedule.total_steps)
        bad = sorted(r["index"] for r in report["records"])
        assert bad == list(range(0, total, UnreadableEvery.every)), run  # each skip counted once, none lost
        assert report["counts"] == {"decode_error": len(bad)} and report["seen"] == total
        assert all(r["path"] == f"/data/clip{r['index']}.mp4" for r in report["records"])
    a, b = model_state(tmp_path / "straight"), model_state(tmp_path / "resumed")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert read_metrics(tmp_path / "straight" / "metrics.csv")[-1]["skipped"] == str(len(bad))


def test_too_many_unreadable_samples_stop_the_run_with_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(loop, "MIN_SEEN", 20)
    with pytest.raises(TooManyBadInputs, match=r"decode_error.*clip0\.mp4"):
        Trainer(nano(data={"max_bad_fraction": 0.1}), tmp_path, UnreadableEvery).run()


def test_a_batch_with_no_readable_sample_is_an_error_naming_the_files(tmp_path, monkeypatch):
    monkeypatch.setattr(UnreadableEvery, "every", 1)
    with pytest.raises(loop.EmptyBatchError, match=r"step 0: .*clip0\.mp4"):
        Trainer(nano(data={"max_bad_fraction": 0.99}), tmp_path, UnreadableEvery).run()
