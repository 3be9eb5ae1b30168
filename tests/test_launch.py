"""The submitit launcher on real (smoke-scale embedded) data: the CLI trains to completion; a job
preempted mid-run is requeued by submitit's Checkpointable and ends bitwise equal to an uninterrupted
run; a rerun re-attaches to a live job, resubmits a dead one (which resumes) and returns at once
when the run is complete."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from nextvid.config_resolve import resolve_pretrain_config
from nextvid.launch import JOB_RECORD, LaunchError, launch
from nextvid.train import checkpoint as ckpt
from nextvid.train.loop import DONE
from nextvid.train.metrics import read_metrics

NANO = ["data.num_workers=0", "train.deterministic=true", "train.checkpoint_every=4", "train.log_every=2"]


def nano_cfg(mixture: Path, *extra: str):
    """The config `nextvid pretrain --preset nano --mixture MIXTURE --set ...` launches."""
    return resolve_pretrain_config("nano", None, NANO + list(extra), mixture)


def final_model(run: Path) -> dict:
    return ckpt.load(run / "checkpoints" / ckpt.LATEST)["model"]


def wait_for(predicate, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def logged_steps(run: Path) -> int:
    path = run / "metrics.csv"
    rows = read_metrics(path) if path.is_file() else []
    return int(rows[-1]["step"]) if rows else 0


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


@pytest.fixture(scope="module")
def reference_run(embedded_smoke, tmp_path_factory):
    """The uninterrupted run every interrupted one must equal. Through the local launcher like them:
    a job process has torch's default thread count, and a different count changes float reductions."""
    out = tmp_path_factory.mktemp("reference") / "run"
    launch(nano_cfg(embedded_smoke / "mixture.json"), out, "local", wait=True)
    return out


def test_pretrain_command_trains_on_the_embedded_corpus(embedded_smoke, tmp_path):
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "nextvid",
        "pretrain",
        "--preset",
        "nano",
        "--mixture",
        str(embedded_smoke / "mixture.json"),
        *[a for kv in NANO for a in ("--set", kv)],
        "--set",
        "train.keep_steps=[8]",
        "--out",
        str(out),
        "--launcher",
        "local",
        "--wait",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    done = json.loads((out / DONE).read_text())
    assert (
        done["steps"] == 40
        and (out / "checkpoints" / ckpt.step_name(8)).is_file()
        and (out / "checkpoints" / ckpt.step_name(40)).is_file()
    )
    rows = read_metrics(out / "metrics.csv")
    assert [int(r["step"]) for r in rows][-1] == 40 and all(
        float(r["flow"]) > 0 and float(r["align"]) > 0 for r in rows
    )
    assert json.loads((out / "skips.json").read_text())["bad"] == 0
    # a second run is a no-op that reports completion
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and json.loads(again.stdout.strip().splitlines()[-1])["state"] == "COMPLETE"


def test_missing_data_is_a_config_error_before_submission(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "nextvid",
        "pretrain",
        "--preset",
        "nano",
        "--set",
        "data.sources=[{name: a, manifest: nope.tsv, weight: 1}]",
        "--out",
        str(tmp_path / "run"),
        "--launcher",
        "local",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2 and "data.sources.0.manifest: nope.tsv does not exist" in proc.stderr
    assert not (tmp_path / "run" / JOB_RECORD).exists()


def test_preempted_local_job_is_requeued_and_equals_uninterrupted(embedded_smoke, reference_run, tmp_path):
    out = tmp_path / "run"
    record = launch(nano_cfg(embedded_smoke / "mixture.json"), out, "local")
    controller = int(record["job_id"])
    wait_for(lambda: logged_steps(out) >= 10, 300, "step 10")
    tasks = children(controller)
    assert len(tasks) == 1
    os.kill(tasks[0], signal.SIGUSR2)  # what SLURM sends on preemption / before a time limit
    launch(nano_cfg(embedded_smoke / "mixture.json"), out, "local", wait=True)  # re-attaches and waits
    log = "".join(p.read_text() for p in (out / "submitit").glob("*_log.*"))
    assert "this job is preempted" in log and "Requeued job" in log
    # the requeued run's own log line says where it resumed (the trainer's INFO lines reach the job log)
    resumed = re.search(r"INFO nextvid\.train\.loop: resumed from \S+latest\.pt at step (\d+)", log)
    assert resumed and 4 <= int(resumed[1]) < 40, log[-3000:]
    assert json.loads((out / JOB_RECORD).read_text())["job_id"] == record["job_id"]
    a, b = final_model(reference_run), final_model(out)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_launcher_reattaches_after_being_killed_and_resubmits_a_dead_job(embedded_smoke, reference_run, tmp_path):
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-c",
        "import sys; from nextvid.cli import main; sys.exit(main(sys.argv[1:]))",
        "pretrain",
        "--preset",
        "nano",
        "--mixture",
        str(embedded_smoke / "mixture.json"),
        *[a for kv in NANO for a in ("--set", kv)],
        "--out",
        str(out),
        "--launcher",
        "local",
        "--wait",
    ]
    launcher = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for(lambda: (out / JOB_RECORD).is_file() and logged_steps(out) >= 4, 300, "the job to start training")
    first = json.loads((out / JOB_RECORD).read_text())["job_id"]
    launcher.kill()  # the launching process dies; the job lives on
    launcher.wait()
    cfg = nano_cfg(embedded_smoke / "mixture.json")
    record = launch(cfg, out, "local")  # no wait: must re-attach, not submit a second job
    assert record["job_id"] == first and len(list((out / "submitit").glob("*_submitted.pkl"))) == 1
    # now the node dies: controller and task killed without a chance to checkpoint
    wait_for(lambda: logged_steps(out) >= 16, 300, "step 16")
    controller = int(first)
    for pid in children(controller) + [controller]:
        os.kill(pid, signal.SIGKILL)
    wait_for(
        lambda: (
            not Path(f"/proc/{controller}").exists()
            or "Z" in Path(f"/proc/{controller}/stat").read_text().split(")")[-1][:3]
        ),
        30,
        "the controller to die",
    )
    resumed_from = int(ckpt.load(out / "checkpoints" / ckpt.LATEST)["step"])
    assert resumed_from >= 12
    record = launch(cfg, out, "local", wait=True)  # resubmits; the new job resumes from the checkpoint
    assert record["job_id"] != first
    assert json.loads((out / DONE).read_text())["steps"] == 40
    steps = [int(r["step"]) for r in read_metrics(out / "metrics.csv")]
    assert steps == sorted(set(steps)), "the metrics file has one row per logged step across the restart"
    a, b = final_model(reference_run), final_model(out)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert launch(cfg, out, "local")["state"] == "COMPLETE"
    # a changed config (here a run extended past its end) is not told the finished run is its own
    with pytest.raises(LaunchError, match="finished run of another config"):
        launch(nano_cfg(embedded_smoke / "mixture.json", "schedule.total_steps=80"), out, "local")


def test_cached_mixture_trains_like_the_streamed_one(embedded_smoke, tmp_path):
    from nextvid.data.mixture import cache_mixture, pretraining_dataset, read_mixture

    cached = cache_mixture(embedded_smoke / "mixture.json", tmp_path / "cache", step=1, size=144)
    sources = read_mixture(cached)
    assert [s["name"] for s in sources] == [s["name"] for s in read_mixture(embedded_smoke / "mixture.json")]
    assert all(Path(s["shards"]).joinpath("index.json").is_file() for s in sources)
    cfg = nano_cfg(cached)
    streamed = pretraining_dataset(nano_cfg(embedded_smoke / "mixture.json"), 6)
    ds = pretraining_dataset(cfg, 6)
    for g in range(12):
        a, b = ds[g], streamed[g]
        assert a["video"].shape == (3, 6, 64, 64) and (a["source"], a["sample"]) == (b["source"], b["sample"])
        if sources[a["source"]]["name"] != "real":  # 144x144 synthetic clips: the cache changes nothing
            assert torch.equal(a["video"], b["video"])
