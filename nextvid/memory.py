"""What a NExT-Vid training step holds in GPU memory, per stage of the schedule, before anyone queues a
job that will not fit: `nextvid describe --memory`, and the check `nextvid pretrain --launcher slurm`
runs before it submits.

The estimate is a count, not a measurement. Per GPU and micro-batch:
- state: fp32 parameters, fp32 gradients, AdamW's two fp32 moments, the EMA reference encoder, and
  (more than one GPU) DDP's fp32 gradient buckets;
- saved activations: the bytes autograd keeps for the backward pass, counted tensor by tensor from
  the blocks' code (`vit_block`, `cross_block`, `dit_block` below name every saved tensor): the
  online encoder on each mask view's visible tokens, the predictor, the decoder on `tau_draws` noisy
  copies of every target, the losses. With per-block checkpointing a module keeps only each block's
  input; its backward then recomputes one block at a time;
- a backward working set: twice the largest block's saved activations (its recomputed activations
  and their gradients), and the reference encoder's no-grad forward on the full clip, which runs
  before the online forward and so peaks separately.
`peak` = state + inputs + max(saved + working set, reference forward). The estimate assumes fused
attention (flash, memory-efficient or FlexAttention: the softmax is never stored, only its
log-sum-exp); the dense-mask SDPA kernel also keeps its float mask per block (`kernel="sdpa"`).
Under bf16 autocast, matrix-product activations take 2 bytes, while LayerNorm inputs and outputs and
softmax statistics stay fp32, as autocast runs them.

`saved_bytes` measures what autograd really keeps (saved_tensors_hooks); the tests hold the count to
it within 10% on CPU presets in fp32. What this does not count: the CUDA context and kernels' own
workspaces, NCCL buffers and allocator fragmentation: `HEADROOM` of the GPU is left for them.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from nextvid.config import Config, ConfigError, EncoderConfig, MaskingConfig, merge

GIB = 1024**3
HEADROOM = 0.10  # of GPU memory kept free for the CUDA context, NCCL, workspaces and fragmentation
MIN_MICRO_BATCH = 4  # clips: below this a micro-batch is assumed to leave the GPU under-used
CHECKPOINT_ORDER = ("decoder", "predictor", "encoder")  # cheapest recompute per byte saved first
F32 = 4


def saved_bytes(model: torch.nn.Module, forward: Callable[[], torch.Tensor]) -> int:
    """Bytes autograd keeps for the backward pass of `forward()`: every tensor saved by an autograd
    node, counted once per storage, parameters excluded (they are counted as parameters)."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor):
        s = t.untyped_storage()
        if s.data_ptr() not in params:
            storages[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = forward()
    del out
    return sum(storages.values())


# ------------------------------------------------------------------------------------ per block
# Bytes one block saves, from its code: `a` is the matrix-product activation size (2: bf16 autocast,
# 4: fp32); LayerNorm inputs (+ mean and rstd) are fp32 copies under autocast.


def _norm_in(d: int) -> int:
    return F32 * d + 2 * F32


def vit_block(tokens: int, d: int, hidden: int, heads: int, a: int) -> int:
    """timm pre-norm block (RopeBlock): LN1 in; LN1 out (qkv's input); the qkv output (v is a view of
    it); RoPE'd q and k; attention out (proj's input) and its log-sum-exp; LN2 in and out; fc1 out
    (GELU's input) and GELU out (fc2's input). RoPE saves only its (shared) rotation."""
    return tokens * (2 * _norm_in(d) + a * (d + 3 * d + 2 * d + d + d + 2 * hidden) + F32 * heads)


def cross_block(queries: int, context: int, d: int, hidden: int, heads: int, a: int, shared_context_norm_in: bool) -> int:
    """CrossAttentionBlock. Per query: LN_q in and out, RoPE'd q, attention out and log-sum-exp, LN in
    and out before the MLP, fc1 and GELU outs. Per context token: LN_ctx in (the same tensor for every
    block in fp32: counted once by the caller then), its out (kv's input), the kv output, RoPE'd k."""
    per_query = 2 * _norm_in(d) + a * (4 * d + 2 * hidden) + F32 * heads
    per_context = (0 if shared_context_norm_in else _norm_in(d)) + a * (d + 2 * d + d)
    return queries * per_query + context * per_context


def dit_block(tokens: int, sequences: int, d: int, hidden: int, heads: int, a: int) -> int:
    """DiTBlock (adaLN-Zero). Per token: LN1 in and out (out kept by the modulation's product, fp32);
    the modulated input (qkv's), qkv output, RoPE'd q and k, attention out and log-sum-exp, the
    projection's output (kept by the gate's product); the same LN pair, modulated input, fc1 and GELU
    outs and the MLP's gated output after it. Per sequence: adaLN's SiLU, its 6 d outputs, scales."""
    per_token = 2 * _norm_in(d) + 2 * F32 * d + a * (d + 3 * d + 2 * d + d + d + d + d + 2 * hidden) + F32 * heads
    return tokens * per_token + sequences * F32 * 10 * d


# ------------------------------------------------------------------------------------ per step


@dataclass(frozen=True)
class Shapes:
    """Token counts of one clip at a stage: `visible` per mask view, `queries` per predicted frame."""

    frames: int  # token-frames T'
    positions: int  # spatial positions per token-frame P
    visible: tuple[int, ...]  # per view; () = one unmasked view
    queries: tuple[int, ...]  # per view: target positions per predicted token-frame
    video_elements: int  # C * T * H * W


def clip_shapes(cfg: Config, frames: int, batch: int, step: int = 0) -> Shapes:
    """The token counts the trainer would see: masks drawn for the global batch (truncated to its
    minimum visible count, as the trainer does)."""
    return _clip_shapes(cfg.model.encoder, cfg.masking, cfg.objective.loss_positions, cfg.seed, frames, batch, step)


@functools.lru_cache(maxsize=64)
def _clip_shapes(enc: EncoderConfig, masking: MaskingConfig, loss_positions: str, seed: int, frames: int, batch: int, step: int) -> Shapes:
    from nextvid.masking import MaskSampler

    grid = enc.image_size // enc.patch_size
    P = grid * grid
    masks = MaskSampler(masking, (grid, grid), seed=seed)(batch, step)
    visible = tuple(int(m.shape[1]) for m in masks)
    masked_only = loss_positions == "masked"
    queries = tuple(P - k if masked_only else P for k in visible) or (P,)
    return Shapes(frames // enc.tubelet, P, visible, queries, enc.in_chans * frames * enc.image_size**2)


@dataclass
class Estimate:
    """Bytes per GPU at one stage and setting (see the module docstring)."""

    params: int
    grads: int
    adamw: int
    ema: int
    ddp_buckets: int
    inputs: int
    encoder: int
    reference: int
    predictor: int
    decoder: int
    losses: int
    working_set: int

    @property
    def state(self) -> int:
        return self.params + self.grads + self.adamw + self.ema + self.ddp_buckets

    @property
    def saved(self) -> int:
        """What autograd keeps through the forward of one micro-batch."""
        return self.encoder + self.predictor + self.decoder + self.losses

    @property
    def peak(self) -> int:
        return self.state + self.inputs + max(self.saved + self.working_set, self.reference)

    def as_gib(self) -> dict:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {k: round(v / GIB, 2) for k, v in {**fields, "saved": self.saved, "peak": self.peak}.items()}


def estimate(cfg: Config, clips: int, frames: int, tau_draws: int, gpus: int = 1, bf16: Optional[bool] = None,
             kernel: str = "flex", checkpoint: frozenset[str] = frozenset(), shapes: Optional[Shapes] = None) -> Estimate:
    """Memory of one step's micro-batch of `clips` clips of `frames` frames on one of `gpus` GPUs."""
    if cfg.objective.method != "nextvid":
        raise ConfigError(f"objective.method: the memory model covers NExT-Vid, not the {cfg.objective.method!r} baseline")
    sizes = _sizes(cfg.model, cfg.objective, cfg.target)
    shapes = shapes or clip_shapes(cfg, frames, clips)
    # a GPU runs "auto" as bf16 (every GPU the paper presets target has it natively)
    a = 2 if (cfg.schedule.precision != "fp32" if bf16 is None else bf16) else F32
    enc, pred, dec = cfg.model.encoder, cfg.model.predictor, cfg.model.decoder
    Tp, P, Fr = shapes.frames, shapes.positions, shapes.frames - 1
    dense = kernel == "sdpa"
    hidden_enc, trainable = sizes.encoder_hidden, sizes.trainable
    views = shapes.visible or (P,)

    encoder = predictor = decoder = losses = 0
    blocks: list[int] = []  # one block's saved bytes for each module with gradients (working set)
    for visible, queries in zip(views, shapes.queries):
        ctx_tokens, q_tokens = clips * Fr * visible, clips * Fr * queries
        # online encoder on the visible tokens of token-frames 0..T'-2
        block = vit_block(ctx_tokens, enc.width, hidden_enc, enc.heads, a) + (a * (Fr * visible) ** 2 if dense else 0)
        blocks.append(block)
        encoder += _module(enc.depth, block, ctx_tokens * a * enc.width, "encoder" in checkpoint)
        encoder += (0 if a == F32 else clips * shapes.video_elements * a)  # the tubelet conv's bf16 input copy
        encoder += ctx_tokens * (_norm_in(enc.width) + a * enc.width)  # final LN in, context_proj's input
        # predictor: queries of frames 1..T'-1 cross-attend to the context
        if cfg.model.predictor.context_isolation:
            block = cross_block(q_tokens, ctx_tokens, pred.width, int(pred.width * pred.mlp_ratio), pred.heads, a, a == F32)
            block += a * (Fr * queries) * (Fr * visible) if dense else 0
            predictor += (F32 * pred.width * ctx_tokens if a == F32 else 0)  # the shared LN_ctx input (fp32)
        else:  # the ablation's joint self-attention over context and queries, dense mask
            n = Fr * (visible + queries)
            block = vit_block(clips * n, pred.width, round(pred.width * pred.mlp_ratio), pred.heads, a) + a * n * n
        blocks.append(block)
        predictor += _module(pred.depth, block, q_tokens * a * pred.width, "predictor" in checkpoint)
        predictor += q_tokens * (_norm_in(pred.width) + a * pred.width)  # final LN in, out_proj's input
        if cfg.objective.alignment:
            losses += q_tokens * F32 * enc.width  # z in fp32 for the MSE
        if cfg.objective.generation:
            C = sizes.target_dim
            d_tokens, seqs = tau_draws * q_tokens, tau_draws * clips * Fr
            if dec.attention == "frame":  # each token-frame its own sequence, one condition each
                block = dit_block(d_tokens, seqs, dec.width, int(dec.width * dec.mlp_ratio), dec.heads, a)
            else:  # frame-causal over a clip's predicted frames; the condition is per token
                block = dit_block(d_tokens, d_tokens, dec.width, int(dec.width * dec.mlp_ratio), dec.heads, a)
                block += a * (Fr * queries) ** 2 if dense else 0
            blocks.append(block)
            decoder += _module(dec.depth, block, d_tokens * a * dec.width, "decoder" in checkpoint)
            decoder += d_tokens * a * (C + enc.width)  # the input layer's x_tau and repeated z
            decoder += d_tokens * (_norm_in(dec.width) + F32 * dec.width + a * dec.width)  # final layer
            decoder += d_tokens * 2 * F32 * C  # velocity and its target in fp32 for the MSE
    if cfg.objective.alignment:
        masked_targets = cfg.objective.loss_positions == "masked"
        losses += (len(views) if masked_targets else 1) * clips * Fr * max(shapes.queries) * F32 * enc.width
    # the reference encoder (no grad) on the full clip: its widest moment is one block's MLP
    ref_tokens = clips * Tp * P
    reference = ref_tokens * (a * (3 * enc.width + hidden_enc) + F32 * enc.width) + (a * (Tp * P) ** 2 if dense else 0)
    return Estimate(
        params=F32 * (sizes.params - sizes.reference), grads=F32 * trainable, adamw=2 * F32 * trainable, ema=F32 * sizes.reference,
        ddp_buckets=F32 * trainable if gpus > 1 else 0,
        inputs=clips * shapes.video_elements * F32 * 2,  # the clip, pixel targets of the same size
        encoder=encoder, reference=reference, predictor=predictor, decoder=decoder, losses=losses,
        working_set=2 * max(blocks),
    )


@dataclass(frozen=True)
class Sizes:
    params: int  # all, the reference encoder's included
    trainable: int
    reference: int
    encoder_hidden: int
    target_dim: int


@functools.lru_cache(maxsize=16)
def _sizes(model_cfg, objective, target) -> Sizes:
    """Parameter counts and widths of the built model (on the meta device: no memory, no init cost)."""
    from nextvid.models.nextvid import build_model

    with torch.device("meta"):
        model = build_model(Config(model=model_cfg, objective=objective, target=target))
    count = lambda ps: sum(p.numel() for p in ps)  # noqa: E731
    return Sizes(count(model.parameters()), count(p for p in model.parameters() if p.requires_grad),
                 count(model.reference.parameters()) if model.reference is not None else 0,
                 model.encoder.blocks[0].mlp.fc1.out_features, getattr(model.decoder, "target_dim", 0))


def _module(depth: int, block: int, block_input: int, checkpointed: bool) -> int:
    """A stack of `depth` blocks: everything each block saves, or only each block's input."""
    return depth * (block_input if checkpointed else block)


# ------------------------------------------------------------------------------------ the plan


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
            return estimate(cfg, setting.micro_batch, stage.frames, stage.tau_draws, gpus, kernel=kernel,
                            checkpoint=setting.checkpoint, shapes=shapes)

        setting = current_setting(cfg, i, per_gpu)
        here = peak(setting)
        stages.append({
            "stage": stage.name, "index": i, "batch_per_gpu": per_gpu, "frames": stage.frames, "tau_draws": stage.tau_draws,
            "visible_tokens_per_view": list(shapes.visible), "setting": setting.describe(), "gib": here.as_gib(),
            "fits": here.peak <= budget, "fitting_setting": _fitting(peak, per_gpu, budget),
        })
    return {"gpus": gpus, "gpu_mem_gb": gpu_mem_gb, "budget_gib": round(budget / GIB, 2), "headroom": HEADROOM,
            "kernel": kernel, "bf16": cfg.schedule.precision != "fp32", "stages": stages}


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
            if estimate(cfg, m, stage.frames, stage.tau_draws, gpus, kernel=kernel, checkpoint=frozenset(needed), shapes=shapes).peak <= budget:
                micro[str(s["index"])] = {"micro_batch": m}  # in clips even when whole: it must hold at other GPU counts
                break
    return merge(cfg, {"schedule": {"stages": micro}})


def check_fits(cfg: Config, gpus: int, gpu_mem_gb: float) -> None:
    """Raise ConfigError naming the first stage that does not fit, its estimate and a setting that would."""
    if gpu_mem_gb <= 0 or cfg.objective.method != "nextvid":
        return
    plan = memory_plan(cfg, gpus, gpu_mem_gb, kernel="sdpa" if cfg.compute.attention == "sdpa" else "flex")  # auto: flex on CUDA
    for s in plan["stages"]:
        if not s["fits"]:
            fix = s["fitting_setting"]
            how = ("nothing fits, even per-block checkpointing of every module at micro-batch 1" if fix is None else
                   f"would fit: checkpointing {fix['checkpoint'] or 'none'} with micro_batch {fix['micro_batch']} "
                   f"(peak {fix['peak_gib']} GiB): " + ", ".join(
                       [f"compute.checkpoint_{m}=true" for m in fix["checkpoint"]] + [f"schedule.stages.{s['index']}.micro_batch={fix['micro_batch']}"]))
            raise ConfigError(
                f"stage {s['stage']} (schedule.stages.{s['index']}): {s['batch_per_gpu']} clips per GPU on {gpus} GPUs need "
                f"about {s['gib']['peak']} GiB at checkpointing {s['setting']['checkpoint'] or 'none'}, micro_batch "
                f"{s['setting']['micro_batch']}, more than {plan['budget_gib']} GiB ({gpu_mem_gb} GB less {HEADROOM:.0%} headroom); {how}")

