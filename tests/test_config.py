"""Config is data: every unknown key and wrong type is an error naming its dotted key (nested, inside
lists, in YAML files and in --set overrides), presets load, relation checks fire, the stable hash is
a pure function of the resolved config, and to_dict/from_dict round-trips."""

from __future__ import annotations

import copy
import dataclasses
import re
import subprocess
import sys
import typing

import pytest

import nextvid.config as config_module
import nextvid.config_schema as config_schema
from nextvid.cli import main as cli_main
from nextvid.config import Config, ConfigError, from_dict, load, merge, parse_override, save
from nextvid.presets import PRESETS, get_preset


def error_key(excinfo) -> str:
    """The dotted key a ConfigError names: the text before the first ': '."""
    return str(excinfo.value).split(": ", 1)[0]


def plain(name: str = "vit_l") -> dict:
    return get_preset(name).to_dict()


# ------------------------------------------------------------------------------ unknown keys, types


def error_key_after_setting(path: list, value) -> str:
    """The dotted key that from_dict's error names after one value of a plain config is replaced."""
    data = plain()
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    with pytest.raises(ConfigError) as excinfo:
        from_dict(Config, data)
    return error_key(excinfo)


@pytest.mark.parametrize(
    "path, value, key",
    [
        (["sedd"], 1, "sedd"),
        (["model", "encoder", "widht"], 1024, "model.encoder.widht"),
        (["model", "decoder", "attn"], "frame", "model.decoder.attn"),
        (["masking", "generators", 1, "spatial_scal"], 0.5, "masking.generators.1.spatial_scal"),
        (["schedule", "stages", 3, "lr"], 0.1, "schedule.stages.3.lr"),
    ],
)
def test_unknown_key_is_named(path, value, key):
    assert error_key_after_setting(path, value) == key


@pytest.mark.parametrize(
    "path, value, key",
    [
        (["seed"], "0", "seed"),
        (["model", "encoder", "depth"], 4.0, "model.encoder.depth"),  # ints are strict: no float
        (["model", "encoder", "depth"], True, "model.encoder.depth"),  # a bool is not an int
        (["model", "encoder", "causal"], 1, "model.encoder.causal"),
        (["model", "encoder", "mlp_ratio"], "4", "model.encoder.mlp_ratio"),
        (["model", "decoder", "attention"], "global", "model.decoder.attention"),  # Literal
        (["masking", "generators", 1, "spatial_scale"], "big", "masking.generators.1.spatial_scale"),
        (["masking", "generators", 0, "aspect_ratio"], [0.75, "x"], "masking.generators.0.aspect_ratio.1"),
        (["masking", "generators", 0, "aspect_ratio"], [0.75], "masking.generators.0.aspect_ratio"),
        (["masking", "generators", 1], 3, "masking.generators.1"),  # not a mapping
        (["masking", "generators"], {"a": 1}, "masking.generators"),  # not a list
        (["schedule", "stages", 2, "decoder_lr"], "fast", "schedule.stages.2.decoder_lr"),  # Optional
        (["model", "encoder"], 5, "model.encoder"),
    ],
)
def test_wrong_type_is_named(path, value, key):
    assert error_key_after_setting(path, value) == key


def test_missing_required_field_in_list_element_is_named():
    data = plain()
    data["masking"]["generators"] = [{"num_blocks": 2}]  # spatial_scale has no default
    with pytest.raises(ConfigError) as excinfo:
        from_dict(Config, data)
    assert error_key(excinfo) == "masking.generators.0"
    assert "spatial_scale" in str(excinfo.value)


def test_yaml_file_errors_name_the_key(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(
        "preset: nano\nmodel:\n  encoder:\n    depth: 3\nmasking:\n  generators:\n"
        "    - {num_blocks: 4, spatial_scale: 0.2}\n"
    )
    cfg = load(file=good)
    assert cfg.model.encoder.depth == 3 and cfg.model.encoder.width == get_preset("nano").model.encoder.width
    assert cfg.masking.generators == (config_module.BlockMaskSpec(4, 0.2),)
    exponent = tmp_path / "exponent.yaml"
    exponent.write_text("schedule:\n  weight_decay: 4e-2\n")  # a string to YAML 1.1, a number here
    assert load("nano", exponent).schedule.weight_decay == 0.04
    cases = {
        "model:\n  encoder:\n    deepth: 3\n": "model.encoder.deepth",
        "model:\n  encoder:\n    depth: three\n": "model.encoder.depth",
        "masking:\n  generators:\n    - {num_blocks: 4, spatial_scale: 0.2}\n    - {num_blocks: 2, spatial_scale: wide}\n": "masking.generators.1.spatial_scale",
        "masking:\n  generators:\n    - {num_blocks: 4, spatial_scale: 0.2, blocks: 3}\n": "masking.generators.0.blocks",
        "objective:\n  ema: maybe\n": "objective.ema",
    }
    for i, (text, key) in enumerate(cases.items()):
        path = tmp_path / f"bad{i}.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError) as excinfo:
            load("nano", path)
        assert error_key(excinfo) == key, text


@pytest.mark.parametrize(
    "override, key",
    [
        ("model.encoder.deepth=3", "model.encoder.deepth"),
        ("model.encoder.depth=3.5", "model.encoder.depth"),
        ("masking.generators.1.spatial_scale=abc", "masking.generators.1.spatial_scale"),
        ("masking.generators.1.spatial_scal=0.5", "masking.generators.1.spatial_scal"),
        ("masking.generators.5.spatial_scale=0.5", "masking.generators.5"),
        ("masking.generators.x.spatial_scale=0.5", "masking.generators.x"),
        ("masking.generators.0.aspect_ratio=[1, two]", "masking.generators.0.aspect_ratio.1"),
        ("schedule.stages.0.tau_draws=many", "schedule.stages.0.tau_draws"),
        ("schedule.stages.0.lr_start=1e-5x", "schedule.stages.0.lr_start"),
        ("schedule.stages.0.tau_draws=1e2", "schedule.stages.0.tau_draws"),
        ("nothing.here=1", "nothing"),
    ],
)
def test_override_errors_name_the_key(override, key):
    with pytest.raises(ConfigError) as excinfo:
        load("nano", None, [override])
    assert error_key(excinfo) == key


def test_overrides_apply_inside_lists_and_parse_yaml_values():
    cfg = load(
        "nano",
        None,
        [
            "masking.generators.1.spatial_scale=0.5",
            "masking.generators.0.aspect_ratio=[1, 2]",
            "model.decoder.attention=cross_frame",
            "schedule.stages.2.decoder_lr=null",
        ],
    )
    assert cfg.masking.generators[1].spatial_scale == 0.5 and cfg.masking.generators[1].num_blocks == 2
    assert cfg.masking.generators[0].aspect_ratio == (1.0, 2.0)
    assert cfg.model.decoder.attention == "cross_frame"
    assert cfg.schedule.stages[2].decoder_lr is None
    assert parse_override("a.b.c=[1, 2]") == {"a": {"b": {"c": [1, 2]}}}
    # YAML 1.1 reads `1e-5` as a string; an override reads it as the number it is
    cfg = load(
        "nano",
        None,
        ["schedule.stages.0.lr_start=1e-5", "schedule.stages.3.decoder_lr=3E-4", "schedule.weight_decay=.5e+0"],
    )
    assert cfg.schedule.stages[0].lr_start == 1e-5 and cfg.schedule.stages[3].decoder_lr == 3e-4
    assert cfg.schedule.weight_decay == 0.5
    with pytest.raises(ConfigError):
        parse_override("model.encoder.depth")


def test_cli_reports_config_errors_with_the_key(capsys):
    assert cli_main(["config", "--preset", "nano", "--set", "masking.generators.1.spatial_scale=abc"]) == 2
    assert "masking.generators.1.spatial_scale" in capsys.readouterr().err
    assert cli_main(["config", "--preset", "nano", "--hash"]) == 0
    assert capsys.readouterr().out.strip() == get_preset("nano").stable_hash()


# ------------------------------------------------------------------------------ relation checks


@pytest.mark.parametrize(
    "override, key",
    [
        ({"model": {"encoder": {"width": 100, "heads": 16}}}, "model.encoder.width"),
        ({"model": {"predictor": {"width": 100}}}, "model.predictor.width"),
        ({"model": {"decoder": {"heads": 5}}}, "model.decoder.width"),
        ({"model": {"encoder": {"frames": 15}}}, "model.encoder.frames"),
        ({"model": {"encoder": {"frames": 2}}}, "model.encoder.frames"),  # one token-frame: nothing to predict
        ({"model": {"encoder": {"image_size": 250}}}, "model.encoder.image_size"),
        (
            {
                "masking": {
                    "generators": [{"num_blocks": 8, "spatial_scale": 0.15}, {"num_blocks": 2, "spatial_scale": 1.5}]
                }
            },
            "masking.generators.1.spatial_scale",
        ),
        ({"masking": {"generators": [{"num_blocks": 0, "spatial_scale": 0.15}]}}, "masking.generators.0.num_blocks"),
        (
            {"masking": {"generators": [{"num_blocks": 1, "spatial_scale": 0.15, "aspect_ratio": [2.0, 1.0]}]}},
            "masking.generators.0.aspect_ratio",
        ),
        (
            {"masking": {"generators": [{"num_blocks": 1, "spatial_scale": 0.15, "temporal_scale": 0.5}]}},
            "masking.generators.0.temporal_scale",
        ),
        ({"masking": {"kind": "multiblock", "generators": []}}, "masking.generators"),
        ({"masking": {"tube_ratio": 1.0}}, "masking.tube_ratio"),
        ({"masking": {"unmasked_views": 0}}, "masking.unmasked_views"),
        (
            {"model": {"decoder": {"attention": "none"}}},
            "model.decoder.attention",
        ),  # concat without attention: no mixing
        ({"model": {"decoder": {"condition": "cross", "attention": "cross_frame"}}}, "model.decoder.attention"),
        ({"schedule": {"stop_at": 132_001}}, "schedule.stop_at"),
        ({"schedule": {"stop_at": -1}}, "schedule.stop_at"),
        ({"objective": {"generation": False, "alignment": False}}, "objective"),
        ({"objective": {"ema_momentum": 1.5}}, "objective.ema_momentum"),
        ({"target": {"kind": "vae"}}, "target.vae_path"),
        ({"target": {"kind": "vae", "vae_path": "v"}}, "target.vae_stats"),
        (
            {"target": {"kind": "vae", "vae_path": "v", "vae_stats": "s", "latent_downsample": 3}},
            "target.latent_downsample",
        ),
        (
            {
                "schedule": {
                    "stages": [
                        {
                            "name": "a",
                            "steps": 1,
                            "lr_start": 1e-4,
                            "lr_end": 1e-4,
                            "decoder_lr": None,
                            "tau_draws": 0,
                            "frames": 16,
                            "batch_size": 8,
                        }
                    ]
                }
            },
            "schedule.stages.0.tau_draws",
        ),
        (
            {
                "schedule": {
                    "stages": [
                        {
                            "name": "a",
                            "steps": 1,
                            "lr_start": 1e-4,
                            "lr_end": 1e-4,
                            "decoder_lr": None,
                            "tau_draws": 1,
                            "frames": 15,
                            "batch_size": 8,
                        }
                    ]
                }
            },
            "schedule.stages.0.frames",
        ),
    ],
)
def test_relation_checks_name_the_key(override, key):
    with pytest.raises(ConfigError) as excinfo:
        merge(get_preset("vit_l"), override)
    assert error_key(excinfo) == key


def test_frozen():
    cfg = get_preset("nano")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 3  # type: ignore[misc]


# ------------------------------------------------------------------------------ presets, round trip


def test_presets_load_with_paper_sizes_and_cpu_structure():
    expect = {"vit_l": (24, 1024, 16, 4096), "vit_h": (32, 1280, 16, 5120), "vit_g": (40, 1408, 22, 6144)}
    for name, (depth, width, heads, hidden) in expect.items():
        enc = get_preset(name).model.encoder
        assert (enc.depth, enc.width, enc.heads, round(enc.width * enc.mlp_ratio)) == (depth, width, heads, hidden)
    paper = get_preset("vit_l")
    for name in ("tiny", "nano"):
        cfg = get_preset(name)
        enc = cfg.model.encoder
        # CPU presets shrink sizes only: tubelets, causality, RoPE, both mask views, EMA stay
        assert (enc.tubelet, enc.patch_size, enc.causal) == (2, 16, True)
        assert cfg.masking == paper.masking
        assert cfg.objective.ema and cfg.objective.generation and cfg.objective.alignment
        assert cfg.model.predictor.context_isolation and cfg.model.decoder.attention == "frame"
        assert [s.tau_draws for s in cfg.schedule.stages] == [4, 4, 1, 1]
    with pytest.raises(ConfigError) as excinfo:
        get_preset("vit_x")
    assert "vit_x" in str(excinfo.value)


def test_cpu_recipe_keeps_every_structural_property():
    """The learning recipe of issue 20 changes sizes (resolution, patch, widths, depths, batch, EMA
    speed), not the method: tubelets of 2 frames, a frame-causal RoPE encoder, both multi-block views
    (on a 6 x 6 grid), the context-isolated predictor, the EMA reference, the frame-isolated flow
    decoder with k tau draws and the four-stage schedule."""
    cfg, paper = get_preset("cpu"), get_preset("vit_l")
    enc = cfg.model.encoder
    assert enc.tubelet == 2 and enc.causal and enc.image_size % enc.patch_size == 0
    assert (enc.image_size // enc.patch_size, enc.frames // enc.tubelet) == (6, 4)
    assert cfg.masking == paper.masking and len(cfg.masking.generators) == 2
    assert (
        cfg.objective.ema
        and cfg.objective.generation
        and cfg.objective.alignment
        and 0.99 < cfg.objective.ema_momentum < 1
    )
    assert cfg.model.predictor.context_isolation and cfg.model.decoder.attention == "frame"
    assert [s.name for s in cfg.schedule.stages] == [s.name for s in paper.schedule.stages]
    assert [s.tau_draws for s in cfg.schedule.stages] == [4, 4, 1, 1]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_round_trip(name, tmp_path):
    cfg = get_preset(name)
    assert from_dict(Config, cfg.to_dict()) == cfg
    assert from_dict(Config, copy.deepcopy(cfg.to_dict())).stable_hash() == cfg.stable_hash()
    save(cfg, tmp_path / "c.yaml")
    assert load(file=tmp_path / "c.yaml") == cfg
    # a YAML file naming its preset resolves to that preset
    (tmp_path / "p.yaml").write_text(f"preset: {name}\n")
    assert load(file=tmp_path / "p.yaml") == cfg


# ------------------------------------------------------------------------------ stable hash


def test_stable_hash_is_stable_across_processes():
    code = "from nextvid.presets import get_preset; print(*(get_preset(n).stable_hash() for n in ('vit_l', 'tiny', 'nano')))"
    hashes = []
    for seed in ("1", "2"):  # different str-hash randomisation: nothing may depend on dict/set order
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        )
        hashes.append(out.stdout.split())
    here = [get_preset(n).stable_hash() for n in ("vit_l", "tiny", "nano")]
    assert hashes[0] == hashes[1] == here
    assert all(re.fullmatch(r"[0-9a-f]{12}", h) for h in here) and len(set(here)) == 3


def test_stable_hash_ignores_how_a_value_was_written():
    base = get_preset("vit_l")
    # an int written for a float field, an override equal to the default: the same resolved config
    same = load("vit_l", None, ["model.encoder.mlp_ratio=4", "schedule.weight_decay=0.04", "seed=0"])
    assert same == base and same.stable_hash() == base.stable_hash()


def _leaves(obj, path=()):
    """(path, value) of every leaf of a plain config dict, descending into lists."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, path + (i,))
    else:
        yield path, obj


def _dataclass_leaves(obj, path=()):
    """The leaves of a config walked through its dataclass fields (independently of to_dict)."""
    if dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            yield from _dataclass_leaves(getattr(obj, f.name), path + (f.name,))
    elif isinstance(obj, tuple):
        for i, v in enumerate(obj):
            yield from _dataclass_leaves(v, path + (i,))
    else:
        yield path, obj


def _field_type(path):
    """The declared type of a leaf (to perturb it to another value of the same type)."""
    tp = Config
    for part in path:
        if isinstance(part, int):
            args = typing.get_args(tp)
            tp = args[0] if len(args) == 2 and args[1] is Ellipsis else args[part]
        else:
            tp = typing.get_type_hints(tp)[part]
    return tp


def _perturb(tp, value):
    if typing.get_origin(tp) is typing.Literal:
        return next(a for a in typing.get_args(tp) if a != value)
    if typing.get_origin(tp) is typing.Union:  # Optional[float]
        return 1.5e-3 if value is None else None
    if tp is bool:
        return not value
    if tp is int:
        return value + 1
    if tp is float:
        return value * 1.5 + 0.125
    if tp is str:
        return value + "x"
    raise AssertionError(f"no perturbation for {tp}")


def test_stable_hash_changes_when_any_field_changes(monkeypatch):
    # the hash is about identity, not validity: skip relation checks so every field can move alone
    monkeypatch.setattr(config_schema, "validate", lambda cfg: None)
    base = get_preset("vit_l")
    data = base.to_dict()
    leaves = list(_leaves(data))
    assert leaves == list(_dataclass_leaves(base))  # to_dict (the hashed form) holds every field
    assert len(leaves) > 100  # every stage and generator field is a leaf
    hashes = {base.stable_hash()}
    for path, value in leaves:
        changed = copy.deepcopy(data)
        node = changed
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = _perturb(_field_type(path), value)
        cfg = from_dict(Config, changed)
        assert cfg != base, path
        h = cfg.stable_hash()
        assert h not in hashes, f"{'.'.join(map(str, path))}: changing it does not change the hash"
        hashes.add(h)
    # list length matters too
    fewer = copy.deepcopy(data)
    fewer["masking"]["generators"] = fewer["masking"]["generators"][:1]
    assert from_dict(Config, fewer).stable_hash() not in hashes


def test_overrides_are_validated_together_not_one_by_one():
    # target.kind=vae alone is invalid (no vae_path); with the path in the next override it is valid
    cfg = load(
        "nano", None, ["target.kind=vae", "target.vae_path=/somewhere", "target.vae_stats=/somewhere/stats.json"]
    )
    assert cfg.target.kind == "vae" and cfg.target.vae_path == "/somewhere"
    with pytest.raises(ConfigError, match="target.vae_path"):
        load("nano", None, ["target.kind=vae"])


def test_training_hash_ignores_launch_and_logging_but_not_training():
    base = get_preset("nano")
    moved = load(
        "nano",
        None,
        [
            "launch.partition=gpu-long",
            "launch.timeout_min=60",
            "train.keep_steps=[10,20]",
            "data.num_workers=8",
            "train.log_every=1",
        ],
    )
    assert moved.training_hash() == base.training_hash() and moved.stable_hash() != base.stable_hash()
    for change in ("schedule.total_steps=41", "seed=1", "train.deterministic=true", "objective.ema_momentum=0.5"):
        assert load("nano", None, [change]).training_hash() != base.training_hash(), change
