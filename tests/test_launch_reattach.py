"""Re-attach trusts a recorded local job only while its pid is still that job: a pid reused by an
unrelated process (the job died, the system gave its number to another) means resubmit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nextvid import launch as launcher
from nextvid.launch import JOB_RECORD, _process_identity, _reattach
from nextvid.presets import get_preset

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="needs /proc (Linux)")


@pytest.fixture
def unrelated():
    """A live process that is not a job of any run: what a reused pid points at."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def record(pid: int, cfg, **extra) -> dict:
    return {"job_id": str(pid), "launcher": "local", "config_hash": cfg.training_hash(), **extra}


def test_a_reused_pid_is_not_reattached(unrelated, tmp_path):
    cfg = get_preset("nano")
    true_identity = _process_identity(unrelated)
    assert true_identity is not None
    # the recorded job started at another time: the pid now belongs to someone else
    stale = record(unrelated, cfg, process={**true_identity, "start_ticks": true_identity["start_ticks"] - 1})
    assert _reattach(stale, tmp_path / "submitit") is None
    # a record of an older launcher (no start time): the process must be this run's submitit controller
    assert _reattach(record(unrelated, cfg), tmp_path / "submitit") is None
    # the recorded process itself is re-attached
    assert _reattach(record(unrelated, cfg, process=true_identity), tmp_path / "submitit") is not None


def test_launch_resubmits_when_the_recorded_pid_was_reused(unrelated, tmp_path, monkeypatch):
    cfg = get_preset("nano")
    out = tmp_path / "run"
    out.mkdir()
    identity = _process_identity(unrelated)
    (out / JOB_RECORD).write_text(json.dumps(record(unrelated, cfg, process={**identity, "start_ticks": 1})))
    submitted = []

    class FakeExecutor:
        def submit(self, fn):
            submitted.append(fn)
            return type("Job", (), {"job_id": str(unrelated)})()

    monkeypatch.setattr(launcher, "make_executor", lambda *a: FakeExecutor())
    new = launcher.launch(cfg, out, "local")
    assert len(submitted) == 1, "a reused pid was taken for the run's job"
    assert new["process"] == identity and json.loads((out / JOB_RECORD).read_text())["process"] == identity


def test_the_trainers_info_lines_reach_the_local_jobs_log(tmp_path):
    """A real PretrainJob under submitit's local executor: it fails for want of data, but only after
    the trainer has logged at INFO (a stale temp file removed, the stage it starts), and those lines
    are in the job's log, not only its warnings."""
    from nextvid.config import merge

    cfg = merge(get_preset("nano"), {"data": {"num_workers": 0}, "train": {"device": "cpu"}})
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / ".latest.pt.abc123.tmp").write_bytes(b"half")
    executor = launcher.make_executor(cfg, out / "submitit", "local")
    job = executor.submit(launcher.PretrainJob(cfg.to_dict(), str(out), "test"))
    with pytest.raises(Exception, match="no pretraining sources"):
        job.result()
    log = job.stderr() or ""
    assert "INFO nextvid.train.loop: removed" in log and ".latest.pt.abc123.tmp" in log, log[-3000:]
    assert "INFO nextvid.train.loop: stage warmup from step 0" in log, log[-3000:]
