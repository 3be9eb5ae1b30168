"""The engine of typed configs: frozen dataclasses built from plain dicts (YAML) with every unknown key
and wrong type reported by its dotted path, KEY=VALUE overrides, range rules for every number, and a
stable hash of the plain form. The pretraining config (nextvid.config_schema), probe protocols, the
VAE config and the workflow's experiment config (nextvid.plan.experiment) are all built with it, so all
of them report bad input the same way. A field may be a mapping of names (`dict[str, X]`) or take one
of several forms (`Union[str, X]`: the first form that fits).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal

from nextvid.errors import UserInputError, read_user_text


class ConfigError(UserInputError):
    """A config value or key is invalid, or a config file cannot be read; the message names the
    dotted key or the file."""

    status = 2
    kind = "config error"


def plain_hash(d: dict) -> str:
    """12 hex digits of sha256 over the canonical JSON of plain data (`to_plain`)."""
    blob = json.dumps(d, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


# --------------------------------------------------------------------------------------------------
# building from plain data


def from_dict(cls: type, data: Any, path: str = "") -> Any:
    """Build dataclass `cls` from nested dicts/lists, checking every key and type."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{_join(path, unknown[0])}: unknown key (valid keys: {', '.join(sorted(names))})")
    kwargs = {k: _coerce(hints[k], v, _join(path, k)) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as err:  # a required field is missing
        raise ConfigError(f"{path or 'config'}: {err}") from None


def merge(base: Any, *overrides: dict[str, Any], path: str = "") -> Any:
    """Return `base` (a dataclass) with the nested `overrides` applied in order, validated once at the
    end like `from_dict` (so `target.kind=vae` and `target.vae_path=...` may come as two overrides)."""
    plain = to_plain(base)
    for o in overrides:
        _deep_update(plain, o, path)
    return from_dict(type(base), plain, "")


def load_yaml(text: str, source: str = "") -> Any:
    """YAML as a user means it: PyYAML follows YAML 1.1, where `1e-5` and `1.0e5` (no dot, or no sign
    in the exponent) are strings; here they are floats, as in YAML 1.2 and Python. A syntax error is
    a ConfigError naming `source` (a file, or the override) and the line."""
    import yaml

    try:
        return yaml.load(text, Loader=_yaml_loader())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None and source and "\n" in text.strip() else source
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{where or 'YAML'}: not valid YAML ({problem})") from None


def load_yaml_file(path: str | Path) -> Any:
    """A YAML file the user named (config, protocol); a ConfigError naming it when it is missing or malformed."""
    return load_yaml(read_user_text(path, "config file", ConfigError), str(path))


@functools.cache
def _yaml_loader() -> type:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
        list("-+0123456789."),
    )
    return Loader


def add_overrides_argument(parser, help: str) -> None:
    """The repeatable `--set KEY=VALUE` of every command whose settings are a config of this engine
    (pretraining, probe protocols, the VAE), collected into `args.overrides` for parse_override."""
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help)


def parse_override(text: str) -> dict[str, Any]:
    """`model.encoder.depth=4` -> {"model": {"encoder": {"depth": 4}}}; the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected KEY=VALUE")
    key, raw = text.split("=", 1)
    value = load_yaml(raw, f"override {text!r}")
    out: dict[str, Any] = {}
    node = out
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


# --------------------------------------------------------------------------------------------------
# ranges of numeric fields, by rule rather than field by field: every number of a config built with
# this machinery (this Config, probe protocols, the VAE config) is checked by the first rule whose
# pattern matches its field name (the last non-index part of its dotted key), so a field added later
# is covered too. Relations between fields are each schema's (nextvid.config_rules).


@dataclass(frozen=True)
class RangeRule:
    names: str  # regex, full match on the field name
    low: float
    high: float = math.inf
    low_open: bool = False  # (low, ...] rather than [low, ...]
    high_open: bool = True

    def admits(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return math.isfinite(value) and above and below

    def describe(self, value: float) -> str:
        if self.high == math.inf:
            return f"must be {'finite and ' if isinstance(value, float) else ''}{'>' if self.low_open else '>='} {self.low:g}"
        return f"must be in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"


RANGE_RULES = (
    RangeRule(r"lr|lr_\w+|\w+_lr", 0.0, low_open=True),  # learning rates
    RangeRule(r"betas", 0.0, 1.0),  # AdamW
    RangeRule(r"\w*workers|warmup_\w+", 0.0),  # counts that may be 0 (before the sizes and steps below)
    RangeRule(
        r"\w*(width|depth|heads|chans|channels|groups|downsample|pool)|\w+_size|frames|tubelet|steps|\w+_steps|num_\w+|\w+_every",
        1.0,
    ),
    RangeRule(r"\w+", 0.0),  # any other number: finite and not negative
)


def check_ranges(obj: Any, path: str = "") -> None:
    """Raise ConfigError naming the dotted key of the first number outside its rule's range."""
    for key, value in _numbers(obj, path):
        rule = next(r for r in RANGE_RULES if re.fullmatch(r.names, _field_name(key)))
        if not rule.admits(float(value)):
            raise ConfigError(f"{key}: {value!r} {rule.describe(value)}")


def _numbers(obj: Any, path: str) -> Iterator[tuple[str, float]]:
    if dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            yield from _numbers(getattr(obj, f.name), _join(path, f.name))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _numbers(v, _join(path, i))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _numbers(v, _join(path, k))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield path, obj


def _field_name(key: str) -> str:
    return next(part for part in reversed(key.split(".")) if not part.isdigit())


# --------------------------------------------------------------------------------------------------
# helpers


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        if dataclasses.is_dataclass(value) and type(value) is tp:
            return value
        return from_dict(tp, value, path)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, path) if len(inner) == 1 else _coerce_any(inner, value, path)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__}")
        return {_coerce(args[0], k, _join(path, k)): _coerce(args[1], v, _join(path, k)) for k, v in value.items()}
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{path}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {type(value).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{path}.{i}") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{path}: expected {len(args)} values, got {len(value)}")
        return tuple(_coerce(a, v, f"{path}.{i}") for i, (a, v) in enumerate(zip(args, value)))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    raise TypeError(f"{path}: unsupported config type {tp}")  # a bug in the schema, not in user input


def _coerce_any(alternatives: list[Any], value: Any, path: str) -> Any:
    """A value of one of several forms (a name or a mapping, `embedded` or a list): the one form of
    its shape (its errors are the value's), else the first form that takes it, else an error listing
    why each form did not."""
    same_shape = [tp for tp in alternatives if _shape(tp) is _shape(type(value))]
    if len(same_shape) == 1:
        return _coerce(same_shape[0], value, path)
    errors = []
    for tp in alternatives:
        try:
            return _coerce(tp, value, path)
        except ConfigError as err:
            errors.append(str(err))
    raise ConfigError(f"{path}: {value!r} fits none of its forms ({'; '.join(errors)})")


def _shape(tp: Any) -> type:
    """A type's YAML shape: a mapping, a list or a scalar."""
    if dataclasses.is_dataclass(tp) or tp is dict or typing.get_origin(tp) is dict:
        return dict
    if tp in (list, tuple) or typing.get_origin(tp) is tuple:
        return list
    return object


def to_plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    return obj


def _deep_update(plain: dict[str, Any], overrides: dict[str, Any], path: str) -> None:
    if not isinstance(overrides, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {type(overrides).__name__}")
    for key, value in overrides.items():
        here = _join(path, key)
        if key not in plain:
            raise ConfigError(f"{here}: unknown key (valid keys: {', '.join(sorted(plain))})")
        if isinstance(plain[key], dict) and isinstance(value, dict):
            _deep_update(plain[key], value, here)
        elif isinstance(plain[key], list) and isinstance(value, dict):  # `generators.0.num_blocks=2`
            _update_list(plain[key], value, here)
        else:
            plain[key] = value


def _update_list(items: list[Any], overrides: dict[Any, Any], path: str) -> None:
    for index, value in overrides.items():
        i = int(index) if str(index).isdigit() else -1
        if not 0 <= i < len(items):
            raise ConfigError(f"{_join(path, index)}: no such list element (the list has {len(items)})")
        if isinstance(items[i], dict) and isinstance(value, dict):
            _deep_update(items[i], value, _join(path, index))
        else:
            items[i] = value
