"""`nextvid describe`: the paper's sizes (Table 7: encoders 300M / 600M / 1.1B; predictor 22M; decoder
33M) and FLOPs that agree with an independent count from parameters and token counts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from nextvid.describe import describe
from nextvid.models.nextvid import build_model
from nextvid.presets import get_preset

ENCODER_PARAMS = {"vit_l": 303e6, "vit_h": 632e6, "vit_g": 1.012e9}  # timm's ViT-L/H/G counts at 2x16x16 tubelets


@pytest.fixture(scope="module")
def described():
    return {name: describe(get_preset(name)) for name in ("vit_l", "vit_h", "vit_g")}


def within(value: float, expect: float, rel: float) -> bool:
    return abs(value / expect - 1) <= rel


@pytest.mark.parametrize("name", ["vit_l", "vit_h", "vit_g"])
def test_paper_sizes(described, name):
    info = described[name]
    assert within(info["encoder_params"], ENCODER_PARAMS[name], 0.02), info["encoder_params"]
    assert within(info["encoder_params"], {"vit_l": 300e6, "vit_h": 630e6, "vit_g": 1.05e9}[name], 0.05)
    assert within(info["predictor_params"], 22e6, 0.10), info["predictor_params"]
    assert within(info["decoder_params"], 33e6, 0.10), info["decoder_params"]
    assert info["trainable_params"] == info["encoder_params"] + info["predictor_params"] + info["decoder_params"]
    assert info["tokens_per_clip"] == 8 * 16 * 16 and info["tau_draws"] == 4 and info["input"] == [16, 256, 256]


def _flops_by_hand(name: str, info: dict) -> tuple[float, float]:
    """Encoder forward FLOPs and one training step's FLOPs from parameter counts: a linear layer costs
    2 x params per token, dense attention 4 x N_q x N_k x width per layer; backward = 2 x forward."""
    cfg = get_preset(name)
    with torch.device("meta"):
        model = build_model(cfg)
    enc, pcfg, dcfg = cfg.model.encoder, cfg.model.predictor, cfg.model.decoder
    count = lambda params: sum(p.numel() for p in params)  # noqa: E731
    enc_token_params = count(model.encoder.blocks.parameters()) + count(model.encoder.patch_embed.parameters())

    def encoder(n_tokens: int) -> float:
        return 2 * enc_token_params * n_tokens + 4 * n_tokens**2 * enc.width * enc.depth

    Tp, P = enc.frames // enc.tubelet, (enc.image_size // enc.patch_size) ** 2
    Fr = Tp - 1
    # predictor: context_proj and each block's key/value projection run on the M context tokens,
    # everything else on the N_q query tokens
    kv = count(p for n, p in model.predictor.named_parameters() if ".kv." in n or n.startswith("context_proj"))
    pred_q = count(model.predictor.parameters()) - kv
    # decoder: adaLN and the timestep MLP run once per (sample, frame), not per token
    dec_tok = count(p for n, p in model.decoder.named_parameters() if "adaln" not in n and "t_embed" not in n)
    train = encoder(info["tokens_per_clip"])  # reference encoder, forward only
    for K in info["visible_tokens_per_view"]:
        M, Nq = Fr * K, Fr * P
        pred = 2 * kv * M + 2 * pred_q * Nq + 4 * Nq * M * pcfg.width * pcfg.depth
        dec = info["tau_draws"] * (2 * dec_tok * Nq + 4 * Fr * P * P * dcfg.width * dcfg.depth)
        train += 3 * (encoder(M) + pred + dec)
    return encoder(info["tokens_per_clip"]), train


@pytest.mark.parametrize("name", ["vit_l", "vit_h", "vit_g"])
def test_flops_match_parameter_count(described, name):
    info = described[name]
    enc_fwd, train = _flops_by_hand(name, info)
    assert within(info["encoder_forward_flops_per_clip"], enc_fwd, 0.02), (
        info["encoder_forward_flops_per_clip"],
        enc_fwd,
    )
    assert within(info["train_flops_per_clip"], train, 0.05), (info["train_flops_per_clip"], train)
    # the attention term is not negligible at 2048 tokens: 2 x params x tokens alone is too low
    assert info["encoder_forward_flops_per_clip"] > 1.2 * 2 * info["encoder_params"] * info["tokens_per_clip"]


def test_tau_draws_scale_only_the_decoder(described):
    one, four = describe(get_preset("vit_l"), tau_draws=1), described["vit_l"]
    assert one["encoder_forward_flops_per_clip"] == four["encoder_forward_flops_per_clip"]
    _, train1 = _flops_by_hand("vit_l", one)
    _, train4 = _flops_by_hand("vit_l", four)
    assert within(four["train_flops_per_clip"] - one["train_flops_per_clip"], train4 - train1, 0.05)


def test_cli_json_for_nano():
    out = subprocess.run(
        [sys.executable, "-m", "nextvid", "describe", "--preset", "nano", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    info = json.loads(out.stdout)
    assert info == describe(get_preset("nano"))
    model = build_model(get_preset("nano"))
    assert info["encoder_params"] == sum(p.numel() for p in model.encoder.parameters())
    assert info["visible_tokens_per_view"] and all(0 < k < 16 for k in info["visible_tokens_per_view"])
