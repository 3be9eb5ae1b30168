"""The workflow's config as typed data (nextvid.plan.experiment): its dataclasses mirror
workflow/schemas/config.schema.yaml key for key and type for type, with a default exactly where a key
may be absent after validation, so the schema and the types the plan reads cannot drift; the shipped
configs build to the expected values; and a config that skipped validation fails by its dotted key."""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional, Union

import pytest
import yaml
from plans import SCHEMA, validated_plan

from nextvid.config_engine import ConfigError
from nextvid.plan.experiment import (
    Benchmark,
    DataConfig,
    Dataset,
    EmbeddedCache,
    EmbeddedData,
    Experiment,
    Generate,
    Pretrain,
    Report,
    Tsne,
    WorkflowConfig,
    workflow_config,
)

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_DOC = yaml.safe_load(SCHEMA.read_text())
SCALARS = {"string": str, "integer": int, "boolean": bool, "number": Union[int, float]}


def resolve(node: dict) -> dict:
    """A schema node with its $ref followed (the referring node's own keys, e.g. a default, win)."""
    while "$ref" in node:
        target: Any = SCHEMA_DOC
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def object_forms(node: dict) -> list[dict]:
    """An object's forms: itself, or one per `allOf` branch (a dataset kind's `then`), base keys included."""
    if "allOf" not in node:
        return [node]
    forms = []
    for branch in node["allOf"]:
        then = branch["then"]
        properties = {**node["properties"], **{k: v for k, v in then["properties"].items() if v}}
        forms.append({"properties": properties, "required": node["required"] + then.get("required", [])})
    return forms


def check_type(hint: Any, nodes: list[dict], path: str) -> None:
    """`hint` is the type of every schema node in `nodes` (one per form of the object holding it)."""
    nodes = [resolve(n) for n in nodes]
    if dataclasses.is_dataclass(hint):
        assert all(n.get("type") == "object" and ("properties" in n or "allOf" in n) for n in nodes), path
        return check_fields(hint, [form for n in nodes for form in object_forms(n)], path)
    for node in nodes:
        check_node(hint, node, path)


def check_node(hint: Any, node: dict, path: str) -> None:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    kind = node.get("type")
    if "oneOf" in node:
        assert origin is Union and len(args) == len(node["oneOf"]), f"{path}: {hint} for oneOf"
        for i, (arg, alternative) in enumerate(zip(args, node["oneOf"])):
            check_type(arg, [alternative], f"{path}|{i}")
    elif isinstance(kind, list):  # [X, "null"]
        assert "null" in kind and len(kind) == 2 and origin is Union and type(None) in args, f"{path}: {hint}"
        check_type(without_none(hint), [{**node, "type": next(k for k in kind if k != "null")}], path)
    elif "const" in node:
        assert hint == Literal[node["const"]], f"{path}: {hint}"
    elif "enum" in node:
        assert hint == Literal[tuple(node["enum"])], f"{path}: {hint}"
    elif kind == "array":
        assert origin is tuple and len(args) == 2 and args[1] is Ellipsis, f"{path}: {hint} for an array"
        check_type(args[0], [node["items"]], f"{path}.0")
    elif kind == "object":  # a mapping of names
        assert origin is dict and args[0] is str, f"{path}: {hint} for a mapping"
        check_type(args[1], [node["additionalProperties"]], f"{path}.*")
    else:
        assert hint == SCALARS[kind], f"{path}: {hint} for {kind}"


def without_none(hint: Any) -> Any:
    return Union[tuple(a for a in typing.get_args(hint) if a is not type(None))]


def check_fields(cls: type, forms: list[dict], path: str) -> None:
    """The dataclass has a field per property of the object (of any of its forms) and no other; each
    field has the property's type; a default where the key may be absent after validation (not
    required and without a schema default in some form), and that default is the schema's or None
    (None: the key is absent, so the type is Optional[...] of the schema's)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    properties = {name for form in forms for name in form["properties"]}
    assert set(fields) == properties, f"{path or 'config'} ({cls.__name__}): {sorted(set(fields) ^ properties)}"
    hints = typing.get_type_hints(cls)
    for name, f in fields.items():
        where = f"{path}.{name}".lstrip(".")
        nodes = [resolve(form["properties"][name]) for form in forms if name in form["properties"]]
        always = all(
            name in form.get("required", ()) or "default" in resolve(form["properties"].get(name, {})) for form in forms
        )
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        assert has_default != always, f"{where}: a default iff the key may be absent after validation"
        schema_defaults = [n["default"] for n in nodes if "default" in n]
        hint = hints[name]
        if has_default:
            assert f.default == (schema_defaults[0] if schema_defaults else None), where
        if has_default and not schema_defaults:
            assert typing.get_origin(hint) is Union and type(None) in typing.get_args(hint), f"{where}: {hint}"
            hint = without_none(hint)
        check_type(hint, nodes, where)


@dataclass(frozen=True, kw_only=True)
class TsneWithoutMaxSamples:
    variants: tuple[str, ...]
    benchmark: str


@dataclass(frozen=True, kw_only=True)
class TsneWithTextMaxSamples:
    variants: tuple[str, ...]
    benchmark: str
    max_samples: str


@dataclass(frozen=True, kw_only=True)
class TsneWithOwnDefault:
    variants: tuple[str, ...]
    benchmark: str
    max_samples: int = 500  # the schema's default, repeated: the schema fills it


@dataclass(frozen=True, kw_only=True)
class TsneWithOptionalBenchmark:
    variants: tuple[str, ...]
    benchmark: Optional[str]
    max_samples: int


def test_the_dataclasses_mirror_the_schema_key_for_key_and_type_for_type():
    check_fields(WorkflowConfig, [SCHEMA_DOC], "")


@pytest.mark.parametrize(
    "cls, error",
    [
        (TsneWithoutMaxSamples, r"tsne \(TsneWithoutMaxSamples\): \['max_samples'\]"),
        (TsneWithTextMaxSamples, r"tsne.max_samples: <class 'str'> for integer"),
        (TsneWithOwnDefault, r"tsne.max_samples: a default iff"),
        (TsneWithOptionalBenchmark, r"tsne.benchmark: typing.Optional\[str\] for string"),
    ],
)
def test_the_mirror_check_catches_a_drifted_dataclass(cls, error):
    tsne = SCHEMA_DOC["$defs"]["experiment"]["properties"]["tsne"]
    check_fields(Tsne, [tsne], "tsne")
    with pytest.raises(AssertionError, match=error):
        check_fields(cls, [tsne], "tsne")


def test_the_mirror_check_catches_a_schema_key_without_a_field():
    drifted = {**SCHEMA_DOC, "properties": {**SCHEMA_DOC["properties"], "extra": {"type": "string"}}}
    with pytest.raises(AssertionError, match=r"config \(WorkflowConfig\): \['extra'\]"):
        check_fields(WorkflowConfig, [drifted], "")


def shipped(name: str) -> tuple[WorkflowConfig, Any]:
    config = yaml.safe_load((ROOT / f"workflow/config/{name}.yaml").read_text())
    plan = validated_plan(config)
    return workflow_config(plan.config), plan


def test_the_embedded_config_builds_to_its_typed_experiment():
    typed, plan = shipped("embedded")
    cache = EmbeddedCache(enabled=True, step=1, size=64)
    assert typed.data == DataConfig(
        embedded=EmbeddedData(scale="default", seed=0, sources=None, cache=cache), datasets={}
    )
    exp = typed.experiments["embedded"]
    assert isinstance(exp, Experiment) and plan.experiments == typed.experiments
    assert (exp.preset, exp.nextvid_config, exp.variants, exp.seeds) == ("cpu", None, ("nextvid", "no_masking"), (0,))
    pre = exp.pretrain
    assert pre == Pretrain(mixture="embedded", total_steps=750, stop_at=None, keep_steps=(), set=(), launch=())
    assert pre.embedded and pre.final_step == 750 and exp.vae.set == ()
    assert plan.embedded_mixture() == "results/data/embedded_cache/mixture.json"
    probe = exp.probe
    assert probe.benchmarks == dict.fromkeys(("images", "appearance", "motion", "motion_sequence"), "embedded")
    assert probe.benchmark("motion") == Benchmark(dataset="embedded", protocol=None, set=())
    protocol = ("resolution=48", "heads=2", "precision=fp32")  # the cpu recipe's frames, the dev-split search's probe
    assert (probe.steps, probe.references, probe.encoder, probe.set) == (None, None, "reference", protocol)
    assert probe.ceiling.set[:2] == ("convnet_widths=[16,32,64,64]", "resolution=32")  # the schema's default
    assert exp.generate == Generate(variants=("nextvid",), benchmark="motion", samples=4, ode_steps=None)
    assert exp.tsne == Tsne(variants=("nextvid", "random"), benchmark="images", max_samples=500)
    assert exp.report == Report(tables=None, findings=False, findings_doc=None)


def test_the_grid_config_builds_to_its_typed_experiment():
    typed, _ = shipped("grid")
    exp = typed.experiments["grid"]
    assert len(exp.variants) == 15 and exp.variants[:2] == ("nextvid", "gen_only") and "target_vae" in exp.variants
    assert exp.seeds == (0, 1, 2) and exp.pretrain.total_steps == 150
    assert exp.generate.variants == ("nextvid", "gen_only", "cross_frame_decoder") and exp.generate.samples == 4
    assert exp.tsne == Tsne(
        variants=("nextvid", "no_masking", "videomae", "random"), benchmark="images", max_samples=500
    )
    assert exp.report == Report(tables=None, findings=True, findings_doc="docs/findings.md")


def test_datasets_and_mixtures_keep_their_forms_and_numbers_as_written():
    typed, _ = shipped("paper")
    k400, corpus = typed.data.datasets["k400"], typed.data.datasets["internvid"]
    assert isinstance(k400, Dataset) and k400.kind == "k400" and k400.val.csv.endswith("val.csv")
    assert k400.val.list is None and k400.labels is None and set(k400.splits()) == {"train", "val"}
    assert corpus.kind == "folder" and corpus.val is None and set(corpus.splits()) == {"train"}
    mixture = typed.experiments["paper_vitl"].pretrain.mixture
    assert [(m.dataset, m.weight) for m in mixture][:2] == [("in1k", 0.25), ("ssv2", 0.05)]

    # an integer stays an integer: a command line shows it as written (a changed rule parameter reruns it)
    def integers(config: dict) -> None:
        config["data"]["datasets"] = {"d": {"kind": "folder", "max_bad_fraction": 0, "train": {"root": "/r"}}}
        config["experiments"]["embedded"]["pretrain"]["mixture"] = [{"dataset": "d", "weight": 2}]

    config = yaml.safe_load((ROOT / "workflow/config/embedded.yaml").read_text())
    plan = validated_plan(config, integers)
    assert plan.datasets["d"].max_bad_fraction == 0 and type(plan.datasets["d"].max_bad_fraction) is int
    assert plan.convert_args("d", "train").endswith("--max-bad-fraction 0")
    assert "weight: 2}]" in next(
        s for s in plan.pretrain_overrides("embedded", "nextvid", 0) if s.startswith("data.sources")
    )


def at(key: str) -> str:
    """The start of a ConfigError's message naming `key`."""
    return f"^{re.escape(key)}: "


@pytest.mark.parametrize(
    "error, change",
    [
        (at("experiments.e.pretrain.mixture"), lambda e: e["pretrain"].update(mixture="embeded")),
        (
            at("experiments.e.pretrain.mixture.0.weight") + ".*integer.*number",  # neither form of a number
            lambda e: e["pretrain"].update(mixture=[{"dataset": "d", "weight": "1"}]),
        ),
        (
            at("experiments.e.probe.benchmarks.motion.set.0"),  # a mapping: the error of the mapping's form
            lambda e: e["probe"]["benchmarks"].update(motion={"dataset": "embedded", "set": [3]}),
        ),
        (at("experiments.e.probe.benchmarks"), lambda e: e["probe"].update(benchmarks=["motion"])),
        (at("experiments.e.generate.samples"), lambda e: e["generate"].update(samples="4")),
        (at("experiments.e.tsne.colour"), lambda e: e["tsne"].update(colour="red")),
        (at("experiments.e") + ".*'report'", lambda e: e.pop("report")),  # the schema fills it: missing unvalidated
    ],
)
def test_a_config_that_skipped_validation_fails_by_its_dotted_key(error, change):
    _, plan = shipped("embedded")
    config = yaml.safe_load(yaml.safe_dump(plan.config))
    config["experiments"] = {"e": config["experiments"]["embedded"]}
    change(config["experiments"]["e"])
    with pytest.raises(ConfigError, match=error):
        workflow_config(config)
