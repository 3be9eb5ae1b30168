"""One resolution of the pretraining config (nextvid.config_resolve): `nextvid pretrain` and the
workflow's plan resolve the same config (and training hash) from the same arguments, the merges come
in their documented order, and a bad key stops the command and the plan at start, naming the key."""

from __future__ import annotations

import json
import shlex
from dataclasses import replace
from pathlib import Path

import pytest
from plans import validated_plan

from nextvid.cli import main
from nextvid.config import ConfigError
from nextvid.config_resolve import resolve_pretrain_config
from nextvid.plan import Plan, PlanError, check_all

PRETRAIN = {"total_steps": 8, "keep_steps": [4], "launch": ["launch.gpus_per_node=0", "launch.cpus_per_task=3"]}
CONFIG = {
    "data": {"embedded": {"scale": "smoke"}, "datasets": {"corpus": {"kind": "folder", "train": {"root": "/raw"}}}},
    "experiments": {
        "emb": {
            "preset": "nano",
            "pretrain": {"mixture": "embedded", "set": ["objective.ema_momentum=0.95"], **PRETRAIN},
            "variants": ["nextvid", "target_vae"],
            "seeds": [1],
            "probe": {"benchmarks": {"motion": "embedded"}},
        },
        "real": {
            "preset": "nano",
            "nextvid_config": "own.yaml",
            "pretrain": {"mixture": [{"dataset": "corpus", "weight": 0.5}], **PRETRAIN},
            "variants": ["nextvid", "no_ema"],
            "seeds": [2],
            "probe": {"benchmarks": {"motion": "embedded"}},
        },
    },
}


def plan_of(change=None) -> Plan:
    return validated_plan(CONFIG, change)


def write(path: str | Path, text: str = "path\tlabel\n") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A working directory holding what the rules before a run write: the embedded mixture (with
    manifests relative to it, as `nextvid data embedded` writes them), the corpus's train manifest,
    and the experiment's own config file."""
    monkeypatch.chdir(tmp_path)
    plan = plan_of()
    mixture = Path(plan.embedded_mixture())
    sources = [{"name": n, "manifest": f"{n}/train.tsv", "weight": w} for n, w in (("images", 1), ("motion", 2))]
    write(mixture, json.dumps({"sources": sources}))
    for s in sources:
        write(mixture.parent / s["manifest"])
    write(plan.manifest("corpus", "train"))
    write("own.yaml", "train: {log_every: 3}\nseed: 9\n")
    return tmp_path


def cli_config(monkeypatch, args: list[str]):
    """The config `nextvid pretrain ARGS` hands to the launcher (launch replaced by a recorder), or
    (status, None) where the command stops first."""
    seen = []
    monkeypatch.setattr("nextvid.launch.launch", lambda cfg, *a, **k: seen.append(cfg) or {"state": "recorded"})
    status = main(["pretrain", *args, "--out", "run", "--launcher", "debug"])
    return status, (seen[0] if seen else None)


# --- the command and the plan ---------------------------------------------------------------------


@pytest.mark.parametrize("name, variant", [("emb", "nextvid"), ("emb", "target_vae"), ("real", "no_ema")])
def test_command_and_plan_resolve_the_same_config(workdir, monkeypatch, name, variant):
    plan = plan_of()
    # the rule's command line: params.args, then resources.launch
    args = shlex.split(f"{plan.pretrain_args(name, variant, 7)} {plan.launch_args(name)}")
    status, cli = cli_config(monkeypatch, args)
    assert status == 0
    ready = plan.resolve(name, variant, 7, inputs_ready=True)
    assert cli.to_dict() == ready.to_dict() and cli.training_hash() == ready.training_hash()
    # not a vacuous match: the seed, the launch settings and the data made absolute all arrived
    assert cli.seed == 7 and cli.launch.cpus_per_task == 3 and cli.data.sources
    assert all(Path(s.manifest).is_absolute() and Path(s.manifest).is_file() for s in cli.data.sources)
    # at DAG time, before the data exist: the same config but for what the embedded mixture brings
    dag = plan.resolve(name, variant, 7)
    if name == "emb":
        assert dag.data.sources == () and replace(dag, data=replace(dag.data, sources=cli.data.sources)) == cli
        assert plan.kept_steps(name) == [4, 8]
    else:
        assert dag == cli and cli.train.log_every == 3  # the experiment's own config file
    if variant == "target_vae":
        assert cli.target.vae_path == str(workdir / "results/vae/emb")


# --- the order of the merges ----------------------------------------------------------------------


def test_mixture_replaces_the_sources_an_override_sets(workdir):
    own = ["data.sources=[{name: own, manifest: own.tsv, weight: 1}]"]
    write("own.tsv")
    mixture = plan_of().embedded_mixture()
    assert [s.name for s in resolve_pretrain_config("nano", None, own).data.sources] == ["own"]
    assert [s.name for s in resolve_pretrain_config("nano", None, own, mixture).data.sources] == ["images", "motion"]
    # an indexed override applies before the mixture, to the preset's (empty) sources
    with pytest.raises(ConfigError, match=r"^data\.sources\.0: no such list element \(the list has 0\)"):
        resolve_pretrain_config("nano", None, ["data.sources.0.weight=2"], mixture)


def test_file_then_overrides_in_order_then_paths_made_absolute(workdir, monkeypatch):
    monkeypatch.setenv("HOME", str(workdir / "home"))
    write("own.tsv")
    cfg = resolve_pretrain_config(
        None,  # the file's preset
        write("run.yaml", "preset: nano\nseed: 5\ntarget: {kind: vae, vae_path: fromfile}\n"),
        [
            "data.sources=[{name: own, manifest: own.tsv, weight: 1, shards: cache}]",
            "seed=6",
            "seed=8",
            "target.vae_path=vae",
            "target.vae_stats=~/stats.json",
        ],
    )
    assert cfg.model.encoder.width == 64 and cfg.seed == 8  # nano; the last override wins over the file
    assert (cfg.data.sources[0].manifest, cfg.data.sources[0].shards) == (
        str(workdir / "own.tsv"),
        str(workdir / "cache"),
    )
    assert (cfg.target.vae_path, cfg.target.vae_stats) == (str(workdir / "vae"), str(workdir / "home/stats.json"))


def test_missing_inputs_are_errors_only_when_they_should_exist(workdir):
    nope = ["data.sources=[{name: a, manifest: nope.tsv, weight: 1}]"]
    with pytest.raises(ConfigError, match=r"^data\.sources\.0\.manifest: nope\.tsv does not exist"):
        resolve_pretrain_config("nano", None, nope)
    with pytest.raises(ConfigError, match=r"^data\.sources: no pretraining data"):
        resolve_pretrain_config("nano")
    # before the rules that write them have run: neither the mixture nor the manifests are read
    dag = resolve_pretrain_config("nano", None, nope, "not/yet/mixture.json", inputs_ready=False)
    assert dag.data.sources[0].manifest == str(workdir / "nope.tsv")
    assert resolve_pretrain_config("nano", inputs_ready=False).data.sources == ()


# --- a bad key stops everything at start ----------------------------------------------------------


def test_a_bad_key_stops_the_command_and_the_plan_naming_it(workdir, monkeypatch, capsys):
    mixture = plan_of().embedded_mixture()
    status, cfg = cli_config(monkeypatch, ["--preset", "nano", "--mixture", mixture, "--set", "model.encoder.dpth=3"])
    assert status == 2 and cfg is None
    assert "nextvid: config error: model.encoder.dpth: unknown key" in capsys.readouterr().err
    for key, where in (("pretrain.set", "model.encoder.dpth=3"), ("pretrain.launch", "launch.gpus=2")):
        section, field = key.split(".")
        bad = plan_of(lambda c: c["experiments"]["emb"][section].update({field: [where]}))
        with pytest.raises(
            PlanError, match=rf"experiments\.emb \(variant nextvid\).*{where.split('=')[0]}: unknown key"
        ):
            check_all(bad)
