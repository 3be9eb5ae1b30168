"""The variant registry: every variant resolves on the CPU preset, differs from the method, and names
only table rows that nextvid.report.paper_numbers knows."""

import pytest
import torch

from nextvid import config
from nextvid.config_resolve import resolve_pretrain_config
from nextvid.experiments import VARIANTS, get_variant
from nextvid.plan.runs import needs_overrides
from nextvid.report.paper_numbers import ABLATIONS, OUR_ROWS
from nextvid.vae.config import load_vae_config


def workflow_inputs(variant) -> list[str]:
    """The `--set` strings the workflow adds for what a variant needs (nextvid.plan: pretrain_overrides)."""
    return needs_overrides(variant, "/vae", load_vae_config())


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_resolves_and_changes_the_config(name):
    variant = get_variant(name)
    cfg = resolve_pretrain_config("tiny", None, list(variant.overrides) + workflow_inputs(variant), inputs_ready=False)
    if name == "nextvid":
        assert cfg == config.load("tiny")
    else:
        assert cfg.stable_hash() != config.load("tiny").stable_hash()


def test_only_vae_targets_need_the_workflow_vae():
    assert {v.name for v in VARIANTS.values() if v.needs} == {"target_vae"}
    assert all(set(v.needs) <= {"vae"} for v in VARIANTS.values())
    assert all(("target.kind=vae" in v.overrides) == ("vae" in v.needs) for v in VARIANTS.values())


def test_table_rows_exist_in_the_paper_tables():
    for v in VARIANTS.values():
        for table, row in v.tables.items():
            if table != "table1":
                assert row in ABLATIONS[table] or row in OUR_ROWS.get(table, {}), (v.name, table, row)


def test_unknown_variant_is_a_config_error():
    with pytest.raises(config.ConfigError, match="variant 'nope'"):
        get_variant("nope")


def test_probe_paths_parse_back_to_their_key():
    from nextvid import layout

    path = layout.probe_metrics("embedded", "no_ema", 2, 600, "motion_sequence")
    assert layout.parse_probe_metrics(path) == layout.ProbeKey("embedded", "no_ema", 2, 600, "motion_sequence")
    assert layout.checkpoint_path("embedded", "nextvid", 0, 600).name == "step_0000600.pt"
    assert layout.vae_dir("grid").as_posix() == "results/vae/grid"
    with pytest.raises(ValueError, match="not a probe result path"):
        layout.parse_probe_metrics("results/probe/x/metrics.json")


# ------------------------------------------------------------------ every variant is what it claims


def resolve_run(name: str) -> config.Config:
    """A variant's config as `nextvid pretrain` resolves it from the workflow's arguments
    (nextvid.plan: pretrain_overrides -> --preset/--set -> nextvid.config_resolve), on the nano
    preset, without data (none is read here)."""
    variant = get_variant(name)
    return resolve_pretrain_config("nano", None, list(variant.overrides) + workflow_inputs(variant), inputs_ready=False)


def frame0_moves(encode, video: torch.Tensor) -> bool:
    """Does the first token-frame's output change when only the last frames of the clip change?"""
    changed = video.clone()
    changed[:, :, -2:] = -changed[:, :, -2:]
    with torch.no_grad():
        a, b = encode(video), encode(changed)
    first = a.shape[1] // (video.shape[2] // 2)  # tokens of token-frame 0
    return bool((a[:, :first] - b[:, :first]).abs().max() > 0)


@pytest.mark.usefixtures("single_thread")
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_is_what_its_description_claims(name, tmp_path):
    """Causal or not (in pretraining and in probing), mask kind, views, objectives, decoder attention
    and the probed encoder: each claim checked on the model the workflow would train and probe."""
    from nextvid.masking import MaskSampler
    from nextvid.models.decoder import CrossDiTBlock, DiTBlock, FlowDecoder
    from nextvid.models.nextvid import build_model
    from nextvid.models.targets import target_dim
    from nextvid.probe.encoders import load_token_source
    from nextvid.probe.protocol import load_protocol
    from nextvid.train import checkpoint as ckpt

    variant = get_variant(name)
    claims = variant.claims
    cfg = resolve_run(name)
    torch.manual_seed(0)
    model = build_model(cfg)
    enc = cfg.model.encoder
    video = (
        torch.rand(2, 3, enc.frames, enc.image_size, enc.image_size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    )

    # causality: the description's word, the pretraining encoder, and the encoder the probe reads
    assert ("bidirectional" in variant.description) == (not claims.causal), variant.description
    assert frame0_moves(model.encoder, video) == (not claims.causal), "pretraining encoder"
    state = {"step": 1, "config": cfg.to_dict(), "config_hash": cfg.training_hash(), "model": model.state_dict()}
    path = ckpt.save(tmp_path, state, keep=True)
    protocol = load_protocol("images", None, [f"resolution={enc.image_size}", f"frames={enc.frames}"])
    source = load_token_source(str(path), "reference", protocol)
    assert source.record["attention_mask"] == ("frame_causal" if claims.causal else "bidirectional")
    assert frame0_moves(source.module, video) == (not claims.causal), "probed encoder"
    assert source.kind == {"EMA": "reference", "online": "online"}[claims.probed]

    # masking and views: encoder passes with gradient (the reference pass has none)
    assert cfg.masking.kind == claims.masking
    masks = MaskSampler(cfg.masking, model.encoder.grid_hw)(2, 0)
    passes = []
    model.encoder.register_forward_hook(lambda *_: passes.append(torch.is_grad_enabled()))
    Tp, P = enc.frames // enc.tubelet, model.encoder.grid_hw[0] * model.encoder.grid_hw[1]
    targets = torch.randn(2, Tp, P, target_dim(cfg)) if cfg.target.kind == "vae" else None
    out = model(video, masks, tau_draws=1, targets=targets)
    assert sum(passes) == claims.views
    assert set(out) & {"flow", "align", "regression"} == set(claims.objectives)

    # the flow decoder: how z_t enters and what the noisy targets attend to (behaviour: test_model_causality)
    decoder = getattr(model, "decoder", None)
    if claims.decoder is None:
        assert not isinstance(decoder, FlowDecoder)
    else:
        assert f"{decoder.cfg.condition}, {decoder.cfg.attention}" == claims.decoder
        block = decoder.blocks[0]
        if decoder.cfg.condition == "cross":
            assert isinstance(block, CrossDiTBlock) and (block.attn is None) == (decoder.cfg.attention == "none")
        else:
            assert isinstance(block, DiTBlock)
