"""The experiment plan (nextvid.plan) the workflow's rules adapt: kept and probed steps by the trainer's
rule, each run's overrides as the config engine resolves them, conversion arguments per dataset kind,
the target lists, the checks the schema cannot make, and the code closure behind the rerun policy.
Also the shared name catalogue (nextvid.catalog), and that neither imports torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from plans import validated_plan

from nextvid import catalog, layout
from nextvid.experiments import get_variant
from nextvid.plan import Plan, PlanError, check_all
from nextvid.plan.code import code_closure
from nextvid.plan.runs import needs_overrides
from nextvid.report.paper_numbers import ABLATIONS
from nextvid.train.schedule import kept_steps
from nextvid.vae.config import load_vae_config

ROOT = Path(__file__).resolve().parents[1]

BASE = {
    "data": {
        "embedded": {"scale": "smoke"},
        "datasets": {
            "k4": {
                "kind": "k400",
                "train": {"csv": "/raw/train.csv", "videos": "/raw/my videos", "split": "train"},
                "val": {"csv": "/raw/val.csv", "videos": "/raw/my videos"},
            },
            "s2": {
                "kind": "ssv2",
                "labels": "/raw/labels.json",
                "train": {"split_json": "/raw/t.json", "videos": "/raw/v"},
                "val": {"split_json": "/raw/v.json", "videos": "/raw/v"},
            },
            "corpus": {"kind": "folder", "images": True, "train": {"root": "/raw/corpus"}},
        },
    },
    "experiments": {
        "x": {
            "preset": "nano",
            "pretrain": {"mixture": "embedded", "total_steps": 8, "keep_steps": [4]},
            "variants": ["nextvid", "target_vae"],
            "seeds": [0, 1],
            "probe": {"benchmarks": {"images": "embedded", "motion": "embedded"}},
            "generate": {"variants": ["nextvid"], "benchmark": "motion"},
        },
    },
}


def plan_of(change=None) -> Plan:
    """A plan of BASE (changed by `change`), on the config as the workflow validates it."""
    return validated_plan(BASE, change)


def test_importing_the_plan_and_catalogue_loads_no_torch():
    code = "import sys, nextvid.plan, nextvid.catalog; print(sorted({m.split('.')[0] for m in sys.modules}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert "'nextvid'" in out
    for heavy in ("torch", "pandas", "matplotlib"):
        assert f"'{heavy}'" not in out, heavy


# --- steps and overrides -------------------------------------------------------------------------


def test_trainer_keeps_the_listed_steps_and_its_last():
    from nextvid import config

    cfg = config.load("nano", None, ["schedule.total_steps=8", "schedule.stop_at=6", "train.keep_steps=[2]"])
    assert kept_steps(cfg) == [2, 6]


@pytest.mark.parametrize("stop_at, keep, want", [(None, [4], [4, 8]), (6, [2, 4], [2, 4, 6]), (None, [], [8])])
def test_kept_steps_are_the_trainers(stop_at, keep, want):
    plan = plan_of(lambda c: c["experiments"]["x"]["pretrain"].update(stop_at=stop_at, keep_steps=keep))
    assert plan.kept_steps("x") == want == kept_steps(plan.resolve("x", "nextvid", 0))
    assert plan.probe_steps("x") == want  # probe.steps unset: every kept checkpoint
    assert plan_of(lambda c: c["experiments"]["x"]["probe"].update(steps=[8, 4])).probe_steps("x") == [4, 8]


def test_run_overrides_resolve_in_order():
    plan = plan_of(lambda c: c["experiments"]["x"]["pretrain"].update(set=["objective.ema_momentum=0.95"]))
    sets = plan.pretrain_overrides("x", "target_vae", 1)
    vae = needs_overrides(get_variant("target_vae"), layout.vae_dir("x"), load_vae_config())
    assert sets[: 1 + len(vae)] == ["target.kind=vae", *vae]  # the variant, then what it needs
    assert sets[1 + len(vae) :] == [
        "objective.ema_momentum=0.95",
        "seed=1",
        "schedule.total_steps=8",
        "train.keep_steps=[4, 8]",
    ]
    cfg = plan.resolve("x", "target_vae", 1)
    # as `nextvid pretrain` resolves it: the VAE's paths absolute (a SLURM job runs elsewhere)
    assert (
        cfg.target.vae_path == str(Path("results/vae/x").resolve())
        and cfg.seed == 1
        and cfg.objective.ema_momentum == 0.95
    )
    assert plan.pretrain_overrides("x", "nextvid", 0)[0] == "objective.ema_momentum=0.95"  # needs nothing


def test_an_experiments_own_vae_replaces_the_workflows():
    plan = plan_of(lambda c: c["experiments"]["x"]["pretrain"].update(set=["target.vae_path=/my/vae"]))
    assert not plan.trains_vae("x", "target_vae") and plan.vae_experiments() == []
    assert not any(s.startswith("target.vae_stats=") for s in plan.pretrain_overrides("x", "target_vae", 0))
    assert plan_of().vae_experiments() == ["x"]
    assert set(plan_of().pretrain_inputs("x", "target_vae")) == {"mixture", "vae_config", "vae_weights", "vae_stats"}


def test_real_mixture_becomes_data_sources_the_config_engine_reads():
    mixture = [{"dataset": "k4", "weight": 0.7}, {"dataset": "corpus", "weight": 0.3}]
    plan = plan_of(
        lambda c: (
            c["experiments"]["x"].update(variants=["nextvid"])
            or c["experiments"]["x"]["pretrain"].update(mixture=mixture)
        )
    )
    sources = plan.resolve("x", "nextvid", 0).data.sources
    assert [(s.name, s.manifest, s.weight) for s in sources] == [  # made absolute, as the run's
        ("k4", str(Path("results/data/k4/train.tsv").resolve()), 0.7),
        ("corpus", str(Path("results/data/corpus/train.tsv").resolve()), 0.3),
    ]
    assert plan.pretrain_inputs("x", "nextvid") == {
        "k4": "results/data/k4/train.tsv",
        "corpus": "results/data/corpus/train.tsv",
    }
    assert "--mixture" not in plan.pretrain_args("x", "nextvid", 0)


# --- data ----------------------------------------------------------------------------------------


def test_convert_arguments_per_kind():
    plan = plan_of()
    assert plan.convert_args("k4", "train") == (
        "convert-k400 --csv /raw/train.csv --videos '/raw/my videos' --split train --max-bad-fraction 0.05"
    )
    assert plan.convert_args("k4", "val").endswith(
        "--label-map results/data/k4/train.labels.json --max-bad-fraction 0.05"
    )
    assert plan.convert_args("s2", "val") == (
        "convert-ssv2 --labels /raw/labels.json --split-json /raw/v.json --videos /raw/v --max-bad-fraction 0.05"
    )
    assert plan.convert_label_map("s2", "val") is None  # SSv2's val split carries its own class ids
    assert plan.convert_args("corpus", "train") == "convert-folder /raw/corpus --images --max-bad-fraction 0.05"
    assert plan.convert_raw("s2", "train") == {
        "split_json": "/raw/t.json",
        "videos": "/raw/v",
        "labels": "/raw/labels.json",
    }
    with pytest.raises(PlanError, match=r"data\.datasets\.corpus\.val: not configured"):
        plan.convert_args("corpus", "val")


def test_embedded_build_name_and_files():
    plan = plan_of(lambda c: c["data"]["embedded"].update(seed=3))
    assert plan.embedded_name() == "embedded_smoke_seed3"
    assert plan.embedded_mixture() == "results/data/embedded_smoke_seed3/mixture.json"
    outputs = plan.embedded_outputs("e")
    assert len(outputs) == 2 + len(catalog.EMBEDDED_BENCHMARKS) * len(catalog.SPLITS)
    assert outputs["motion_sequence_val"] == "results/data/e/motion_sequence/val.tsv"
    with pytest.raises(PlanError, match="data.embedded"):
        plan_of(lambda c: c["data"].pop("embedded")).embedded_name()


# --- targets -------------------------------------------------------------------------------------


def test_probe_targets_cover_variant_seed_step_benchmark_and_references():
    plan = plan_of()
    keys = [layout.parse_probe_metrics(f) for f in plan.probe_metrics_files("x")]
    assert len(keys) == len(set(keys)) == 2 * 2 * (2 * 2 + 3)  # seeds x benchmarks x (variants x steps + references)
    assert {k.step for k in keys if k.variant in catalog.REFERENCE_VARIANTS} == {0}
    assert plan.probe_args("x", "motion", "1") == "--set seed=1"
    assert plan_of(lambda c: c["experiments"]["x"]["probe"].update(references=["pixels"])).references("x") == ["pixels"]
    assert plan.reference_checkpoint("x") == "random:nano" and plan.probe_encoder("x", "random") == "reference"


def test_the_ceiling_is_one_finetune_per_seed_and_benchmark_at_its_own_lighter_settings():
    from nextvid.plan.runs import set_args
    from nextvid.probe.protocol import load_protocol

    plan = plan_of()
    keys = [layout.parse_probe_metrics(f) for f in plan.probe_metrics_files("x")]
    ceilings = sorted((k.seed, k.benchmark, k.step) for k in keys if k.variant == catalog.CEILING_VARIANT)
    assert ceilings == [(seed, bench, 0) for seed in (0, 1) for bench in ("images", "motion")]
    assert plan.probe_encoder("x", "ceiling") == "convnet" and plan.reference_checkpoint("x") == "random:nano"
    assert [plan.probe_mode(v) for v in ("ceiling", "random", "pixels", "nextvid")] == ["--finetune", "", "", ""]
    default = plan.experiments["x"].probe.ceiling.set
    assert plan.probe_args("x", "motion", "1", "ceiling") == set_args([*default, "seed=1"])
    assert plan.probe_args("x", "motion", "1", "random") == plan.probe_args("x", "motion", "1") == "--set seed=1"
    # the default is lighter than the frozen probes' protocol on every embedded benchmark: it trains its encoder
    for bench in catalog.EMBEDDED_BENCHMARKS:
        frozen, ceiling = load_protocol(bench), load_protocol(bench, None, [*default, "seed=0"])
        assert ceiling.resolution < frozen.resolution and ceiling.epochs <= frozen.epochs, bench
        assert all(c < f for c, f in zip(ceiling.convnet_widths, frozen.convnet_widths)), bench  # a narrower CNN
        assert len(ceiling.grid.pairs()) == 1 and ceiling.holdout_fraction == 0, bench  # nothing chosen on it
    # its settings come after the experiment's and the benchmark's, and reach no other row
    change = {"set": ["epochs=3"], "ceiling": {"set": ["epochs=1"]}}
    plan = plan_of(lambda c: c["experiments"]["x"]["probe"].update(change))
    assert plan.probe_args("x", "motion", 0, "ceiling") == "--set epochs=3 --set epochs=1 --set seed=0"
    assert plan.probe_args("x", "motion", 0, "pixels") == "--set epochs=3 --set seed=0"


def test_a_config_without_the_ceiling_has_no_ceiling_probe():
    plan = plan_of(lambda c: c["experiments"]["x"]["probe"].update(references=["random", "pixels"]))
    variants = {layout.parse_probe_metrics(f).variant for f in plan.probe_metrics_files("x")}
    assert variants == {"nextvid", "target_vae", "random", "pixels"}
    check_all(plan)


def test_all_targets_follow_the_report_sections():
    plan = plan_of()
    targets = plan.all_targets()
    assert [t for t in targets if "/tables/" in t] == [f"results/tables/x/{t}.md" for t in catalog.TABLES]
    assert [Path(t).stem for t in targets if "/figures/" in t] == [catalog.FIGURES[f] for f in ("fig4", "fig5", "fig6")]
    plan = plan_of(
        lambda c: c["experiments"]["x"].update(
            report={"tables": ["table1"], "findings": True, "findings_doc": "docs/f.md"}
        )
    )
    assert plan.all_targets()[0] == "results/tables/x/table1.md" and plan.all_targets()[-2:] == [
        "results/findings/x/findings.md",
        "docs/f.md",
    ]
    assert plan.findings_docs() == {"docs/f.md": "x"}
    assert plan.generation_files("x") == [
        "results/generate/x/nextvid/seed0/step8/samples.npz",
        "results/generate/x/nextvid/seed1/step8/samples.npz",
    ]
    assert plan.tsne_feature_files("x") == [] and plan.rank_feature_files("x") == []  # no tsne section


def test_figure_inputs_and_arguments_name_the_same_files():
    plan = plan_of()
    metrics, samples, runs = plan.probe_metrics_files("x"), plan.generation_files("x"), plan.run_done_files("x")
    assert plan.figure_inputs("x", "fig4") == {"metrics": metrics}
    assert plan.figure_args("x", "fig4") == "--config x --metrics " + " ".join(metrics)
    assert plan.figure_inputs("x", "fig5") == {"samples": samples}
    assert (
        plan.figure_args("x", "fig5")
        == "--generations results/generate/x/nextvid/seed0/step8 results/generate/x/nextvid/seed1/step8"
    )
    assert plan.figure_inputs("x", "fig6") == {"runs": runs}
    assert plan.figure_args("x", "fig6") == "--runs " + " ".join(str(Path(f).parent) for f in runs)
    tsne = {"variants": ["nextvid", "random"], "benchmark": "images"}
    plan = plan_of(lambda c: c["experiments"]["x"].update(tsne=tsne))
    assert plan.figure_args("x", "fig7") == (
        "--features results/features/x/nextvid/seed0/step8/images.npz results/features/x/random/seed0/step0/images.npz"
    )


# --- checks --------------------------------------------------------------------------------------

BAD = {
    "experiments.x.variants.1": lambda x: x.update(variants=["nextvid", "nope"]),
    "experiments.x.pretrain.keep_steps": lambda x: x["pretrain"].update(keep_steps=[9]),
    "experiments.x.probe.steps": lambda x: x["probe"].update(steps=[5]),
    "experiments.x.pretrain.set": lambda x: x["pretrain"].update(set=["target.latent_channels=8"]),
    "experiments.x.vae.set": lambda x: x.update(vae={"set": ["stepz=1"]}),
    "experiments.x.probe.benchmarks.faces": lambda x: x["probe"]["benchmarks"].update(faces="embedded"),
    "experiments.x.generate.benchmark": lambda x: x["generate"].update(benchmark="appearance"),
    "experiments.x.probe.references.1": lambda x: x["probe"].update(references=["random", "noise"]),
    "experiments.x.probe.ceiling.set": lambda x: x["probe"].update(ceiling={"set": ["epochz=1"]}),
    "experiments.x.tsne.variants.1": lambda x: x.update(
        tsne={"variants": ["nextvid", "ceiling"], "benchmark": "images"}
    ),
    "experiments.x.report.tables": lambda x: x.update(report={"tables": ["table9"]}),
    "experiments.x.report.findings_doc": lambda x: x.update(report={"findings": True, "findings_doc": "/abs.md"}),
    "experiments.x (variant nextvid)": lambda x: x["pretrain"].update(set=["model.encoder.dpth=2"]),
}


def test_a_good_config_passes_its_checks():
    check_all(plan_of())


@pytest.mark.parametrize("where", sorted(BAD))
def test_each_check_names_the_key(where):
    plan = plan_of(lambda c: BAD[where](c["experiments"]["x"]))
    with pytest.raises(PlanError) as err:
        check_all(plan)
    assert err.value.where == where and str(err.value).startswith(f"{where}: ")


# --- code closure and catalogue ------------------------------------------------------------------


def test_code_closure_follows_imports_but_not_into_other_commands(tmp_path, monkeypatch):
    pkg = tmp_path / "nextvid"
    files = {
        "__init__.py": "",
        "commands/__init__.py": "",
        "commands/probe.py": "from nextvid import a\nfrom nextvid.commands import other\n",
        "commands/other.py": "import nextvid.c\n",
        "a.py": "def f():\n    from nextvid.sub.b import g\n",
        "sub/__init__.py": "",
        "sub/b.py": "import os\n",
        "c.py": "",
    }
    for name, text in files.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    assert code_closure(tmp_path, "nextvid.commands.probe") == sorted(
        f"nextvid/{n}"
        for n in (
            "__init__.py",
            "commands/__init__.py",
            "commands/probe.py",
            "commands/other.py",
            "a.py",
            "sub/__init__.py",
            "sub/b.py",
        )
    )


def test_catalogue_names():
    assert catalog.TABLES == ("table1", *ABLATIONS)
    assert catalog.random_preset(catalog.random_checkpoint("tiny")) == "tiny"
    assert catalog.random_preset("results/pretrain/x/nextvid/seed0/checkpoints/step_0000008.pt") is None
    assert layout.checkpoint_label("random:tiny") == "random (tiny)"
    from nextvid.data.embedded_catalogue import BENCHMARKS

    assert tuple(b.name for b in BENCHMARKS) == catalog.EMBEDDED_BENCHMARKS
