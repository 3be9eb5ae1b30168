"""Progress for long commands: elapsed, rate, ETA; a live line on a terminal, a bounded number of
log lines elsewhere (the workflow's log files), the last update always shown."""

from __future__ import annotations

import io
import logging
import sys
from pathlib import Path

import pytest

from nextvid.progress import Progress, duration

pytestmark = pytest.mark.usefixtures("single_thread")  # see conftest.py


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_duration_reads_like_a_person_writes_it():
    assert [duration(s) for s in (0, 42, 185, 3720, 36000)] == ["0s", "42s", "3m05s", "1h02m", "10h00m"]


def test_line_has_elapsed_rate_and_eta():
    clock = Clock()
    p = Progress(100, "pretrain", "steps", stream=io.StringIO(), clock=clock)
    clock.now = 50.0
    assert p.line(25, "loss=0.5") == "pretrain: 25/100 steps (25%), elapsed 50s, 2 s per step, ETA 2m30s | loss=0.5"
    clock.now = 10.0
    assert "2.5 steps/s" in p.line(25) and "ETA 30s" in p.line(25)


def test_resumed_work_is_not_counted_in_the_rate():
    clock = Clock()
    p = Progress(100, "pretrain", stream=io.StringIO(), clock=clock, start=80)
    clock.now = 10.0
    assert p.line(90) == "pretrain: 90/100 steps (90%), elapsed 10s, 1 steps/s, ETA 10s"


def test_log_lines_are_bounded_in_non_interactive_logs(caplog):
    clock = Clock()
    p = Progress(36_000, "pretrain", stream=io.StringIO(), clock=clock, every_s=30)
    with caplog.at_level(logging.INFO, logger="nextvid.progress"):
        for step in range(1, 36_001):  # one step per second for 10 hours
            clock.now = float(step)
            p.update(step)
    lines = [r.getMessage() for r in caplog.records]
    assert 20 < len(lines) < 150, len(lines)  # not 36,000; not silent for hours either
    assert lines[0].startswith("pretrain: 1/36000") and lines[-1].startswith("pretrain: 36000/36000 steps (100%)")


def test_terminal_gets_one_redrawn_line_and_silenced_ranks_nothing(caplog):
    clock, tty = Clock(), Terminal()
    p = Progress(10, "probe heads", stream=tty, clock=clock)
    with caplog.at_level(logging.INFO, logger="nextvid.progress"):
        for step in range(1, 11):
            clock.now = step * 0.1
            p.update(step)
        p.close()
    assert not caplog.records  # on a terminal: no log lines
    out = tty.getvalue()
    assert out.count("\r") < 10 and "10/10 steps (100%)" in out and out.endswith("\n")
    quiet = Terminal()
    Progress(10, "x", enabled=False, stream=quiet).update(10)
    assert quiet.getvalue() == ""


def test_trainer_logs_progress_in_a_non_interactive_log(tmp_path, caplog):
    from nextvid.config import merge
    from nextvid.presets import get_preset
    from nextvid.train.loop import Trainer

    sys.path.insert(0, str(Path(__file__).parent))
    from clips import DriftingPatterns

    cfg = merge(get_preset("nano"), {"data": {"num_workers": 0}, "schedule": {"total_steps": 4}})
    with caplog.at_level(logging.INFO, logger="nextvid.progress"):
        Trainer(cfg, tmp_path, DriftingPatterns).run()
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("pretrain: 1/4 steps (25%), elapsed") and "ETA" in lines[0]
    assert lines[-1].startswith("pretrain: 4/4 steps (100%)") and "loss=" in lines[-1]
