"""Against a real SLURM (tests/slurm/start.sh; docs/slurm.md): `nextvid pretrain --launcher slurm`
completes through sbatch; a job that reaches its time limit and a job preempted by a higher-priority
partition are requeued by submitit's Checkpointable (USR2), resume from their checkpoints and end
bitwise equal to the uninterrupted run; a killed `nextvid pretrain --wait` is rerun and re-attaches
to its job instead of submitting a second one; `snakemake --profile slurm all` runs the smoke DAG;
tests/slurm/start.sh clears the jobs of a cluster that was killed instead of stopped.

Skipped, with the reason, when no SLURM controller answers (an error instead with NEXTVID_REQUIRE_SLURM=1,
as in CI). Every pretraining job is the nano preset on the smoke-scale embedded corpus (40 steps, about
35 s each on an idle 2-core machine)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from nextvid.config_resolve import resolve_pretrain_config
from nextvid.launch import JOB_RECORD, launch
from nextvid.train import checkpoint as ckpt
from nextvid.train.loop import DONE
from nextvid.train.metrics import read_metrics

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ["data.num_workers=0", "train.deterministic=true", "train.checkpoint_every=4", "train.log_every=2"]
# one CPU task per job. timeout_min >= 60: submitit counts a USR2 as a time-out (of which it requeues
# only launch.max_timeouts) once the job has run min(0.8 T, T - 10 min), which for T <= 10 is always
SLURM = [
    "launch.gpus_per_node=0",
    "launch.cpus_per_task=1",
    "launch.mem_gb=2",
    "launch.timeout_min=60",
    "launch.signal_delay_s=120",
    "launch.partition=debug",
]
JOB_TIMEOUT = 600  # seconds any single run may take on a loaded 2-core machine


def _slurm_problem() -> str | None:
    """Why the SLURM tests cannot run here, or None."""
    if not shutil.which("sinfo") or not shutil.which("sbatch"):
        return "no SLURM client on PATH (start a local cluster as root: bash tests/slurm/start.sh)"
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return "`scontrol ping` hung for 10 s (no SLURM config? start a local cluster: bash tests/slurm/start.sh)"
    if not re.search(r"\bis UP\b", ping.stdout):
        said = (ping.stdout + ping.stderr).strip().splitlines()[:1]
        return f"no SLURM controller answers `scontrol ping` ({' '.join(said)[:200]}); start one: bash tests/slurm/start.sh"
    parts = subprocess.run(["sinfo", "-h", "-o", "%R %t"], capture_output=True, text=True, timeout=20).stdout.split(
        "\n"
    )
    states = dict(line.split() for line in parts if line.strip())
    if states.get("debug") not in {"idle", "mix", "alloc"}:
        return (
            f"partition `debug` has no usable node (sinfo: {states}); this is not the cluster of tests/slurm/start.sh"
        )
    acct = subprocess.run(["sacct", "-n", "-X", "-S", "now", "-o", "JobID"], capture_output=True, text=True, timeout=20)
    if acct.returncode != 0:
        return f"sacct does not work ({acct.stderr.strip()[:200]}): the launcher needs it to re-attach"
    if not shutil.which("rsync"):
        return "rsync is missing: the SLURM launcher snapshots the code with it"
    return None


PROBLEM = _slurm_problem()
if PROBLEM and os.environ.get("NEXTVID_REQUIRE_SLURM") == "1":  # CI starts SLURM: never skip silently there
    pytest.fail(f"NEXTVID_REQUIRE_SLURM=1 but SLURM cannot be used: {PROBLEM}", pytrace=False)
pytestmark = [pytest.mark.slow, pytest.mark.skipif(PROBLEM is not None, reason=f"SLURM: {PROBLEM}")]


def _sh(*cmd: str, check: bool = True) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout.strip()


def queue() -> str:
    """`squeue` as a timeout's message shows it: a job that never started says why (Resources: jobs of
    another session holding the node, e.g. recovered by a controller that was not stopped)."""
    out = subprocess.run(["squeue", "-o", "%A %P %T %M %R %j"], capture_output=True, text=True, timeout=30)
    return (out.stdout + out.stderr).strip()


def wait_for(predicate, timeout: float, what: str, every: float = 0.2) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; the queue:\n{queue()}")
        time.sleep(every)


def nano_cfg(mixture: Path):
    """The config `pretrain_cmd` launches (the same job name, the same run)."""
    return resolve_pretrain_config("nano", None, TRAIN + SLURM, mixture)


def pretrain_cmd(mixture: Path, out: Path) -> list[str]:
    sets = [a for kv in TRAIN + SLURM for a in ("--set", kv)]
    return [
        sys.executable,
        "-m",
        "nextvid",
        "pretrain",
        "--preset",
        "nano",
        "--mixture",
        str(mixture),
        *sets,
        "--out",
        str(out),
        "--launcher",
        "slurm",
        "--wait",
    ]


def logged_steps(run: Path) -> int:
    path = run / "metrics.csv"
    rows = read_metrics(path) if path.is_file() else []
    return int(rows[-1]["step"]) if rows else 0


def job_field(job_id: str, field: str) -> str:
    """A field of `scontrol show job` (e.g. JobState, Restarts), '' once the job is gone."""
    out = subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True, timeout=30).stdout
    for token in out.split():
        if token.startswith(field + "="):
            return token.split("=", 1)[1]
    return ""


def accounting(job_id: str) -> list[str]:
    """The job's states in sacct, one per run (-D: requeued runs too)."""
    return _sh("sacct", "-n", "-X", "-D", "-P", "-j", job_id, "-o", "State").split()


def submitit_log(run: Path) -> str:
    return "".join(p.read_text() for p in sorted((run / "submitit").glob("*_log.*")))


def final_model(run: Path) -> dict:
    return ckpt.load(run / "checkpoints" / ckpt.LATEST)["model"]


def assert_same_model(reference: Path, run: Path) -> None:
    a, b = final_model(reference), final_model(run)
    assert a.keys() == b.keys()
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"{run} ends with different weights than the uninterrupted run: {differ[:5]}"


@pytest.fixture
def cancel_left_over():
    """Jobs of a failed test must not keep the node busy: cancel the job recorded in each run dir."""
    runs: list[Path] = []
    yield runs.append
    for run in runs:
        if (run / JOB_RECORD).is_file():
            subprocess.run(["scancel", json.loads((run / JOB_RECORD).read_text())["job_id"]], capture_output=True)


@pytest.fixture(scope="module")
def mixture(embedded_smoke) -> Path:
    return embedded_smoke / "mixture.json"


@pytest.fixture(scope="module")
def uninterrupted(mixture, tmp_path_factory) -> Path:
    """`nextvid pretrain --launcher slurm --wait`, run once: the run every interrupted one must equal."""
    out = tmp_path_factory.mktemp("slurm-uninterrupted") / "run"
    t0 = time.monotonic()
    try:
        proc = subprocess.run(pretrain_cmd(mixture, out), capture_output=True, text=True, timeout=JOB_TIMEOUT)
    except subprocess.TimeoutExpired as late:
        said = late.stderr.decode() if isinstance(late.stderr, bytes) else late.stderr or ""
        raise AssertionError(
            f"`nextvid pretrain --wait` took over {JOB_TIMEOUT} s; it said:\n{said[-2000:]}\nthe queue:\n{queue()}"
        ) from None
    assert proc.returncode == 0, f"nextvid pretrain --launcher slurm failed:\n{proc.stderr[-3000:]}"
    print(f"uninterrupted SLURM run: {time.monotonic() - t0:.0f} s")
    return out


def seconds(duration: str) -> int:
    """SLURM's [D-]HH:MM:SS (or MM:SS) as seconds."""
    days, _, clock = duration.rpartition("-")
    parts = [int(p) for p in clock.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0)
    return int(days or 0) * 86400 + parts[0] * 3600 + parts[1] * 60 + parts[2]


def task_pid(run: Path) -> int:
    """The pid of the job's Python task (srun's child running submitit for `run`)."""
    folder = str(run / "submitit")
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            comm = (proc / "comm").read_text().strip()
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if comm.startswith("python") and b"submitit.core._submit" in argv and folder.encode() in argv:
            return int(proc.name)
    raise AssertionError(f"no process of the job for {run} on this machine")


def wait_for_requeue(run: Path, job_id: str, on_requeued=None) -> tuple[int, list[dict]]:
    """Wait until submitit has requeued the job; then, while the job waits to start again, note the
    step of the checkpoint it will resume from and the metrics rows up to that step."""
    wait_for(lambda: int(job_field(job_id, "Restarts") or 0) >= 1, 240, f"job {job_id} to be requeued")
    if on_requeued:
        on_requeued()
    resumed = int(ckpt.load(run / "checkpoints" / ckpt.LATEST)["step"])
    return resumed, [r for r in read_metrics(run / "metrics.csv") if int(r["step"]) <= resumed]


def assert_resumed(run: Path, resumed: int, rows_before: list[dict]) -> None:
    """The requeued run resumed from its checkpoint at `resumed` (not from scratch) and finished."""
    assert resumed >= 8, f"the job was interrupted after step 10 but its latest checkpoint is step {resumed}"
    rows = read_metrics(run / "metrics.csv")
    # a run that started over would have rewritten these rows (the checkpoint's own step included), with its own timings
    assert [r for r in rows if int(r["step"]) <= resumed] == [r for r in rows_before if int(r["step"]) <= resumed], (
        "rows from before the interruption were rewritten"
    )
    # every logged step exactly once, in order, across the requeue
    steps = [int(r["step"]) for r in rows]
    assert steps == list(range(2, 41, 2)), steps
    assert json.loads((run / DONE).read_text())["steps"] == 40
    # the job's own log says where the requeued run resumed (the trainer's INFO lines reach it)
    logs = "".join(p.read_text(errors="replace") for p in (run / "submitit").rglob("*_log.err"))
    assert f"latest.pt at step {resumed}" in logs and "INFO nextvid.train.loop: resumed from" in logs, logs[-3000:]


def wait_states(job_id: str, done, timeout: float = 30) -> list[str]:
    """sacct lags the job by a second or so: poll until `done(states)`."""
    states: list[str] = []

    def ready() -> bool:
        nonlocal states
        states = accounting(job_id)
        return done(states)

    try:
        wait_for(ready, timeout, f"sacct to record job {job_id}", every=1)
    except AssertionError:
        pass
    return states


def test_pretrain_completes_through_sbatch(uninterrupted):
    record = json.loads((uninterrupted / JOB_RECORD).read_text())
    assert record["launcher"] == "slurm"
    script = (uninterrupted / "submitit" / f"{record['job_id']}_submission.sh").read_text()
    assert "#SBATCH --partition=debug" in script and "#SBATCH --signal=USR2@120" in script
    assert wait_states(record["job_id"], lambda s: s == ["COMPLETED"]) == ["COMPLETED"]
    assert json.loads((uninterrupted / DONE).read_text())["steps"] == 40
    assert (uninterrupted / "checkpoints" / ckpt.step_name(40)).is_file()
    assert [int(r["step"]) for r in read_metrics(uninterrupted / "metrics.csv")] == list(range(2, 41, 2))
    # the job ran the snapshot of the code taken at submission, not the live tree
    assert (uninterrupted / "code" / "nextvid" / "launch.py").is_file()


def test_job_reaching_its_time_limit_resumes_and_equals_uninterrupted(
    mixture, uninterrupted, tmp_path, cancel_left_over
):
    run = tmp_path / "run"
    cancel_left_over(run)
    cfg = nano_cfg(mixture)
    job_id = launch(cfg, run, "slurm")["job_id"]
    wait_for(lambda: logged_steps(run) >= 10, JOB_TIMEOUT, "step 10")
    # Shorten the limit so that the job ends 60-120 s from now: inside its --signal=USR2@120 window, so
    # SLURM sends USR2 at its next time-limit check, as it does before any limit. Those checks come
    # every 30 s, and the run could finish first: the task is paused (SIGSTOP) until then. SLURM sends a
    # signal as SIGCONT + the signal, so the task wakes up to handle it.
    task = task_pid(run)
    os.kill(task, signal.SIGSTOP)
    try:
        limit_min = seconds(job_field(job_id, "RunTime")) // 60 + 2
        _sh("scontrol", "update", f"JobId={job_id}", f"TimeLimit={limit_min}")
        assert job_field(job_id, "TimeLimit") == f"00:{limit_min:02d}:00"
        wait_for(lambda: "Caught signal SIGUSR2" in submitit_log(run), 90, "SLURM to send USR2 before the time limit")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(task, signal.SIGCONT)  # only if SLURM never signalled it
    # Once requeued, give the job its hour back, or the next run would be signalled at once as well.
    resumed, rows = wait_for_requeue(run, job_id, lambda: _sh("scontrol", "update", f"JobId={job_id}", "TimeLimit=60"))
    record = launch(cfg, run, "slurm", wait=True)  # re-attaches to the requeued job and waits
    assert record["job_id"] == job_id
    log = submitit_log(run)
    assert "Caught signal SIGUSR2" in log and f"Requeued job {job_id}" in log, log[-2000:]
    assert log.count("Starting with JobEnvironment") == 2
    states = wait_states(job_id, lambda s: s[-1:] == ["COMPLETED"])
    assert states == ["REQUEUED", "COMPLETED"], states
    assert_resumed(run, resumed, rows)
    assert_same_model(uninterrupted, run)


def test_job_preempted_by_urgent_partition_resumes_and_equals_uninterrupted(
    mixture, uninterrupted, tmp_path, cancel_left_over
):
    cpus = _sh("sinfo", "-h", "-p", "urgent", "-o", "%c")
    if not cpus:
        pytest.skip("no partition `urgent` on this cluster (tests/slurm/start.sh configures one)")
    run = tmp_path / "run"
    cancel_left_over(run)
    cfg = nano_cfg(mixture)
    job_id = launch(cfg, run, "slurm")["job_id"]
    wait_for(lambda: logged_steps(run) >= 10, JOB_TIMEOUT, "step 10")
    # a job of the high-priority partition that needs the whole node
    urgent = _sh(
        "sbatch",
        "--parsable",
        "-p",
        "urgent",
        "-c",
        cpus,
        "--mem=100M",
        "-J",
        "nextvid-test-urgent",
        "-o",
        "/dev/null",
        "--wrap",
        "sleep 2",
    )
    try:
        resumed, rows = wait_for_requeue(run, job_id)
        launch(cfg, run, "slurm", wait=True)
    finally:
        subprocess.run(["scancel", urgent], capture_output=True)
    log = submitit_log(run)
    assert "Caught signal SIGUSR2" in log and "this job is preempted" in log and f"Requeued job {job_id}" in log, log[
        -2000:
    ]
    assert wait_states(urgent, lambda s: s == ["COMPLETED"]) == ["COMPLETED"]
    states = wait_states(job_id, lambda s: s[-1:] == ["COMPLETED"])
    assert states == ["REQUEUED", "COMPLETED"], states
    # the urgent job ran in between: after the preempted run ended and before the resumed one started
    lines = _sh("sacct", "-n", "-X", "-D", "-P", "-j", f"{job_id},{urgent}", "-o", "JobID,Start,End").splitlines()
    runs = [line.split("|") for line in lines]
    preempted, resumed_run = [r for r in runs if r[0] == job_id]
    (urgent_run,) = [r for r in runs if r[0] == urgent]
    assert preempted[2] <= urgent_run[1] <= resumed_run[1], lines  # ISO times
    assert_resumed(run, resumed, rows)
    assert_same_model(uninterrupted, run)


def test_rerun_launcher_reattaches_instead_of_submitting_again(mixture, uninterrupted, tmp_path, cancel_left_over):
    run = tmp_path / "run"
    cancel_left_over(run)
    cmd = pretrain_cmd(mixture, run)
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for(lambda: (run / JOB_RECORD).is_file() and logged_steps(run) >= 4, JOB_TIMEOUT, "the job to start training")
    job_id = json.loads((run / JOB_RECORD).read_text())["job_id"]
    first.kill()  # the launching process dies; the SLURM job does not
    first.wait()
    assert job_field(job_id, "JobState") == "RUNNING"
    name = f"nextvid-{nano_cfg(mixture).training_hash()}"
    second = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: set[str] = set()
    while second.poll() is None:  # while the rerun waits, the queue holds exactly the one job
        seen.update(_sh("squeue", "-h", "-n", name, "-o", "%A").split())
        time.sleep(1)
    out, err = second.communicate()
    assert second.returncode == 0, err[-3000:]
    assert json.loads(out.strip().splitlines()[-1])["job_id"] == job_id
    assert seen == {job_id}, f"squeue showed jobs {seen} for {name}; expected only {job_id}"
    assert json.loads((run / JOB_RECORD).read_text())["job_id"] == job_id
    assert [p.name for p in (run / "submitit").glob("*_submitted.pkl")] == [f"{job_id}_submitted.pkl"]
    assert "recorded slurm job" in err and "submitted slurm job" not in err, err[-2000:]
    assert_same_model(uninterrupted, run)


def test_rerun_launcher_does_not_submit_twice_when_sacct_fails(mixture, tmp_path, cancel_left_over, monkeypatch):
    """Without slurmdbd (or with a busy one) sacct fails; the launcher must still see the live job."""
    run = tmp_path / "run"
    cancel_left_over(run)
    cfg = nano_cfg(mixture)
    first = launch(cfg, run, "slurm")["job_id"]
    wait_for(lambda: job_field(first, "JobState") == "RUNNING", JOB_TIMEOUT, f"job {first} to start")
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "sacct").write_text("#!/bin/sh\necho 'sacct: error: Slurm accounting storage is disabled' >&2\nexit 1\n")
    (shim / "sacct").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim}{os.pathsep}{os.environ['PATH']}")
    try:
        again = launch(cfg, run, "slurm")["job_id"]
    finally:
        subprocess.run(["scancel", first], capture_output=True)
    name = f"nextvid-{cfg.training_hash()}"
    if again != first:
        subprocess.run(["scancel", again], capture_output=True)
    assert again == first, f"a second job {again} was submitted for the run of live job {first} ({name})"


WORKFLOW = [
    ROOT / "Snakefile",
    ROOT / "workflow/config/smoke.yaml",
    ROOT / "workflow/profiles/slurm/config.yaml",
    ROOT / "workflow/profiles/install.sh",
]
SLURM_RULES = {"data_embedded", "probe", "probe_reference", "report_features", "generate"}  # the rest are local rules


def test_snakemake_profile_slurm_runs_the_smoke_dag(tmp_path):
    """`snakemake --profile slurm all` as a user runs it from the repository root (the profile linked into
    the user's config by workflow/profiles/install.sh), on the smoke config, in a scratch directory."""
    missing = [str(p.relative_to(ROOT)) for p in WORKFLOW if not p.is_file()]
    if missing:
        pytest.skip(f"the workflow's SLURM profile is not in this checkout: {', '.join(missing)} missing")
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }  # the rules call `nextvid`
    subprocess.run(["bash", str(ROOT / "workflow/profiles/install.sh")], env=env, check=True, capture_output=True)
    subprocess.run(
        [sys.executable, "-m", "nextvid", "data", "fetch"], env=env, check=True, capture_output=True, timeout=600
    )
    work = tmp_path / "work"
    t0 = time.monotonic()
    # --slurm-init-seconds-before-status-checks: the profile waits 20 s before a job's first status
    # check (a busy cluster's sacct); this cluster answers at once
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--profile",
            "slurm",
            "--directory",
            str(work),
            "--configfile",
            str(ROOT / "workflow/config/smoke.yaml"),
            "--slurm-init-seconds-before-status-checks",
            "2",
            "all",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    print(f"snakemake --profile slurm all (smoke): {time.monotonic() - t0:.0f} s")
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]
    assert "Using profile slurm" in log
    # the non-local rules ran as SLURM jobs through the executor plugin, and SLURM says they completed
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+) \(log: .*/rule_(\w+)/", log)
    assert {rule for _, rule in submitted} == SLURM_RULES, submitted
    ids = [job for job, _ in submitted]
    states = wait_states(",".join(ids), lambda s: len(s) == len(ids) and set(s) == {"COMPLETED"})
    assert states == ["COMPLETED"] * len(ids), states
    # pretraining went through submitit's SLURM launcher
    records = [json.loads(p.read_text()) for p in (work / "results/pretrain").rglob(JOB_RECORD)]
    smoke = yaml.safe_load((ROOT / "workflow/config/smoke.yaml").read_text())["experiments"]["smoke"]
    assert len(records) == len(smoke["variants"]) * len(smoke["seeds"]) and all(
        r["launcher"] == "slurm" for r in records
    ), records
    for record in records:
        assert wait_states(record["job_id"], lambda s: s == ["COMPLETED"]) == ["COMPLETED"]
    # and the DAG produced the tables and figures
    tables = sorted(p.name for p in (work / "results/tables/smoke").glob("*.md"))
    assert len(tables) == 7 and "table1.md" in tables, tables
    assert len(list((work / "results/figures/smoke").glob("fig*.png"))) == 4


SLURM_STATE = Path(os.environ.get("NEXTVID_SLURM_DIR", "/tmp/nextvid-slurm"))


def _pid(daemon: str) -> int:
    return int((SLURM_STATE / "run" / f"{daemon}.pid").read_text().strip())


def test_start_cancels_the_jobs_of_a_cluster_that_was_killed(tmp_path):
    """A cluster killed rather than stopped (its machine's session torn down mid-test) leaves its jobs in
    the controller's saved state; a restarted slurmctld holds them RUNNING on the node for ~30 min.
    tests/slurm/start.sh must cancel them, or every new job queues behind them (CI at 2d86bfd). Last in
    the module: it kills the cluster's controller and node daemon, and start.sh restarts them."""
    if os.geteuid() != 0 or not all((SLURM_STATE / "run" / f"{d}.pid").is_file() for d in ("slurmctld", "slurmd")):
        pytest.skip(f"not the cluster of tests/slurm/start.sh run as root (no pid files in {SLURM_STATE}/run)")
    cpus = int(_sh("sinfo", "-h", "-n", "localhost", "-o", "%c"))
    marker = f"sleep {900 + os.getpid() % 97}"  # a command line this test's jobs alone have
    jobs = [_sh("sbatch", "--parsable", "-c", str(cpus // 4), "-o", "/dev/null", "--wrap", marker) for _ in range(5)]
    try:
        # four fill the node, the fifth waits; the controller saves its state after they started
        wait_for(lambda: [job_field(j, "JobState") for j in jobs[:4]] == ["RUNNING"] * 4, 60, "the node to fill")
        started = time.time()
        saved = SLURM_STATE / "state" / "job_state"
        wait_for(lambda: saved.stat().st_mtime > started + 1, 120, "slurmctld to save its job state", every=1)
        # the session dies: daemons, step daemons and the jobs' processes, none stopped by stop.sh
        os.kill(_pid("slurmctld"), signal.SIGKILL)
        os.kill(_pid("slurmd"), signal.SIGKILL)
        subprocess.run(["pkill", "-KILL", "-f", marker], capture_output=True)
        subprocess.run(["pkill", "-KILL", "-x", "slurmstepd"], capture_output=True)
        time.sleep(1)
        restart = subprocess.run(
            ["bash", str(ROOT / "tests/slurm/start.sh")], capture_output=True, text=True, timeout=180
        )
        assert restart.returncode == 0, restart.stdout + restart.stderr
        # a job that needs the whole node starts at once, and none of the killed cluster's is left
        fresh = _sh("sbatch", "--parsable", "-c", str(cpus), "-o", "/dev/null", "--wrap", "true")
        wait_for(lambda: job_field(fresh, "JobState") in {"COMPLETED", ""}, 60, f"job {fresh} to run on the node")
        assert not set(jobs) & set(_sh("squeue", "-h", "-o", "%A").split()), queue()
        assert "cancelling jobs recovered" in restart.stdout, restart.stdout
    finally:
        subprocess.run(["scancel", *jobs], capture_output=True)
