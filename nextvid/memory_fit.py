"""Which setting fits a GPU, from the count of nextvid.memory: per stage, the estimate at the config's
own checkpointing and micro-batch, the cheapest setting that fits, the config with those settings
(what the paper presets were set from), and the check `nextvid pretrain --launcher slurm` runs
before it submits a job that would not fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from nextvid.config import Config, ConfigError, merge
from nextvid.memory import GIB, Estimate, clip_shapes, estimate

HEADROOM = 0.10  # of GPU memory kept free for the CUDA context, NCCL, workspaces and fragmentation
MIN_MICRO_BATCH = 4  # clips: below this a micro-batch is assumed to leave the GPU under-used
CHECKPOINT_ORDER = ("decoder", "predictor", "encoder")  # cheapest recompute per byte saved first


@dataclass(frozen=True)
class Setting:
    checkpoint: frozenset[str]
    micro_batch: int  # clips per forward/backward on one GPU

    def describe(self) -> dict:
        return {"checkpoint": sorted(self.checkpoint, key=CHECKPOINT_ORDER.index), "micro_batch": self.micro_batch}


def checkpoint_sets() -> list[frozenset[str]]:
    """None, then decoder, decoder+predictor, all three: the cheapest recompute first."""
    return [frozenset(CHECKPOINT_ORDER[:n]) for n in range(len(CHECKPOINT_ORDER) + 1)]


def current_setting(cfg: Config, stage_index: int, per_gpu: int) -> Setting:
    c = cfg.compute
    on = {"encoder": c.checkpoint_encoder, "predictor": c.checkpoint_predictor, "decoder": c.checkpoint_decoder}
    micro = cfg.schedule.stages[stage_index].micro_batch
    return Setting(frozenset(k for k, v in on.items() if v), min(micro or per_gpu, per_gpu))


def memory_plan(cfg: Config, gpus: int, gpu_mem_gb: float, kernel: str = "flex") -> dict:
    """Every stage at its per-GPU batch: the estimate at the config's own settings, whether it fits
    in `gpu_mem_gb` less HEADROOM, and the cheapest setting that fits (no checkpointing with the
    largest micro-batch of >= MIN_MICRO_BATCH clips; else checkpointing in CHECKPOINT_ORDER with the
    largest micro-batch that fits)."""
    budget = gpu_mem_gb * GIB * (1 - HEADROOM)
    stages = []
    for i, stage in enumerate(cfg.schedule.stages):
        if stage.batch_size % gpus:
            raise ConfigError(f"schedule.stages.{i}.batch_size: {stage.batch_size} is not divisible by {gpus} GPUs")
        per_gpu = stage.batch_size // gpus
        shapes = clip_shapes(cfg, stage.frames, stage.batch_size)

        def peak(setting: Setting) -> Estimate:
            return estimate(
                cfg,
                setting.micro_batch,
                stage.frames,
                stage.tau_draws,
                gpus,
                kernel=kernel,
                checkpoint=setting.checkpoint,
                shapes=shapes,
            )

        setting = current_setting(cfg, i, per_gpu)
        here = peak(setting)
        stages.append(
            {
                "stage": stage.name,
                "index": i,
                "batch_per_gpu": per_gpu,
                "frames": stage.frames,
                "tau_draws": stage.tau_draws,
                "visible_tokens_per_view": list(shapes.visible),
                "setting": setting.describe(),
                "gib": here.as_gib(),
                "fits": here.peak <= budget,
                "fitting_setting": _fitting(peak, per_gpu, budget),
            }
        )
    return {
        "gpus": gpus,
        "gpu_mem_gb": gpu_mem_gb,
        "budget_gib": round(budget / GIB, 2),
        "headroom": HEADROOM,
        "kernel": kernel,
        "bf16": cfg.schedule.precision != "fp32",
        "stages": stages,
    }


def _fitting(peak: Callable[[Setting], Estimate], per_gpu: int, budget: float) -> Optional[dict]:
    for ckpt in checkpoint_sets():
        smallest = min(MIN_MICRO_BATCH, per_gpu) if not ckpt else 1
        for micro in _micro_sizes(per_gpu):
            if micro < smallest:
                break
            est = peak(Setting(ckpt, micro))
            if est.peak <= budget:
                return {**Setting(ckpt, micro).describe(), "peak_gib": round(est.peak / GIB, 2)}
    return None


def _micro_sizes(per_gpu: int) -> list[int]:
    """Micro-batch sizes that split the per-GPU batch evenly, largest first."""
    return [m for m in range(per_gpu, 0, -1) if per_gpu % m == 0]


def fitted_config(cfg: Config, gpus: int, gpu_mem_gb: float, kernel: str = "flex") -> Config:
    """`cfg` with the memory plan's settings: the checkpointing any stage needs, on for all; then each
    stage's largest fitting micro-batch under it. What the paper presets were set from."""
    plan = memory_plan(cfg, gpus, gpu_mem_gb, kernel)
    missing = [s["stage"] for s in plan["stages"] if s["fitting_setting"] is None]
    if missing:
        raise ConfigError(f"no setting fits stages {missing} in {gpu_mem_gb} GB")
    needed = set().union(*(s["fitting_setting"]["checkpoint"] for s in plan["stages"]))
    cfg = merge(cfg, {"compute": {f"checkpoint_{m}": m in needed for m in CHECKPOINT_ORDER}})
    budget = plan["budget_gib"] * GIB
    micro = {}
    for s in plan["stages"]:
        stage = cfg.schedule.stages[s["index"]]
        shapes = clip_shapes(cfg, stage.frames, stage.batch_size)
        for m in _micro_sizes(s["batch_per_gpu"]):
            if (
                estimate(
                    cfg,
                    m,
                    stage.frames,
                    stage.tau_draws,
                    gpus,
                    kernel=kernel,
                    checkpoint=frozenset(needed),
                    shapes=shapes,
                ).peak
                <= budget
            ):
                micro[str(s["index"])] = {
                    "micro_batch": m
                }  # in clips even when whole: it must hold at other GPU counts
                break
    return merge(cfg, {"schedule": {"stages": micro}})


def check_fits(cfg: Config, gpus: int, gpu_mem_gb: float) -> None:
    """Raise ConfigError naming the first stage that does not fit, its estimate and a setting that would."""
    if gpu_mem_gb <= 0 or cfg.objective.method != "nextvid":
        return
    plan = memory_plan(
        cfg, gpus, gpu_mem_gb, kernel="sdpa" if cfg.compute.attention == "sdpa" else "flex"
    )  # auto: flex on CUDA
    for s in plan["stages"]:
        if not s["fits"]:
            fix = s["fitting_setting"]
            how = (
                "nothing fits, even per-block checkpointing of every module at micro-batch 1"
                if fix is None
                else f"would fit: checkpointing {fix['checkpoint'] or 'none'} with micro_batch {fix['micro_batch']} "
                f"(peak {fix['peak_gib']} GiB): "
                + ", ".join(
                    [f"compute.checkpoint_{m}=true" for m in fix["checkpoint"]]
                    + [f"schedule.stages.{s['index']}.micro_batch={fix['micro_batch']}"]
                )
            )
            raise ConfigError(
                f"stage {s['stage']} (schedule.stages.{s['index']}): {s['batch_per_gpu']} clips per GPU on {gpus} GPUs need "
                f"about {s['gib']['peak']} GiB at checkpointing {s['setting']['checkpoint'] or 'none'}, micro_batch "
                f"{s['setting']['micro_batch']}, more than {plan['budget_gib']} GiB ({gpu_mem_gb} GB less {HEADROOM:.0%} headroom); {how}"
            )
