"""Launching pretraining through submitit: in-process (`debug`), as a local subprocess (`local`), or
as a SLURM job (`slurm`), all with the same job function.

The job is a `submitit.helpers.Checkpointable`: on a time limit or preemption submitit requeues it and
the new run resumes from the run directory's latest checkpoint (the trainer never starts from
scratch when a checkpoint exists). Ranks come from `helpers.TorchDistributedEnvironment`; a SLURM job
runs a `helpers.RsyncSnapshot` of the repository taken at submission; submitting from inside a SLURM
allocation goes through `helpers.clean_env`.

The launcher is idempotent: it records the job in `DIR/job.json`; run again it returns at once when
the run is complete, re-attaches to a live job, or resubmits a dead one (which resumes).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Literal, Optional

import submitit

from nextvid.config import Config
from nextvid.io import atomic_write_json

log = logging.getLogger(__name__)

Launcher = Literal["debug", "local", "slurm"]
JOB_RECORD = "job.json"
LIVE_STATES = {"RUNNING", "PENDING", "REQUEUED", "CONFIGURING", "COMPLETING", "RESIZING", "SUSPENDED"}


class LaunchError(RuntimeError):
    """The job failed (the message carries its own error) or cannot be launched (the message says why)."""


class PretrainJob(submitit.helpers.Checkpointable):
    """The picklable job: train `cfg` into `out_dir`, resuming from its latest checkpoint.

    `checkpoint()` (inherited) resubmits this same object; all progress lives in `out_dir`, so the
    requeued job picks up where the last checkpoint left it."""

    def __init__(self, cfg_dict: dict, out_dir: str, git_commit: str):
        self.cfg_dict = cfg_dict
        self.out_dir = out_dir
        self.git_commit = git_commit

    def __call__(self) -> dict:
        from nextvid.config import from_dict
        from nextvid.data.mixture import pretraining_dataset
        from nextvid.train import distributed
        from nextvid.train.loop import Trainer

        configure_job_logging()
        os.environ.setdefault("NEXTVID_GIT_COMMIT", self.git_commit)
        if _inside_submitit_job():
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
        cfg = from_dict(Config, self.cfg_dict)
        env = distributed.init(cfg.train.device)
        try:
            return Trainer(cfg, self.out_dir, pretraining_dataset, env).run()
        finally:
            distributed.shutdown()


def configure_job_logging() -> None:
    """The package's INFO lines (resume point, stage starts, checkpoint writes) in the job's log. A
    local or SLURM job is a fresh process where Python prints only warnings; `debug` runs in the
    caller's process, whose logging `nextvid` already set up (then only the level is ensured)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    package = logging.getLogger("nextvid")
    if package.getEffectiveLevel() > logging.INFO:
        package.setLevel(logging.INFO)


def _inside_submitit_job() -> bool:
    try:
        submitit.JobEnvironment()
    except RuntimeError:
        return False
    return True


def make_executor(cfg: Config, folder: Path, launcher: Launcher) -> submitit.Executor:
    lc = cfg.launch
    if launcher == "debug":
        return submitit.DebugExecutor(folder=folder)
    if launcher == "local":
        ex = submitit.LocalExecutor(folder=folder, max_num_timeout=lc.max_timeouts)
        ex.update_parameters(
            timeout_min=lc.timeout_min,
            signal_delay_s=lc.signal_delay_s,
            gpus_per_node=lc.gpus_per_node if _has_gpu() else 0,
            tasks_per_node=1,
        )
        return ex
    ex = submitit.AutoExecutor(folder=folder, cluster="slurm", slurm_max_num_timeout=lc.max_timeouts)
    params = dict(
        name=f"nextvid-{cfg.training_hash()}",
        nodes=lc.nodes,
        tasks_per_node=max(1, lc.gpus_per_node),
        gpus_per_node=lc.gpus_per_node,
        cpus_per_task=lc.cpus_per_task,
        timeout_min=lc.timeout_min,
        slurm_signal_delay_s=lc.signal_delay_s,
    )
    if lc.mem_gb:
        params["mem_gb"] = lc.mem_gb
    for key in ("partition", "account", "qos", "constraint"):
        if getattr(lc, key):
            params[f"slurm_{key}"] = getattr(lc, key)
    ex.update_parameters(**params)
    return ex


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def launch(
    cfg: Config, out_dir: str | Path, launcher: Launcher = "local", wait: bool = False, snapshot: bool = True
) -> dict:
    """Submit (or re-attach to) the pretraining job of `cfg` in `out_dir`; returns the job record.
    With `wait`, block until the run is complete and raise LaunchError with the job's error. `cfg` is
    as nextvid.config_resolve resolves it (`nextvid pretrain` does): the job merges nothing more, and
    a rerun re-attaches only to a job of the same training hash."""
    from nextvid.provenance import git_commit
    from nextvid.train.loop import DONE

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if (out / DONE).is_file():
        finished, wanted = json.loads((out / DONE).read_text()).get("config_hash"), cfg.training_hash()
        if finished not in (None, wanted):  # e.g. a longer schedule: not this run
            raise LaunchError(
                f"{out} holds a finished run of another config (training hash {finished}; this config's is "
                f"{wanted}): use a new output directory for a changed config"
            )
        log.info("%s is complete; nothing to do", out)
        return {"state": "COMPLETE", "out_dir": str(out)}
    folder = out / "submitit"
    record = _read_record(out)
    job = None
    if record and record["config_hash"] == cfg.training_hash() and record["launcher"] == launcher:
        job = _reattach(record, folder)
    if job is None:
        if launcher == "slurm":
            check_memory(cfg)
        executor = make_executor(cfg, folder, launcher)
        commit = git_commit()
        job_fn = PretrainJob(cfg.to_dict(), str(out.resolve()), commit)
        with _submission_context(launcher, out, snapshot):
            job = executor.submit(job_fn)
        record = {
            "job_id": str(job.job_id),
            "launcher": launcher,
            "config_hash": cfg.training_hash(),
            "git_commit": commit,
            "submitted_at": time.time(),
            "folder": str(folder.resolve()),
        }
        if launcher == "local":  # a pid is reused once its process is gone: record which process it is
            record["process"] = _process_identity(int(job.job_id))
        if launcher != "debug":
            atomic_write_json(out / JOB_RECORD, record)
        log.info("submitted %s job %s for %s", launcher, job.job_id, out)
    if wait:
        _wait(job, out)
    return record


def check_memory(cfg: Config) -> None:
    """Stop before a GPU job is queued if the memory model says a stage will not fit on its GPUs
    (launch.gpu_mem_gb; 0 or a CPU-only launch skips it)."""
    from nextvid.config import ConfigError
    from nextvid.memory_fit import check_fits

    gpus = cfg.launch.nodes * cfg.launch.gpus_per_node
    if gpus == 0:
        return
    try:
        check_fits(cfg, gpus, cfg.launch.gpu_mem_gb)
    except ConfigError as err:
        raise LaunchError(f"not submitted: {err}") from None


@contextlib.contextmanager
def _submission_context(launcher: Launcher, out: Path, snapshot: bool):
    """SLURM submissions run from a snapshot of the repository and with a clean SLURM environment."""
    if launcher != "slurm":
        yield
        return
    with contextlib.ExitStack() as stack:
        stack.enter_context(submitit.helpers.clean_env())
        if snapshot:
            if not submitit.helpers.RsyncSnapshot.available():
                raise LaunchError(
                    "the SLURM launcher snapshots the code with rsync, which is not installed (install it, or pass --no-snapshot)"
                )
            stack.enter_context(
                submitit.helpers.RsyncSnapshot(out / "code", root_dir=Path(__file__).resolve().parents[1])
            )
        yield


def _read_record(out: Path) -> Optional[dict]:
    path = out / JOB_RECORD
    return json.loads(path.read_text()) if path.is_file() else None


def _reattach(record: dict, folder: Path) -> Optional[submitit.Job]:
    """A handle on the recorded job if it is still alive, else None (the caller resubmits)."""
    job_id = record["job_id"]
    if record["launcher"] == "slurm":
        job = submitit.SlurmJob(folder=folder, job_id=job_id)
        state = job.get_info(mode="force").get("State", "UNKNOWN").split()[0]
        if state == "UNKNOWN":  # sacct failed (no slurmdbd, or a busy one): ask the controller
            state = _squeue_state(job_id)
        if state == "UNKNOWN":
            raise LaunchError(
                f"cannot tell whether SLURM job {job_id} of this run is alive (sacct and squeue give no state); "
                "not submitting a second job into the same run directory"
            )
        alive = state in LIVE_STATES
    else:  # local: the job id is the controller's pid, if that pid is still the recorded process
        alive = _pid_alive(int(job_id)) and _is_recorded_process(int(job_id), record, folder)
        job = _LocalAttached(folder, job_id) if alive else None
        state = "RUNNING" if alive else "DEAD"
    log.info("recorded %s job %s is %s", record["launcher"], job_id, state)
    return job if alive else None


def _squeue_state(job_id: str) -> str:
    """The job's state from the controller: 'GONE' once it has forgotten the job (MinJobAge after the
    end), 'UNKNOWN' when it cannot be asked."""
    try:
        proc = subprocess.run(
            ["squeue", "-h", "-j", job_id, "-t", "all", "-o", "%T"], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return "UNKNOWN"
    if proc.returncode == 0 and proc.stdout.strip():
        return proc.stdout.split()[0]
    return "GONE" if "Invalid job id" in proc.stderr else "UNKNOWN"


class _LocalAttached(submitit.local.local.LocalJob):
    """A local job started by an earlier launcher process: poll its pid instead of a Popen handle."""

    def get_info(self, mode: str = "force") -> dict[str, str]:
        if _pid_alive(int(self.job_id)):
            return {"jobState": "RUNNING"}
        return super().get_info(mode)


def _process_identity(pid: int) -> Optional[dict]:
    """What tells a process apart from a later one given the same pid: its start time (clock ticks
    after boot, field 22 of /proc/<pid>/stat) and the boot. None where /proc cannot tell."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    return {"start_ticks": int(stat.rsplit(")", 1)[1].split()[19]), "boot_id": boot}


def _is_recorded_process(pid: int, record: dict, folder: Path) -> bool:
    """Whether live `pid` is still the job `record` names and not an unrelated process that reuses the
    pid: the recorded start time must match; a record without one (an older launcher) needs submitit's
    local controller of this run's folder on the command line."""
    now = _process_identity(pid)
    if now is None:  # no /proc (not Linux): the pid is all there is to go by
        return True
    if record.get("process"):
        same = record["process"] == now
    else:
        try:
            cmdline = [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")]
        except OSError:
            return False
        same = "submitit.local._local" in cmdline and any(Path(a).resolve() == folder.resolve() for a in cmdline if a)
    if not same:
        log.warning("pid %d is no longer the recorded job of this run (a later process reuses it); resubmitting", pid)
    return same


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (exited, not yet reaped by its parent) is not alive
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _wait(job: submitit.Job, out: Path) -> None:
    from nextvid.train.loop import DONE

    try:
        job.result()
    except Exception as err:  # submitit re-raises the job's exception (FailedJobError, UncompletedJobError)
        raise LaunchError(f"pretraining job {job.job_id} for {out} failed: {err}") from err
    if not (out / DONE).is_file():
        raise LaunchError(f"pretraining job {job.job_id} ended but {out / DONE} is missing")
