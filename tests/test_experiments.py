"""The variant registry: every variant resolves on the CPU preset, differs from the method, and names
only table rows that nextvid.report.paper knows."""

import pytest

from nextvid import config
from nextvid.experiments import VARIANTS, get_variant
from nextvid.report.paper import ABLATIONS
from nextvid.vae.config import load_vae_config, target_overrides


def workflow_inputs(variant) -> list[str]:
    """The `--set` strings the workflow adds for what a variant needs (common.smk: pretrain_overrides)."""
    return target_overrides("/vae", load_vae_config()) if "vae" in variant.needs else []


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_resolves_and_changes_the_config(name):
    variant = get_variant(name)
    cfg = config.load("tiny", None, list(variant.overrides) + workflow_inputs(variant))
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
                assert row in ABLATIONS[table], (v.name, table, row)


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
