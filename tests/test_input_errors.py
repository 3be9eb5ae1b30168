"""Bad input from the user, as a new user would give it: every numeric config field range-checked
with its dotted key, every parse failure (YAML in --set/--config, a missing file, a malformed label
map) one clean message naming the file with no traceback (--debug shows it), probe overrides
validated once whatever their order, and `bench data` skipping unreadable files as the probe does."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from nextvid.cli import main
from nextvid.config import Config, ConfigError, merge, to_plain
from nextvid.config_engine import _numbers
from nextvid.presets import get_preset
from nextvid.probe.protocol import PROTOCOLS, get_protocol, load_protocol
from nextvid.vae.config import VaeConfig, load_vae_config


def nextvid(capsys, *argv) -> tuple[int, str]:
    rc = main(list(argv))
    return rc, capsys.readouterr().err


# ---------------------------------------------------------------------------------- range checks

OUT_OF_RANGE = {
    "negative lr": ("schedule.stages.0.lr_start=-0.1", "schedule.stages.0.lr_start"),
    "NaN lr": ("schedule.stages.0.lr_start=.nan", "schedule.stages.0.lr_start"),
    "zero lr": ("schedule.stages.1.lr_end=0", "schedule.stages.1.lr_end"),
    "infinite decoder lr": ("schedule.stages.2.decoder_lr=.inf", "schedule.stages.2.decoder_lr"),
    "beta of 1": ("schedule.betas=[0.9, 1.0]", "schedule.betas.1"),
    "negative beta": ("schedule.betas=[-0.1, 0.95]", "schedule.betas.0"),
    "depth 0": ("model.encoder.depth=0", "model.encoder.depth"),
    "predictor depth 0": ("model.predictor.depth=0", "model.predictor.depth"),
    "width 0": ("model.decoder.width=0", "model.decoder.width"),
    "keep step below the schedule": ("train.keep_steps=[-5]", "train.keep_steps.0"),
    "keep step past the schedule": ("train.keep_steps=[41]", "train.keep_steps.0"),
    "negative workers": ("data.num_workers=-1", "data.num_workers"),
}


@pytest.mark.parametrize("case", sorted(OUT_OF_RANGE))
def test_out_of_range_value_exits_2_naming_the_key(case, capsys):
    override, key = OUT_OF_RANGE[case]
    rc, err = nextvid(capsys, "config", "--preset", "nano", "--set", override)
    assert rc == 2
    assert err.startswith(f"nextvid: config error: {key}: ") and "Traceback" not in err


def test_keep_steps_inside_the_schedule_are_accepted():
    cfg = merge(get_preset("nano"), {"train": {"keep_steps": [1, 40]}})
    assert cfg.train.keep_steps == (1, 40) and cfg.schedule.total_steps == 40


def configs():
    return {
        "nano": get_preset("nano"),
        "vit_l": get_preset("vit_l"),
        "vae": VaeConfig(),
        **{f"protocol {name}": get_protocol(name) for name in PROTOCOLS},
    }


@pytest.mark.parametrize("bad", [math.nan, math.inf, -1])
def test_every_numeric_field_of_every_config_is_range_checked(bad):
    """Walks the fields, so a field added later is covered: NaN, infinity and -1 are refused in every
    number of the pretraining config, the probe protocols and the VAE config, naming the field."""
    for name, cfg in configs().items():
        prefix = "vae." if isinstance(cfg, VaeConfig) else ""
        numbers = list(_numbers(cfg, ""))
        assert len(numbers) > 10
        for key, value in numbers:
            if isinstance(value, int) and not math.isfinite(bad):
                continue  # an integer field cannot hold NaN (the type check refuses it)
            change = _nested(key, type(value)(bad) if isinstance(value, int) else bad, to_plain(cfg))
            with pytest.raises(ConfigError, match=rf"^{prefix}{key}(\.\d+)?: "):
                merge(cfg, change)


def _nested(key: str, value, plain) -> dict:
    """{"a": {"b": {0: value}}} for "a.b.0" (merge's form of a list element)."""
    parts = key.split(".")
    out: dict = {}
    node = out
    for part in parts[:-1]:
        node = node.setdefault(int(part) if part.isdigit() else part, {})
    node[int(parts[-1]) if parts[-1].isdigit() else parts[-1]] = value
    return out


def test_vae_and_protocol_ranges_name_their_keys():
    with pytest.raises(ConfigError, match=r"^vae\.lr: "):
        load_vae_config(["lr=-1e-3"])
    with pytest.raises(ConfigError, match=r"^grid\.lr\.1: "):
        load_protocol("images", None, ["grid.lr=[1e-3, .nan]"])


# ---------------------------------------------------------------------------------- parse failures


def test_yaml_syntax_error_in_set_is_one_line_naming_the_override(capsys):
    rc, err = nextvid(capsys, "config", "--preset", "nano", "--set", "model.encoder.depth=[1, 2")
    assert rc == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "override 'model.encoder.depth=[1, 2': not valid YAML" in err


def test_yaml_syntax_error_in_config_file_names_the_file_and_line(tmp_path, capsys):
    bad = tmp_path / "my config.yaml"
    bad.write_text("model:\n  encoder:\n    depth: [2\n")
    rc, err = nextvid(capsys, "config", "--preset", "nano", "--config", str(bad))
    assert rc == 2 and "Traceback" not in err
    assert f"{bad}:" in err and "not valid YAML" in err


def test_missing_config_file_is_a_message(tmp_path, capsys):
    rc, err = nextvid(capsys, "config", "--config", str(tmp_path / "nope.yaml"))
    assert rc == 2 and err.strip() == f"nextvid: config error: {tmp_path / 'nope.yaml'}: config file not found"


def test_debug_shows_the_traceback(capsys):
    with pytest.raises(ConfigError, match="model.encoder.depth"):
        main(["--debug", "config", "--preset", "nano", "--set", "model.encoder.depth=0"])


def test_malformed_label_map_names_the_file(tmp_path, capsys):
    from nextvid.data.manifest import ManifestError, read_manifest

    manifest = tmp_path / "val.tsv"
    manifest.write_text("path\tlabel\tstart_frame\tend_frame\na.mp4\t0\t\t\n")
    labels = tmp_path / "val.labels.json"
    labels.write_text('{"cat": 0,')
    with pytest.raises(ManifestError, match=rf"^{labels}:1:\d+: label map is not valid JSON"):
        read_manifest(manifest)
    labels.write_text('{"cat": "zero"}')
    with pytest.raises(ManifestError, match=rf"^{labels}: a label map is a JSON object"):
        read_manifest(manifest)
    rc, err = nextvid(capsys, "data", "check", str(manifest))
    assert rc == 1 and str(labels) in err and "Traceback" not in err


def test_missing_probe_protocol_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: config file not found"):
        load_protocol("images", tmp_path / "nope.yaml")


# ---------------------------------------------------------------------------------- probe overrides


def test_probe_overrides_are_validated_once_whatever_their_order():
    a = load_protocol("images", None, ["epochs=1", "warmup_epochs=0"])
    b = load_protocol("images", None, ["warmup_epochs=0", "epochs=1"])
    assert a == b and a.epochs == 1 and a.warmup_epochs == 0
    with pytest.raises(ConfigError, match="warmup_epochs"):
        load_protocol("images", None, ["epochs=1", "warmup_epochs=1"])


# ---------------------------------------------------------------------------------- bench data


def test_bench_data_skips_and_counts_unreadable_files_under_the_limit(tmp_path, capsys):
    import os

    from nextvid.bench.data import write_videos
    from nextvid.data.converters import from_folder

    write_videos(tmp_path / "v", 3, 32, 20, seed=0)
    (tmp_path / "v" / "broken.mp4").write_bytes(os.urandom(3000))
    from_folder(tmp_path / "v").write(tmp_path / "m.tsv")
    out = tmp_path / "data.json"
    args = [
        "bench",
        "data",
        "--manifest",
        str(tmp_path / "m.tsv"),
        "--frames",
        "4",
        "--frame-step",
        "2",
        "--resolution",
        "16",
        "--clips",
        "12",
        "--batch-size",
        "4",
        "--out",
        str(out),
        "--json",
    ]
    assert main(args + ["--max-bad-fraction", "0.6"]) == 0
    result = json.loads(out.read_text())
    assert result["skipped"]["raw"] > 0 and result["skipped"]["raw"] == result["skipped"]["streaming"]
    assert result["skipped"]["cached"] == 0  # the cache holds only the files that decoded
    capsys.readouterr()
    assert main(args + ["--max-bad-fraction", "0.01"]) == 1
    assert "broken.mp4" in capsys.readouterr().err


def test_config_dataclasses_are_what_the_walk_sees():
    """_numbers walks nested dataclasses and tuples: the preset's stage learning rates are in it."""
    keys = dict(_numbers(get_preset("nano"), ""))
    assert "schedule.stages.0.lr_start" in keys and "model.encoder.depth" in keys
    assert all(
        f.name in {"model", "masking", "objective", "target", "schedule", "data", "train", "launch", "compute", "seed"}
        for f in dataclasses.fields(Config)
    )


@pytest.mark.parametrize("bad", [0, -1, 10**9, 0.5])
def test_any_number_in_any_field_is_accepted_or_a_config_error_never_a_crash(bad):
    """Zero, negative, huge or fractional: validation never fails with anything but ConfigError (a
    divisor of 0 must be refused by its range, not by a ZeroDivisionError)."""
    for cfg in configs().values():
        for key, value in _numbers(cfg, ""):
            new = int(bad) if isinstance(value, int) else float(bad)
            if isinstance(value, int) and new != bad:
                continue
            try:
                merge(cfg, _nested(key, new, None))
            except ConfigError:
                pass
