"""No config value escapes its argument in a rule's shell command.

Every string field of the workflow's config schema is found by walking the schema. A field whose
schema refuses a hostile value (spaces, `;`, `$()`, backquotes, both quotes) is safe by the schema
(names are identifiers); every other field gets its own hostile value in one config, and `snakemake
-n -p` renders every rule's command. Each command must split (shlex, as a POSIX shell would) so that
every hostile value is one argument, or lies unchanged inside one: quoted, never interpreted. A
field the schema admits but the package refuses must stop the workflow at start-up instead."""

from __future__ import annotations

import itertools
import re
import shlex
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
MARK = "HOSTILE"


def hostile(n: int) -> str:
    """A value a shell would split and run unless it is quoted: every kind of quote, `;`, `$()`, ``."""
    return f"{MARK}{n} a;touch PWNED;$(touch PWNED)`touch PWNED`'\"b"


# ------------------------------------------------------------------------------ the schema's string fields


def string_fields(schema: dict) -> dict[str, list[dict]]:
    """Dotted field pattern -> the string schemas it may take: `.*` a key of a mapping, `[]` a list
    element, `.<key>` the key itself (a string too)."""
    out: dict[str, list[dict]] = {}

    def resolve(s: dict) -> dict:
        while "$ref" in s:
            target = schema
            for part in s["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            s = {**target, **{k: v for k, v in s.items() if k != "$ref"}}
        return s

    def walk(s: dict, path: str) -> None:
        s = resolve(s)
        types = s.get("type", [])
        if "string" in ([types] if isinstance(types, str) else types):
            out.setdefault(path, []).append(s)
        for key, sub in s.get("properties", {}).items():
            walk(sub, f"{path}.{key}" if path else key)
        if isinstance(s.get("additionalProperties"), dict):
            walk(s["additionalProperties"], f"{path}.*")
        if "propertyNames" in s:
            out.setdefault(f"{path}.<key>", []).append({"type": "string", **resolve(s["propertyNames"])})
        if isinstance(s.get("items"), dict):
            walk(s["items"], f"{path}[]")
        for key in ("oneOf", "anyOf", "allOf"):
            for sub in s.get(key, []):
                walk(sub, path)
        for key in ("then", "else"):
            if key in s:
                walk(s[key], path)

    walk(schema, "")
    return out


def admits(schemas: list[dict], value: str) -> bool:
    return any(jsonschema.Draft202012Validator(s).is_valid(value) for s in schemas)


# ------------------------------------------------------------------------------ a config with a hostile value in each


class HostileConfig:
    """Builds the config; each call gives a new hostile value for one field and records the field."""

    def __init__(self, root: Path):
        self.root, self.fields, self.values, self.fields_of, self.counter = root, set(), [], [], itertools.count()

    def text(self, field: str, prefix: str = "", suffix: str = "") -> str:
        value = prefix + hostile(next(self.counter)) + suffix
        self.fields.add(field)
        self.values.append(value)
        self.fields_of.append(field)
        return value

    def file(self, field: str, content: str = "") -> str:
        path = self.root / "files" / self.text(field)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        return str(path)

    def folder(self, field: str) -> str:
        path = self.root / "files" / self.text(field)
        path.mkdir(parents=True)
        return str(path)

    def split(self, ds: str, **fields: str) -> dict:
        make = {
            "csv": self.file,
            "list": self.file,
            "split_json": self.file,
            "videos": self.folder,
            "root": self.folder,
            "split": self.text,
        }
        return {k: make[k](f"data.datasets.*.{ds}.{k}") for k in fields}


def build(root: Path) -> tuple[dict, HostileConfig]:
    h = HostileConfig(root)
    cfg = yaml.safe_load((ROOT / "workflow/config/smoke.yaml").read_text())
    cfg["data"]["embedded"]["sources"] = h.text("data.embedded.sources")
    cfg["data"]["datasets"] = {
        "kcsv": {
            "kind": "k400",
            "train": h.split("train", csv=1, videos=1, split=1),
            "val": h.split("val", csv=1, videos=1, split=1),
        },
        "klist": {"kind": "k400", "train": h.split("train", list=1, root=1), "val": h.split("val", list=1, root=1)},
        "lst": {"kind": "list", "train": h.split("train", list=1, root=1)},
        "ssv": {
            "kind": "ssv2",
            "labels": h.file("data.datasets.*.labels"),
            "train": h.split("train", split_json=1, videos=1),
            "val": h.split("val", split_json=1, videos=1),
        },
        "div": {
            "kind": "diving48",
            "vocab": h.file("data.datasets.*.vocab"),
            "train": h.split("train", split_json=1, videos=1),
        },
        "imf": {"kind": "imagefolder", "train": h.split("train", root=1)},
        "fold": {"kind": "folder", "train": h.split("train", root=1)},
    }
    exp = cfg["experiments"]["smoke"]
    exp["nextvid_config"] = h.file("experiments.*.nextvid_config", "{}\n")
    exp["pretrain"]["set"].append(h.text("experiments.*.pretrain.set[]", prefix="target.vae_path="))
    exp["pretrain"]["launch"].append(h.text("experiments.*.pretrain.launch[]", prefix="launch.partition="))
    exp["probe"]["set"].append(h.text("experiments.*.probe.set[]", prefix="train_manifest="))
    exp["probe"]["benchmarks"]["images"] = {
        "dataset": "embedded",
        "protocol": h.file("experiments.*.probe.benchmarks.*.protocol", "{}\n"),
        "set": [h.text("experiments.*.probe.benchmarks.*.set[]", prefix="val_manifest=")],
    }
    exp["report"]["findings_doc"] = h.text("experiments.*.report.findings_doc", prefix="docs/", suffix=".md")
    return cfg, h


# fields the schema admits but the package refuses at start-up: (field, change, key in the message)
REFUSED_AT_START = {
    "experiments.*.vae.set[]": (lambda c, v: c["experiments"]["smoke"].update(vae={"set": [f"steps={v}"]}), "vae.set"),
}


def dry_run(config: dict, path: Path, *targets: str) -> subprocess.CompletedProcess:
    path.write_text(yaml.safe_dump(config))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            ROOT / "Snakefile",
            *targets,
            "--configfile",
            path,
            "-n",
            "-p",
        ],
        cwd=path.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_every_string_field_is_refused_by_the_schema_or_covered_here(tmp_path):
    fields = string_fields(SCHEMA)
    assert {
        "experiments.*.report.findings_doc",
        "data.datasets.*.train.csv",
        "experiments.<key>",
        "experiments.*.preset",
    } <= set(fields)
    _, h = build(tmp_path)
    admitted = {f for f, schemas in fields.items() if admits(schemas, hostile(0))}
    uncovered = admitted - h.fields - set(REFUSED_AT_START)
    assert not uncovered, f"string fields that take any value but are not given a hostile one here: {sorted(uncovered)}"
    assert "experiments.*.preset" not in admitted and "experiments.<key>" not in admitted  # names are identifiers


def test_no_hostile_value_escapes_its_argument_in_any_rule(tmp_path):
    cfg, h = build(tmp_path)
    targets = ["all"] + [
        f"results/data/{ds}/{split}.tsv"
        for ds, spec in cfg["data"]["datasets"].items()
        for split in ("train", "val")
        if split in spec
    ]
    out = dry_run(cfg, tmp_path / "hostile.yaml", *targets)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    commands = [
        line.removeprefix("Shell command: ") for line in out.stdout.splitlines() if line.startswith("Shell command: ")
    ]
    rules = set(re.findall(r"^rule (\w+):", out.stdout, flags=re.M))
    assert {"data_convert", "data_embedded", "pretrain", "probe", "report_findings"} <= rules
    reached = set()
    for command in commands:
        try:
            argv = shlex.split(command)
        except ValueError as err:  # an unbalanced quote: a value's own quote ended up unquoted
            raise AssertionError(f"{err}: a value escaped its quoting in\n{command}") from None
        for arg in argv:
            assert "PWNED" not in arg or MARK in arg, f"a value escaped its argument: {arg!r} in\n{command}"
            for n in map(int, re.findall(rf"{MARK}(\d+)", arg)):
                assert hostile(n) in arg, f"value {n} was split or changed: {arg!r} in\n{command}"
                reached.add(n)
        assert command.count(MARK) == sum(arg.count(MARK) for arg in argv)
    # every value reached a command line and was checked there
    assert not {h.fields_of[n] for n in range(len(h.values)) if n not in reached}


@pytest.mark.parametrize("field", sorted(REFUSED_AT_START))
def test_hostile_value_the_package_refuses_stops_the_workflow_at_start(field, tmp_path):
    change, key = REFUSED_AT_START[field]
    cfg = yaml.safe_load((ROOT / "workflow/config/smoke.yaml").read_text())
    change(cfg, hostile(0))
    out = dry_run(cfg, tmp_path / "refused.yaml", "all")
    assert out.returncode != 0 and key in out.stdout + out.stderr and "Building DAG" not in out.stdout + out.stderr


def test_report_publish_copies_byte_for_byte_to_any_path(tmp_path):
    """The command publish_findings runs (the workflow tests run a stand-in for it)."""
    from nextvid.cli import main

    source, target = tmp_path / "findings.md", tmp_path / "docs" / f"{hostile(0)}.md"
    source.write_bytes("# Findings\n\nü ✓\n".encode())
    assert main(["report", "publish", str(source), str(target)]) == 0
    assert target.read_bytes() == source.read_bytes() and not list(target.parent.glob(".*.tmp"))
