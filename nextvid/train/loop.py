"""The pretraining loop around the step function (nextvid.train.step): it owns data, logging and
checkpoints.

Determinism by construction: the LR, tau draws, frames and batch size come from the schedule (a
function of the step); the clips of a step are global sample indices `samples_before(step) + i`;
masks are drawn from (seed, step, rank) for the rank's batch (or, `masking.truncation: global`, from
(seed, step) for the global batch and sliced per rank); the flow's tau and noise
come from per-sample seeds. A resumed run therefore needs only the model, optimiser and step, and a
two-rank run sees exactly the global batch a one-rank run sees (the masks too, under global truncation).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, Optional

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset

from nextvid.config import Config, ConfigError, save as save_config
from nextvid.data.badinput import SkipLog
from nextvid.data.datasets import make_loader
from nextvid.io import atomic_write_json
from nextvid.masking import MaskSampler
from nextvid.models.nextvid import build_model
from nextvid.models.targets import build_target
from nextvid.progress import Progress
from nextvid.provenance import mix_seed
from nextvid.train import checkpoint as ckpt, distributed, precision as precisions
from nextvid.train.determinism import deterministic_algorithms
from nextvid.train.metrics import MetricsLog, TensorBoardLog, collapse_diagnostics
from nextvid.train.sampler import StepBatchSampler, rank_batch
from nextvid.train.schedule import kept_steps, plan, samples_before, stage_ends
from nextvid.train.step import train_step, unwrap

log = logging.getLogger(__name__)

DatasetFactory = Callable[[Config, int], Dataset]  # (config, frames) -> dataset indexed by global sample index
DONE = "done.json"
SKIPS = "skips.json"  # every skipped (unreadable) pretraining sample so far, all ranks
MIN_SEEN = 200  # samples a rank reads before data.max_bad_fraction is enforced (a fraction of 3 samples means nothing)


class EmptyBatchError(RuntimeError):
    """Every sample of a rank's batch was unreadable: the step cannot be taken (bad data, see skips.json)."""


class Trainer:
    def __init__(
        self,
        cfg: Config,
        out_dir: str | Path,
        dataset_factory: DatasetFactory,
        env: Optional[distributed.DistEnv] = None,
    ):
        self.cfg = cfg
        self.out = Path(out_dir)
        self.ckpt_dir = self.out / "checkpoints"
        self.dataset_factory = dataset_factory
        self.env = env or distributed.DistEnv()
        for i, stage in enumerate(cfg.schedule.stages):  # fail before any work, not at the stage boundary
            if stage.batch_size % self.env.world_size:
                raise ConfigError(
                    f"schedule.stages.{i}.batch_size: {stage.batch_size} is not divisible by the {self.env.world_size} ranks"
                )
        torch.manual_seed(cfg.seed)
        self.model = build_model(cfg).to(self.env.device)
        self.target = build_target(cfg).to(self.env.device) if cfg.target.kind == "vae" else None
        self.optimizer = torch.optim.AdamW(
            unwrap(self.model).param_groups(cfg.schedule.weight_decay),
            lr=cfg.schedule.stages[0].lr_start,
            betas=cfg.schedule.betas,
        )
        self.masks = MaskSampler(cfg.masking, self.model.encoder.grid_hw, seed=cfg.seed)
        self.skips = self._new_skip_log()
        self.step = 0
        if self.env.is_main:
            for stale in ckpt.clean_stale(self.ckpt_dir):
                log.info("removed %s (left by a killed checkpoint write)", stale)
        self.precision = self._resume() or self._resolve_precision()
        if self.env.world_size > 1:
            ids = [self.env.device.index] if self.env.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.model, device_ids=ids)
        if cfg.compute.compile:  # after DDP: its optimiser splits the graph at the gradient buckets
            self.model = torch.compile(self.model)

    # ------------------------------------------------------------------ state
    def state(self) -> dict:
        return {
            "step": self.step,
            "samples_seen": samples_before(self.cfg.schedule, self.step),
            "model": unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": ckpt.rng_state(),
            "skips": self._gathered_skips(),
            "config": self.cfg.to_dict(),
            "config_hash": self.cfg.training_hash(),
            "precision": self.precision,  # resolved at the start (schedule.precision is what was asked)
            "provenance": ckpt.provenance(),
        }

    def _resolve_precision(self) -> str:
        """`schedule.precision` resolved once, at the start of a run; rank 0's answer for every rank."""
        resolved = precisions.resolve(self.cfg.schedule.precision, self.env.device, "schedule.precision")
        if self.env.world_size > 1:
            box = [resolved]
            torch.distributed.broadcast_object_list(box, src=0)
            resolved = box[0]
        return resolved

    def _resume(self) -> Optional[str]:
        """Load the latest checkpoint, if any; returns the precision the run started with."""
        path = ckpt.latest(self.ckpt_dir)
        if path is None:
            return None
        state = ckpt.load(path, map_location=self.env.device)
        if state["config_hash"] != self.cfg.training_hash():
            raise ckpt.CheckpointError(
                f"{path} was written by config {state['config_hash']}, this run's config is {self.cfg.training_hash()}; "
                "use a new output directory for a changed config"
            )
        unwrap(self.model).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        ckpt.set_rng_state(state["rng"])
        self.step = int(state["step"])
        per_rank = state.get("skips") or []
        if len(per_rank) == self.env.world_size:  # same world size: each rank continues its own count
            self.skips = SkipLog.from_dict(per_rank[self.env.rank])
            self.skips.min_seen = self._new_skip_log().min_seen
        elif per_rank:  # a different world size: keep the history on rank 0
            if self.env.is_main:
                for d in per_rank:
                    self.skips.merge(SkipLog.from_dict(d))
        log.info("resumed from %s at step %d", path, self.step)
        self._check_kept_before_resume()
        return precisions.keep(state["precision"], self.cfg.schedule.precision, self.env.device, "schedule.precision")

    def kept_steps(self) -> list[int]:
        """The steps whose checkpoints are kept (probed): `train.keep_steps` and the final step."""
        return kept_steps(self.cfg)

    def _check_kept_before_resume(self) -> None:
        """A kept step at the resume point is recreated from latest.pt if missing (by the main rank); one
        that was passed without its file cannot be, and fails now, on every rank (no rank is left
        waiting in a collective), rather than when the workflow probes it."""
        if self.env.is_main and self.step in self.kept_steps() and ckpt.repair_kept(self.ckpt_dir, self.step):
            log.info("recreated the kept checkpoint of step %d from %s", self.step, ckpt.LATEST)
        missing = [s for s in self.kept_steps() if s < self.step and not (self.ckpt_dir / ckpt.step_name(s)).is_file()]
        if missing:
            raise ckpt.CheckpointError(
                f"{self.ckpt_dir}: kept steps {missing} were passed without their checkpoints (train.keep_steps changed "
                "after they were trained?); drop them from train.keep_steps, or retrain in a new output directory"
            )

    def save_checkpoint(self) -> None:
        state = self.state()  # collective (the skip logs of all ranks): every rank takes part
        if not self.env.is_main:
            return
        keep = self.step in self.kept_steps()
        ckpt.save(self.ckpt_dir, state, keep=keep)
        log.info(
            "checkpoint at step %d: %s%s",
            self.step,
            self.ckpt_dir / ckpt.LATEST,
            f" and {ckpt.step_name(self.step)} (kept)" if keep else "",
        )
        self._write_skips(state["skips"])

    def _new_skip_log(self) -> SkipLog:
        return SkipLog(
            self.cfg.data.max_bad_fraction,
            total=None,
            min_seen=MIN_SEEN,
            name=f"pretraining data (rank {self.env.rank})",
        )

    def _gathered_skips(self) -> list[dict]:
        mine = self.skips.to_dict()
        if self.env.world_size == 1:
            return [mine]
        out: list = [None] * self.env.world_size
        torch.distributed.all_gather_object(out, mine)
        return out

    def _write_skips(self, per_rank: list[dict]) -> None:
        """The human-readable report of skipped samples (path, reason, global index), all ranks merged."""
        merged = SkipLog(self.cfg.data.max_bad_fraction, name="pretraining data")
        for d in per_rank:
            merged.merge(SkipLog.from_dict(d))
        atomic_write_json(self.out / SKIPS, {"step": self.step, **merged.to_dict()})

    # ------------------------------------------------------------------ loop
    def is_complete(self) -> bool:
        return (self.out / DONE).is_file()

    def run(self, stop_at: Optional[int] = None) -> dict:
        """Train to the run's end (the schedule's, or `schedule.stop_at` for an early-stopped run), or,
        for tests and chunked jobs, until step `stop_at`, checkpointing there."""
        cfg, env = self.cfg, self.env
        total = cfg.schedule.end_step
        self._stop_at = total if stop_at is None else min(stop_at, total)
        if env.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            save_config(
                cfg,
                self.out / "config.yaml",
                header=f"schedule.precision {cfg.schedule.precision}: this run computes in "
                f"{self.precision} (resolved when it started, kept on resume; checkpoints and done.json record it)",
            )
        # keep the row of the checkpoint's own step (written just before that checkpoint) when an
        # uninterrupted run logs that step too; a `stop_at` end row off the logging grid is dropped
        on_grid = self.step % cfg.train.log_every == 0 or self.step in stage_ends(cfg.schedule)
        resume_step = self.step + on_grid
        sinks = [MetricsLog(self.out / "metrics.csv", resume_step=resume_step)] if env.is_main else []
        if env.is_main and cfg.train.tensorboard:
            sinks.append(TensorBoardLog(self.out / "tensorboard", resume_step=resume_step))
        self._started = time.perf_counter()
        progress = Progress(total, "pretrain", "steps", enabled=env.is_main, start=self.step)
        self._progress_text = f"precision {self.precision}"
        last: dict = {}
        try:
            with deterministic_algorithms(cfg.train.deterministic):
                while self.step < self._stop_at:
                    last = self._run_stage(sinks, progress) or last
        finally:
            progress.close()
            for sink in sinks:
                sink.close()
        if self.step < total:
            self.save_checkpoint()
            return {"steps": self.step, "complete": False}
        kept = [self.ckpt_dir / ckpt.step_name(s) for s in self.kept_steps()]
        summary = {
            "steps": total,
            "schedule_steps": cfg.schedule.total_steps,
            "config_hash": cfg.training_hash(),
            "precision": self.precision,
            "final": last,
            "checkpoint": str(kept[-1]),
            "kept": [str(p) for p in kept],
        }
        if env.is_main:
            ckpt.verify(kept)  # done.json names only files that exist, complete
            atomic_write_json(self.out / DONE, summary)
        return summary

    def _run_stage(self, sinks: list, progress: Progress) -> dict:
        """Steps from the current one to the end of its stage (frames and batch size are per stage)."""
        cfg, env = self.cfg, self.env
        total = cfg.schedule.end_step
        first = plan(cfg.schedule, self.step)
        end = min(stage_ends(cfg.schedule)[first.stage_index], self._stop_at)
        log.info(
            "stage %s from step %d to %d: %d frames, batch %d, lr %.3g",
            first.stage,
            self.step,
            end,
            first.frames,
            first.batch_size,
            first.lr,
        )
        dataset = self.dataset_factory(cfg, first.frames)
        loader = make_loader(
            dataset,
            batch_sampler=StepBatchSampler(cfg, self.step, end, env.rank, env.world_size),
            workers=cfg.data.num_workers,
            pin_memory=env.device.type == "cuda",
        )
        last: dict = {}
        tick, tick_step = time.perf_counter(), self.step
        for batch in loader:
            p = plan(cfg.schedule, self.step)
            if self.skips.consume(batch) is None:  # raises TooManyBadInputs past cfg.data.max_bad_fraction
                raise EmptyBatchError(
                    f"step {self.step}: every sample of rank {env.rank}'s batch was unreadable "
                    f"({[r['path'] for r in batch['skipped']]}); see {self.out / SKIPS}"
                )
            video = batch["video"].to(env.device, non_blocking=True)
            sample_ids = batch["index"].tolist()
            # rows of this rank's share of the batch it holds (a skipped unreadable sample leaves a gap)
            rows = (
                torch.as_tensor(sample_ids)
                - samples_before(cfg.schedule, self.step)
                - env.rank * rank_batch(p.batch_size, env.world_size)
            )
            masks = [m[rows].to(env.device) for m in self.masks(p.batch_size, self.step, env.rank, env.world_size)]
            seeds = [mix_seed(cfg.seed, i) for i in sample_ids]
            targets = self.target(video) if self.target is not None else None
            result = train_step(
                self.model,
                self.optimizer,
                video,
                masks,
                p,
                cfg,
                seeds,
                targets,
                self._finite_everywhere,
                precision=self.precision,
            )
            self.step += 1
            if self.step % cfg.train.log_every == 0 or self.step == end:
                now = time.perf_counter()
                values = distributed.mean_across_ranks(result.values, env)
                row = {
                    "step": self.step,
                    "stage": p.stage,
                    "lr": p.lr,
                    "decoder_lr": p.decoder_lr,
                    "tau_draws": p.tau_draws,
                    "frames": p.frames,
                    "batch_size": p.batch_size,
                    "grad_norm": result.grad_norm,
                    "clips_per_s": p.batch_size * (self.step - tick_step) / max(now - tick, 1e-9),
                    "elapsed_s": now - self._started,
                    "skipped": self._skipped_everywhere(),
                    **values,
                }
                if result.features is not None:
                    row.update(collapse_diagnostics(result.features))
                tick, tick_step = now, self.step
                for sink in sinks:  # metrics.csv, and TensorBoard when train.tensorboard
                    sink.write(row)
                self._progress_text = " ".join(
                    f"{k}={values[k]:.4f}" for k in ("loss", "flow", "align", "regression") if k in values
                )
                last = {k: v for k, v in row.items() if k != "elapsed_s"}
            progress.update(self.step, self._progress_text)
            if self.step % cfg.train.checkpoint_every == 0 or self.step in cfg.train.keep_steps or self.step == total:
                self.save_checkpoint()
        return last

    def _skipped_everywhere(self) -> int:
        """Samples skipped so far by all ranks (a collective: called on the logging steps, by every rank)."""
        n = torch.tensor(float(self.skips.bad), dtype=torch.float64, device=self.env.device)
        if self.env.world_size > 1:
            torch.distributed.all_reduce(n)
        return int(n.item())

    def _finite_everywhere(self, loss: torch.Tensor) -> bool:
        ok = torch.isfinite(loss).to(torch.float32)
        if self.env.world_size > 1:
            torch.distributed.all_reduce(ok, op=torch.distributed.ReduceOp.MIN)
        return bool(ok.item() == 1.0)
