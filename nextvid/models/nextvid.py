"""NExT-Vid and its same-budget baselines, each one `forward(video, masks, ...) -> losses`.

NExT-Vid [paper]: the encoder sees each masked view of the clip; the predictor turns the context of
token-frames < t into z_t for every position of token-frame t = 1..T'-1; z_t is aligned with the
reference encoder's LayerNormed output on the full clip and conditions the flow decoder that
generates token-frame t's target. Every ablation of Tables 2-5, 11, 12 is a config switch here.
"""

from __future__ import annotations

import copy
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from timm.optim import param_groups_weight_decay
from torch import nn

from nextvid.config import ComputeConfig, Config
from nextvid.masking import complement
from nextvid.models.decoder import FlowDecoder
from nextvid.models.encoder import Encoder, token_positions
from nextvid.models.predictor import IsolatedPredictor, JointPredictor
from nextvid.models.targets import PixelTarget, target_dim
from nextvid.provenance import mix_seed

# query tokens, besides biases and norms (1-D), which timm already exempts; VideoMAE's decoder is a
# JointPredictor with a query token too
NO_WEIGHT_DECAY = ("predictor.query", "decoder.query")


class PretrainModel(nn.Module):
    """What the trainer and the probe rely on: an online encoder, optionally an EMA reference encoder,
    parameter groups for the optimiser, and a loss."""

    reference: Optional[Encoder]

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg.model.encoder)
        self.pixels = PixelTarget(cfg.model.encoder.tubelet, cfg.model.encoder.patch_size, cfg.model.encoder.in_chans)

    @torch.no_grad()
    def update_reference(self, momentum: float) -> None:
        """EMA: ref <- momentum * ref + (1 - momentum) * online."""
        if self.reference is None:
            return
        ref = [p for p in self.reference.parameters()]
        online = [p.detach() for p in self.encoder.parameters()]
        torch._foreach_lerp_(ref, online, 1.0 - momentum)

    def probe_encoder(self, which: str = "reference") -> Encoder:
        """The encoder to evaluate: the EMA reference (what V-JEPA-style papers probe) or the online one."""
        if which == "reference" and self.reference is not None:
            return self.reference
        if which not in ("reference", "online"):
            raise ValueError(f"probe encoder must be 'reference' or 'online', got {which!r}")
        return self.encoder

    def param_groups(self, weight_decay: float) -> list[dict]:
        """AdamW groups tagged "main" or "decoder" (the flow decoder has its own LR in later stages)."""
        groups = []
        for tag, module in self.optimised_modules().items():
            skip = [n.split(".", 1)[1] for n in NO_WEIGHT_DECAY if n.startswith(tag + ".")]
            for g in param_groups_weight_decay(module, weight_decay, no_weight_decay_list=skip):
                # the flow head has its own LR in later stages; a baseline's regression decoder does not
                g["lr_group"] = "decoder" if isinstance(module, FlowDecoder) else "main"
                groups.append(g)
        return [g for g in groups if g["params"]]

    def optimised_modules(self) -> dict[str, nn.Module]:
        return {name: m for name, m in self.named_children() if name not in ("reference", "pixels") and m is not None}

    def grid(self, video: torch.Tensor) -> tuple[int, int, int]:
        return self.encoder.token_grid(video)


class NextVid(PretrainModel):
    def __init__(self, cfg: Config):
        super().__init__(cfg)
        obj, width = cfg.objective, cfg.model.encoder.width
        self.reference = copy.deepcopy(self.encoder).requires_grad_(False) if obj.alignment and obj.ema else None
        predictor_cls = IsolatedPredictor if cfg.model.predictor.context_isolation else JointPredictor
        self.predictor = predictor_cls(cfg.model.predictor, width, width, cfg.model.encoder.rope_base)
        self.decoder = (
            FlowDecoder(cfg.model.decoder, width, target_dim(cfg), cfg.model.encoder.rope_base)
            if obj.generation
            else None
        )

    def forward(
        self,
        video: torch.Tensor,
        masks: list[torch.Tensor],
        tau_draws: int = 1,
        targets: Optional[torch.Tensor] = None,
        generator: Optional[torch.Generator] = None,
        noise_seeds: Optional[Sequence[int]] = None,
    ) -> dict[str, torch.Tensor]:
        """video (B, C, T, H, W); masks: one (B, K) visible-index tensor per view ([] = unmasked);
        targets: (B, T', P, C_t) generation targets (default: pixels, computed here);
        noise_seeds: one seed per sample for the flow's tau and noise (see FlowDecoder.loss)."""
        obj = self.cfg.objective
        B = video.shape[0]
        Tp, H, W = self.grid(video)
        P, Fr = H * W, Tp - 1  # Fr predicted token-frames: 1 .. T'-1
        reference = self._reference_targets(video)[:, 1:] if obj.alignment else None
        if obj.generation:
            targets = self.pixels(video) if targets is None else targets
            if targets.shape[:3] != (B, Tp, P):
                raise ValueError(f"targets must be (B, T', P, C_t) = ({B}, {Tp}, {P}, C_t), got {tuple(targets.shape)}")
            targets = targets[:, 1:]
        out: dict[str, torch.Tensor] = {}
        flow, align = [], []
        # no masks: the whole clip, as many views as configured (masking.unmasked_views)
        for view, keep in enumerate(masks or [None] * self.cfg.masking.unmasked_views):
            # context: the visible tokens of token-frames 0 .. T'-2; the last one is never context
            context = self.encoder(video, keep=keep, num_frames=Fr)
            context_pos = token_positions(keep, Fr, (H, W), B, video.device)
            query_idx = complement(keep, P) if (obj.loss_positions == "masked" and keep is not None) else None
            query_pos = token_positions(query_idx, Fr, (H, W), B, video.device, first_frame=1)
            z = self.predictor(context, context_pos, query_pos).view(B, Fr, -1, context.shape[-1])
            if reference is not None:
                align.append(F.mse_loss(z.float(), _select(reference, query_idx).float()))
            if self.decoder is not None:
                pos = query_pos.view(B, Fr, -1, 3)
                seeds = None if noise_seeds is None else [mix_seed(s, view) for s in noise_seeds]
                flow.append(self.decoder.loss(z, _select(targets, query_idx), pos, tau_draws, generator, seeds))
            out.setdefault("context", context.detach())
        loss = video.new_zeros((), dtype=torch.float32)
        if flow:
            out["flow"] = torch.stack(flow).mean()
            loss = loss + obj.flow_weight * out["flow"]
        if align:
            out["align"] = torch.stack(align).mean()
            loss = loss + obj.align_weight * out["align"]
        out["loss"] = loss
        return out

    @torch.no_grad()
    def _reference_targets(self, video: torch.Tensor) -> torch.Tensor:
        """sg(LN(c')): the reference encoder on the full unmasked clip, LayerNorm without affine
        [ours, V-JEPA]; without EMA (Table 12) the online encoder under stop-grad."""
        ref = (self.reference if self.reference is not None else self.encoder)(video)
        Tp, H, W = self.grid(video)
        ref = F.layer_norm(ref, ref.shape[-1:])
        return ref.view(video.shape[0], Tp, H * W, -1)

    @torch.no_grad()
    def generate_next_frames(
        self, video: torch.Tensor, keep: Optional[torch.Tensor] = None, steps: Optional[int] = None, generator=None
    ):
        """For figures: targets of token-frames 1..T'-1 sampled from the flow decoder, each conditioned
        on the (optionally masked) context of the frames before it. Returns (B, T'-1, P, C_t)."""
        if self.decoder is None:
            raise RuntimeError("this model has no generation head (objective.generation is off)")
        B = video.shape[0]
        Tp, H, W = self.grid(video)
        context = self.encoder(video, keep=keep, num_frames=Tp - 1)
        context_pos = token_positions(keep, Tp - 1, (H, W), B, video.device)
        query_pos = token_positions(None, Tp - 1, (H, W), B, video.device, first_frame=1)
        z = self.predictor(context, context_pos, query_pos).view(B, Tp - 1, H * W, -1)
        return self.decoder.sample(z, query_pos.view(B, Tp - 1, H * W, 3), steps, generator)


class VideoMAE(PretrainModel):
    """VideoMAE-style baseline: bidirectional encoder on the visible tubes, a self-attention decoder
    over [context; mask tokens], per-patch-normalised pixel regression on masked positions."""

    def __init__(self, cfg: Config):
        super().__init__(cfg)
        self.reference = None
        self.decoder = JointPredictor(
            cfg.model.predictor,
            cfg.model.encoder.width,
            self.pixels.dim,
            cfg.model.encoder.rope_base,
            rule="bidirectional",
        )

    def forward(self, video, masks, tau_draws: int = 1, targets=None, generator=None, noise_seeds=None):
        """`tau_draws`, `generator`, `noise_seeds`: the trainer's NExT-Vid arguments; a regression objective draws no noise."""
        if len(masks) != 1:
            raise ValueError("VideoMAE takes exactly one (tube) mask view")
        keep = masks[0]
        B = video.shape[0]
        Tp, H, W = self.grid(video)
        masked = complement(keep, H * W)
        context = self.encoder(video, keep=keep)
        pred = self.decoder(
            context,
            token_positions(keep, Tp, (H, W), B, video.device),
            token_positions(masked, Tp, (H, W), B, video.device),
        ).view(B, Tp, -1, self.pixels.dim)
        target = normalize_tokens(_select(self.pixels(video), masked))
        loss = F.mse_loss(pred.float(), target.float())
        return {"loss": loss, "regression": loss.detach(), "context": context.detach()}


class ARRegression(PretrainModel):
    """Toto/AIM-style baseline: frame-causal encoder on the whole clip (no masking), a causal
    self-attention predictor (no context isolation), per-patch-normalised next-frame pixel regression
    (no flow head)."""

    def __init__(self, cfg: Config):
        super().__init__(cfg)
        self.reference = None
        self.predictor = JointPredictor(
            cfg.model.predictor, cfg.model.encoder.width, self.pixels.dim, cfg.model.encoder.rope_base
        )

    def forward(self, video, masks, tau_draws: int = 1, targets=None, generator=None, noise_seeds=None):
        """`tau_draws`, `generator`, `noise_seeds`: the trainer's NExT-Vid arguments; a regression objective draws no noise."""
        if masks:
            raise ValueError("the AR-regression baseline is unmasked (masking.kind must be none)")
        B = video.shape[0]
        Tp, H, W = self.grid(video)
        context = self.encoder(video, num_frames=Tp - 1)
        pred = self.predictor(
            context,
            token_positions(None, Tp - 1, (H, W), B, video.device),
            token_positions(None, Tp - 1, (H, W), B, video.device, first_frame=1),
        ).view(B, Tp - 1, H * W, -1)
        target = normalize_tokens(self.pixels(video)[:, 1:])
        loss = F.mse_loss(pred.float(), target.float())
        return {"loss": loss, "regression": loss.detach(), "context": context.detach()}


def normalize_tokens(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Per-token standardisation of pixel targets (VideoMAE's norm_pix_loss)."""
    mean, var = x.mean(dim=-1, keepdim=True), x.var(dim=-1, keepdim=True, unbiased=False)
    return (x - mean) / (var + eps).sqrt()


def _select(x: torch.Tensor, spatial: Optional[torch.Tensor]) -> torch.Tensor:
    """(B, F, P, C) -> (B, F, Q, C) at spatial indices (B, Q), the same in every frame."""
    if spatial is None:
        return x
    B, Fr, _, C = x.shape
    return torch.gather(x, 2, spatial[:, None, :, None].expand(B, Fr, spatial.shape[1], C))


MODELS = {"nextvid": NextVid, "videomae": VideoMAE, "ar_regression": ARRegression}


def build_model(cfg: Config) -> PretrainModel:
    model = MODELS[cfg.objective.method](cfg)
    apply_compute(model, cfg.compute)
    return model


def apply_compute(model: PretrainModel, compute: ComputeConfig) -> None:
    """The config's `compute` settings on the modules they concern: per-block activation checkpointing
    of the encoder, the predictor and the decoder (a baseline's regression decoder included), and the
    masked-attention kernel everywhere."""
    for name, on in (
        ("encoder", compute.checkpoint_encoder),
        ("predictor", compute.checkpoint_predictor),
        ("decoder", compute.checkpoint_decoder),
    ):
        if getattr(model, name, None) is not None:
            getattr(model, name).checkpoint_blocks = on
    for module in model.modules():
        if hasattr(type(module), "attention_kernel"):
            module.attention_kernel = compute.attention
