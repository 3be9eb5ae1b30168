"""The pretraining config from a preset (nextvid.presets), then a YAML file, then KEY=VALUE
overrides, all checked (docs/method.md for the defaults); a pretraining run then adds its data and
absolute paths (nextvid.config_resolve, the one place a run's config is resolved). The schema lives in
nextvid.config_schema and the machinery in nextvid.config_engine; their public names are importable
from here, the one module callers (the CLI, the workflow, the tests) need.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nextvid.config_engine import (
    ConfigError,
    RangeRule,
    add_overrides_argument,
    check_ranges,
    from_dict,
    load_yaml,
    load_yaml_file,
    merge,
    parse_override,
    to_plain,
)
from nextvid.config_rules import validate
from nextvid.config_schema import (
    NON_TRAINING_KEYS,
    PAPER_STAGES,
    BlockMaskSpec,
    ComputeConfig,
    Config,
    DataConfig,
    DecoderConfig,
    EncoderConfig,
    LaunchConfig,
    MaskingConfig,
    ModelConfig,
    ObjectiveConfig,
    PredictorConfig,
    ScheduleConfig,
    SourceConfig,
    StageConfig,
    TargetConfig,
    TrainConfig,
)
from nextvid.presets import get_preset

__all__ = [
    "NON_TRAINING_KEYS",
    "PAPER_STAGES",
    "BlockMaskSpec",
    "ComputeConfig",
    "Config",
    "ConfigError",
    "DataConfig",
    "DecoderConfig",
    "EncoderConfig",
    "LaunchConfig",
    "MaskingConfig",
    "ModelConfig",
    "ObjectiveConfig",
    "PredictorConfig",
    "RangeRule",
    "ScheduleConfig",
    "SourceConfig",
    "StageConfig",
    "TargetConfig",
    "TrainConfig",
    "check_ranges",
    "from_dict",
    "load",
    "load_yaml",
    "load_yaml_file",
    "merge",
    "parse_override",
    "save",
    "to_plain",
    "validate",
    "add_config_arguments",
    "resolve_config",
]


def load(preset: str | None = None, file: str | Path | None = None, overrides: list[str] = ()) -> Config:
    """Resolve a config: preset (default: the paper's ViT-L), then a YAML file, then KEY=VALUE overrides.
    A YAML file may name its own `preset:`."""
    file_data: dict[str, Any] = {}
    if file is not None:
        file_data = load_yaml_file(file) or {}
        if not isinstance(file_data, dict):
            raise ConfigError(f"{file}: expected a mapping at the top level")
        file_preset = file_data.pop("preset", None)
        if preset is None:
            preset = file_preset
    cfg = get_preset(preset or "vit_l")
    layers = ([file_data] if file_data else []) + [parse_override(text) for text in overrides]
    return merge(cfg, *layers) if layers else cfg


def save(cfg: Config, path: str | Path, header: str = "") -> None:
    """The config as YAML; `header` (e.g. what a run resolved) goes above it as a comment."""
    import yaml

    comment = "".join(f"# {line}\n" for line in header.splitlines())
    Path(path).write_text(comment + yaml.safe_dump(cfg.to_dict(), sort_keys=False))


# the arguments of every command that takes a config (`nextvid pretrain`, `config`, `describe`, `bench train`, ...)


def add_config_arguments(parser) -> None:
    parser.add_argument(
        "--preset", help="named config (vit_l, vit_h, vit_g, tiny, nano, cpu); default vit_l or the file's `preset:`"
    )
    parser.add_argument("--config", help="YAML file applied on top of the preset")
    add_overrides_argument(parser, "override one key, e.g. model.encoder.depth=4 (repeatable)")


def resolve_config(args):
    """The resolved config; a ConfigError (naming the key or file) reaches `nextvid`, which prints it
    and exits with status 2."""
    return load(args.preset, args.config, args.overrides)
