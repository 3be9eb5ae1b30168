"""The GPU memory model (`nextvid describe --memory`): its activation count against what autograd
really saves, the paper presets' settings, and the stop before a job that cannot fit is queued."""

from __future__ import annotations

import json

import pytest
import torch

from nextvid.cli import main
from nextvid.config import ConfigError, merge
from nextvid.masking import MaskSampler
from nextvid.memory import clip_shapes, estimate, saved_bytes
from nextvid.memory_fit import check_fits, fitted_config, memory_plan
from nextvid.models.nextvid import build_model
from nextvid.presets import get_preset

ALL = {"checkpoint_encoder": True, "checkpoint_predictor": True, "checkpoint_decoder": True}


@pytest.mark.parametrize(
    "preset,overrides",
    [
        ("nano", {}),
        ("tiny", {}),
        ("tiny", {"compute": ALL}),
        ("tiny", {"objective": {"loss_positions": "masked"}}),
        ("tiny", {"model": {"decoder": {"attention": "cross_frame"}}}),
        ("tiny", {"model": {"predictor": {"context_isolation": False}}}),
    ],
)
def test_activation_estimate_matches_autograds_saved_bytes(preset, overrides):
    """fp32 on CPU, dense-mask SDPA (the kernel the CPU runs): the count is within 10% of the bytes
    saved_tensors_hooks sees for one training forward at the first stage (4 tau draws)."""
    cfg = merge(get_preset(preset), {"schedule": {"precision": "fp32"}}, overrides)
    stage, batch = cfg.schedule.stages[0], 2
    enc = cfg.model.encoder
    torch.manual_seed(0)
    model = build_model(cfg)
    video = torch.rand(batch, enc.in_chans, stage.frames, enc.image_size, enc.image_size)
    masks = MaskSampler(cfg.masking, model.encoder.grid_hw, seed=cfg.seed)(batch, 0)
    measured = saved_bytes(model, lambda: model(video, masks, tau_draws=stage.tau_draws, noise_seeds=[1, 2])["loss"])
    checkpoint = frozenset(m for m in ("encoder", "predictor", "decoder") if getattr(cfg.compute, f"checkpoint_{m}"))
    counted = estimate(cfg, batch, stage.frames, stage.tau_draws, kernel="sdpa", checkpoint=checkpoint).saved
    assert counted == pytest.approx(measured, rel=0.10)


def test_estimate_scales_with_the_micro_batch_and_checkpointing_cuts_it():
    cfg = get_preset("vit_l")
    shapes = clip_shapes(cfg, 16, 64)  # the same masks for every micro-batch size
    one, two = (estimate(cfg, n, 16, 4, shapes=shapes) for n in (1, 2))
    assert two.saved == pytest.approx(2 * one.saved, rel=1e-6) and two.state == one.state
    checkpointed = estimate(cfg, 2, 16, 4, checkpoint=frozenset({"decoder"}), shapes=shapes)
    assert checkpointed.decoder < two.decoder / 4 and checkpointed.encoder == two.encoder


@pytest.mark.parametrize("preset", ["vit_l", "vit_g"])
def test_paper_presets_fit_80gb_with_the_settings_the_model_picks(preset):
    cfg = get_preset(preset)
    plan = memory_plan(cfg, gpus=96, gpu_mem_gb=80)
    assert [s["stage"] for s in plan["stages"]] == ["warmup", "stable1", "stable2", "cooldown"]
    assert all(s["fits"] and s["gib"]["peak"] <= plan["budget_gib"] for s in plan["stages"])
    # the whole batch does not fit in the 4-draw stages: the settings are needed, not decoration
    whole = memory_plan(merge(cfg, {"schedule": {"stages": {str(i): {"micro_batch": 0} for i in range(4)}}}), 96, 80)
    assert not whole["stages"][0]["fits"]
    refit = fitted_config(
        whole_cfg := merge(cfg, {"schedule": {"stages": {str(i): {"micro_batch": 0} for i in range(4)}}}), 96, 80
    )
    assert [s.micro_batch for s in refit.schedule.stages] == [s.micro_batch for s in cfg.schedule.stages]
    assert refit.compute == whole_cfg.compute


def test_a_config_that_cannot_fit_names_the_stage_the_estimate_and_a_fitting_setting():
    cfg = merge(get_preset("vit_l"), {"schedule": {"stages": {"0": {"micro_batch": 0}}}})
    with pytest.raises(ConfigError) as err:
        check_fits(cfg, gpus=96, gpu_mem_gb=80)
    message = str(err.value)
    assert "stage warmup (schedule.stages.0)" in message and "32 clips per GPU" in message and "GiB" in message
    assert "schedule.stages.0.micro_batch=8" in message


def test_describe_memory_json_lists_every_stage(capsys):
    assert main(["describe", "--preset", "vit_l", "--memory", "--gpus", "96", "--gpu-mem", "80", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert len(plan["stages"]) == 4
    for s in plan["stages"]:
        assert s["gib"]["peak"] > s["gib"]["params"] > 0 and s["fitting_setting"] is not None


def test_slurm_submission_stops_before_queueing_a_config_that_cannot_fit(tmp_path):
    from nextvid.launch import LaunchError, launch

    cfg = merge(get_preset("vit_l"), {"schedule": {"stages": {"0": {"micro_batch": 0}}}, "launch": {"nodes": 12}})
    with pytest.raises(LaunchError, match=r"not submitted: stage warmup .* would fit"):
        launch(cfg, tmp_path / "run", "slurm")
    assert not (tmp_path / "run" / "submitit").exists()


def test_every_paper_experiment_fits_its_gpus_as_paper_yaml_sets_it():
    """workflow/config/paper.yaml as the workflow submits it: each experiment's preset, `set` and
    `launch` overrides, for every variant (the memory check would otherwise stop the submission)."""
    from pathlib import Path

    from nextvid.config import load, load_yaml
    from nextvid.experiments import get_variant

    paper = load_yaml((Path(__file__).parents[1] / "workflow/config/paper.yaml").read_text())
    for name, exp in paper["experiments"].items():
        pretrain = exp["pretrain"]
        for variant in exp["variants"]:
            cfg = load(
                exp["preset"],
                None,
                [
                    *get_variant(variant).overrides,
                    *pretrain.get("set", []),
                    *pretrain["launch"],
                    f"schedule.total_steps={pretrain['total_steps']}",
                ],
            )
            check_fits(cfg, cfg.launch.nodes * cfg.launch.gpus_per_node, cfg.launch.gpu_mem_gb)
