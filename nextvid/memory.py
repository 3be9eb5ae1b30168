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
workspaces, NCCL buffers and allocator fragmentation: `HEADROOM` of the GPU is left for them
(nextvid.memory_fit, which turns this count into the settings that fit).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from nextvid.config import Config, ConfigError, EncoderConfig, MaskingConfig

GIB = 1024**3
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


def cross_block(
    queries: int, context: int, d: int, hidden: int, heads: int, a: int, shared_context_norm_in: bool
) -> int:
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
def _clip_shapes(
    enc: EncoderConfig, masking: MaskingConfig, loss_positions: str, seed: int, frames: int, batch: int, step: int
) -> Shapes:
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


def estimate(
    cfg: Config,
    clips: int,
    frames: int,
    tau_draws: int,
    gpus: int = 1,
    bf16: Optional[bool] = None,
    kernel: str = "flex",
    checkpoint: frozenset[str] = frozenset(),
    shapes: Optional[Shapes] = None,
) -> Estimate:
    """Memory of one step's micro-batch of `clips` clips of `frames` frames on one of `gpus` GPUs."""
    if cfg.objective.method != "nextvid":
        raise ConfigError(
            f"objective.method: the memory model covers NExT-Vid, not the {cfg.objective.method!r} baseline"
        )
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
        encoder += 0 if a == F32 else clips * shapes.video_elements * a  # the tubelet conv's bf16 input copy
        encoder += ctx_tokens * (_norm_in(enc.width) + a * enc.width)  # final LN in, context_proj's input
        # predictor: queries of frames 1..T'-1 cross-attend to the context
        if cfg.model.predictor.context_isolation:
            block = cross_block(
                q_tokens, ctx_tokens, pred.width, int(pred.width * pred.mlp_ratio), pred.heads, a, a == F32
            )
            block += a * (Fr * queries) * (Fr * visible) if dense else 0
            predictor += F32 * pred.width * ctx_tokens if a == F32 else 0  # the shared LN_ctx input (fp32)
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
        params=F32 * (sizes.params - sizes.reference),
        grads=F32 * trainable,
        adamw=2 * F32 * trainable,
        ema=F32 * sizes.reference,
        ddp_buckets=F32 * trainable if gpus > 1 else 0,
        inputs=clips * shapes.video_elements * F32 * 2,  # the clip, pixel targets of the same size
        encoder=encoder,
        reference=reference,
        predictor=predictor,
        decoder=decoder,
        losses=losses,
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
    return Sizes(
        count(model.parameters()),
        count(p for p in model.parameters() if p.requires_grad),
        count(model.reference.parameters()) if model.reference is not None else 0,
        model.encoder.blocks[0].mlp.fc1.out_features,
        getattr(model.decoder, "target_dim", 0),
    )


def _module(depth: int, block: int, block_input: int, checkpointed: bool) -> int:
    """A stack of `depth` blocks: everything each block saves, or only each block's input."""
    return depth * (block_input if checkpointed else block)
