# Config validation, path builders and lookups shared by every rule file.
#
# Paths come from nextvid.layout (the report parses them back), variants from nextvid.experiments,
# protocols from nextvid.probe.protocol: this file only maps the experiment config onto them.
# Nothing here imports torch, so building the DAG stays fast.

import ast
import os
import re
import shlex
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from nextvid import layout
from nextvid.config import ConfigError
from nextvid.config import load as load_nextvid_config
from nextvid.experiments import VARIANTS, budget_overrides, get_variant
from nextvid.probe.protocol import load_protocol
from nextvid.report.paper import ABLATIONS
from nextvid.vae.config import load_vae_config, target_overrides

validate(config, "../schemas/config.schema.yaml")

EXPERIMENTS = config["experiments"]
DATASETS = config["data"].get("datasets", {})
EMBEDDED = config["data"].get("embedded")
EMBEDDED_BENCHMARKS = ("images", "appearance", "motion", "motion_sequence")
SPLITS = ("train", "val")
# reference rows, probed at step 0 without pretraining: ("random", "pixels")
REFERENCES = layout.REFERENCE_VARIANTS
# nextvid.report.tables.TABLES, without importing pandas
TABLES = ("table1", *ABLATIONS)
# nextvid.report figures.FIG4/FIG6, grids.FIG5, tsne.FIG7 (tests/test_workflow.py checks them)
FIGURES = {
    "fig4": "fig4_probe_vs_step",
    "fig5": "fig5_generations",
    "fig6": "fig6_losses",
    "fig7": "fig7_tsne",
}
VARIANT_RE = "|".join(map(re.escape, VARIANTS))
REFERENCE_RE = "|".join(map(re.escape, REFERENCES))
EMBEDDED_RE = r"embedded(_[a-z]+)?(_seed\d+)?"


def config_error(where, message):
    return WorkflowError(f"config error: {where}: {message}")


def log_file(*parts):
    return str(layout.RESULTS / "logs" / Path(*parts))


def set_args(overrides):
    return " ".join(f"--set {shlex.quote(s)}" for s in overrides)


def experiment(wildcards):
    return EXPERIMENTS[wildcards.config]


# --- data ----------------------------------------------------------------------------------------


def embedded_name():
    """results/data/<name>: `embedded` for the default build, a suffix for any other."""
    if EMBEDDED is None:
        raise config_error("data.embedded", "used by an experiment, but not configured")
    name = "embedded"
    if EMBEDDED["scale"] != "default":
        name += f"_{EMBEDDED['scale']}"
    if EMBEDDED["seed"] != 0:
        name += f"_seed{EMBEDDED['seed']}"
    return name


def embedded_outputs():
    root = layout.data_dir("{embedded}")
    out = {"info": str(root / "info.json"), "mixture": str(root / "mixture.json")}
    for benchmark in EMBEDDED_BENCHMARKS:
        for split in SPLITS:
            out[f"{benchmark}_{split}"] = str(root / benchmark / f"{split}.tsv")
    return out


def embedded_sources_args():
    if EMBEDDED and EMBEDDED["sources"]:
        return f"--sources {shlex.quote(EMBEDDED['sources'])}"
    return ""


def cache_dir(embedded):
    return layout.data_dir(f"{embedded}_cache")


def embedded_mixture():
    """The mixture file pretraining reads: the build's, or its shard cache's."""
    if EMBEDDED["cache"]["enabled"]:
        return str(cache_dir(embedded_name()) / "mixture.json")
    return str(layout.data_dir(embedded_name()) / "mixture.json")


def cache_size_args(wildcards):
    size = EMBEDDED["cache"]["size"]
    return f"--size {size}" if size else ""


def manifest(dataset, split, benchmark=None):
    """The embedded default's <benchmark>/<split>.tsv, or a converted dataset's <split>.tsv."""
    if dataset == "embedded":
        return str(layout.data_dir(embedded_name()) / benchmark / f"{split}.tsv")
    return str(layout.data_dir(dataset) / f"{split}.tsv")


# Real datasets: `nextvid data convert-*` arguments per kind, from data.datasets.<name>.
CONVERTERS = {
    "k400": "convert-k400",
    "list": "convert-list",
    "ssv2": "convert-ssv2",
    "diving48": "convert-diving48",
    "imagefolder": "convert-imagefolder",
    "folder": "convert-folder",
}
# kinds whose val split reuses the train split's class ids (the others carry their own)
SHARED_LABEL_MAP = ("k400", "list", "imagefolder")
RAW_KEYS = ("csv", "videos", "list", "root", "split_json")


def dataset_split(wildcards):
    ds = DATASETS.get(wildcards.dataset)
    if ds is None or wildcards.split not in ds:
        raise WorkflowError(
            f"data.datasets.{wildcards.dataset}.{wildcards.split}: not configured"
        )
    return ds, ds[wildcards.split]


def convert_inputs(wildcards):
    """The user's raw files, as ancient() inputs (they must exist; a touched video folder does not
    reconvert), and for a val split the train split's label map."""
    ds, split = dataset_split(wildcards)
    raw = {k: v for k, v in split.items() if k in RAW_KEYS}
    raw.update({k: ds[k] for k in ("labels", "vocab") if k in ds})
    inputs = {k: ancient(v) for k, v in raw.items()}
    if convert_label_map(wildcards):
        inputs["label_map"] = convert_label_map(wildcards)
    return inputs


def convert_label_map(wildcards):
    """A val split of these kinds takes the train split's class ids."""
    ds, _ = dataset_split(wildcards)
    if wildcards.split == "val" and ds["kind"] in SHARED_LABEL_MAP:
        return str(layout.data_dir(wildcards.dataset) / "train.labels.json")
    return None


def convert_args(wildcards):
    """Params functions take only wildcards: snakemake does not compare params that read `input`."""
    ds, split = dataset_split(wildcards)
    kind = ds["kind"]
    args = []
    if kind == "k400" and "list" in split:
        args += ["--list", split["list"]]
    elif kind == "k400":
        args += ["--csv", split["csv"], "--videos", split["videos"]]
        args += ["--split", split["split"]] if "split" in split else []
    elif kind == "list":
        args += [split["list"]]
    elif kind in ("ssv2", "diving48"):
        args += ["--labels", ds["labels"]] if kind == "ssv2" else []
        args += ["--split-json", split["split_json"], "--videos", split["videos"]]
        args += ["--vocab", ds["vocab"]] if "vocab" in ds else []
    else:  # imagefolder, folder
        args += [split["root"]]
        args += ["--images"] if ds.get("images") else []
    args += (
        ["--root", split["root"]]
        if kind in ("k400", "list") and "root" in split
        else []
    )
    if convert_label_map(wildcards):
        args += ["--label-map", convert_label_map(wildcards)]
    args += ["--max-bad-fraction", ds["max_bad_fraction"]]
    return " ".join([CONVERTERS[kind]] + [shlex.quote(str(a)) for a in args])


# --- the VAE of `vae`-target variants ------------------------------------------------------------
# An experiment with a variant that needs a VAE (nextvid.experiments: Variant.needs) gets one trained
# by the workflow on its embedded pretraining mixture, results/vae/<experiment>/, unless its
# pretrain.set names a VAE of its own (target.vae_path, e.g. paper.yaml's VA-VAE).

# the pretraining keys the workflow-trained VAE sets
VAE_TARGET_KEYS = {s.split("=", 1)[0] for s in target_overrides(".", load_vae_config())}
# held-out frames of its reconstruction metrics: the embedded default's still images and videos
VAE_VAL_BENCHMARKS = ("images", "motion")


def own_vae(exp):
    return any(s.split("=", 1)[0] == "target.vae_path" for s in exp["pretrain"]["set"])


def trains_vae(name, variant):
    exp = EXPERIMENTS[name]
    return "vae" in get_variant(variant).needs and not own_vae(exp)


def vae_config(name):
    return load_vae_config(EXPERIMENTS[name]["vae"]["set"])


def vae_files(name):
    root = layout.vae_dir(name)
    return {
        "vae_config": str(root / "config.json"),
        "vae_weights": str(root / "diffusion_pytorch_model.safetensors"),
        "vae_stats": str(root / "stats.json"),
    }


def vae_inputs(wildcards):
    return {
        "mixture": embedded_mixture(),
        "val": [manifest("embedded", "val", b) for b in VAE_VAL_BENCHMARKS],
    }


def vae_args(wildcards):
    return set_args(experiment(wildcards)["vae"]["set"])


# --- pretraining ---------------------------------------------------------------------------------


def final_step(exp):
    """The step a run ends at: pretrain.stop_at for an early-stopped run, else the schedule's end."""
    return exp["pretrain"]["stop_at"] or exp["pretrain"]["total_steps"]


def kept_steps(exp):
    """Checkpoints a run keeps: the configured ones and the final one (the trainer keeps both)."""
    return sorted(set(exp["pretrain"]["keep_steps"]) | {final_step(exp)})


def pretrain_overrides(name, variant, seed):
    """`--set` strings of one run: the variant's (nextvid.experiments), the experiment's, the data
    sources (real datasets), the seed and the budget."""
    exp = EXPERIMENTS[name]
    pre = exp["pretrain"]
    sets = list(get_variant(variant).overrides)
    if trains_vae(name, variant):
        sets += target_overrides(layout.vae_dir(name), vae_config(name))
    sets += list(pre["set"])
    if pre["mixture"] != "embedded":
        sources = ", ".join(
            f"{{name: {m['dataset']}, manifest: {manifest(m['dataset'], 'train')}, "
            f"weight: {m['weight']}}}"
            for m in pre["mixture"]
        )
        sets.append(f"data.sources=[{sources}]")
    sets.append(f"seed={seed}")
    return sets + budget_overrides(
        pre["total_steps"], pre["stop_at"], pre["keep_steps"]
    )


def run_dir(name, variant, seed):
    return str(layout.pretrain_dir(name, variant, int(seed)))


def done_file(name, variant, seed):
    """A run's completion record: the trainer writes it last, after every kept checkpoint."""
    return str(layout.pretrain_dir(name, variant, int(seed)) / "done.json")


def checkpoint_file(wildcards):
    return str(
        layout.checkpoint_path(
            wildcards.config,
            wildcards.variant,
            int(wildcards.seed),
            int(wildcards.step),
        )
    )


def run_done(wildcards):
    return done_file(wildcards.config, wildcards.variant, wildcards.seed)


def pretrain_inputs(wildcards):
    exp = experiment(wildcards)
    mixture = exp["pretrain"]["mixture"]
    if mixture == "embedded":
        inputs = {"mixture": embedded_mixture()}
    else:
        inputs = {m["dataset"]: manifest(m["dataset"], "train") for m in mixture}
    if trains_vae(wildcards.config, wildcards.variant):
        inputs.update(vae_files(wildcards.config))
    if exp["nextvid_config"]:
        inputs["nextvid_config"] = ancient(exp["nextvid_config"])
    return inputs


def pretrain_params(wildcards):
    """Everything that decides the trained weights, as command-line arguments."""
    exp = experiment(wildcards)
    args = [f"--preset {shlex.quote(exp['preset'])}"]
    if exp["nextvid_config"]:
        args.append(f"--config {shlex.quote(exp['nextvid_config'])}")
    args.append(
        set_args(
            pretrain_overrides(wildcards.config, wildcards.variant, int(wildcards.seed))
        )
    )
    if exp["pretrain"]["mixture"] == "embedded":
        args.append(f"--mixture {shlex.quote(embedded_mixture())}")
    return " ".join(args)


def nextvid_config_text(wildcards):
    """The config file's content: an edit reruns the runs that use it, a touch does not."""
    exp = experiment(wildcards)
    return Path(exp["nextvid_config"]).read_text() if exp["nextvid_config"] else ""


def launch_args(wildcards):
    return set_args(experiment(wildcards)["pretrain"]["launch"])


def run_done_files(name):
    exp = EXPERIMENTS[name]
    return [done_file(name, v, s) for v in exp["variants"] for s in exp["seeds"]]


def run_dirs(name):
    """The run directories, as shell arguments (quoted: shell commands take them as they are)."""
    return shlex.join(str(Path(f).parent) for f in run_done_files(name))


# --- probes --------------------------------------------------------------------------------------


def probe_steps(exp):
    steps = exp["probe"]["steps"]
    return sorted(steps) if steps is not None else kept_steps(exp)


def probe_benchmark(exp, benchmark):
    spec = exp["probe"]["benchmarks"][benchmark]
    if isinstance(spec, str):
        spec = {"dataset": spec}
    return {"protocol": None, "set": [], **spec}


def probe_overrides(exp, benchmark, seed):
    """Protocol overrides: the experiment's, the benchmark's, and the seed (probe heads, held-out
    split, random-init reference encoder): seed n replicates both pretraining and probing.
    """
    spec = probe_benchmark(exp, benchmark)
    return list(exp["probe"]["set"]) + list(spec["set"]) + [f"seed={seed}"]


def probe_manifests(wildcards):
    spec = probe_benchmark(experiment(wildcards), wildcards.benchmark)
    return {
        split: manifest(spec["dataset"], split, wildcards.benchmark) for split in SPLITS
    }


def probe_val_manifest(wildcards):
    return probe_manifests(wildcards)["val"]


def probe_protocol_file(wildcards):
    spec = probe_benchmark(experiment(wildcards), wildcards.benchmark)
    return [spec["protocol"]] if spec["protocol"] else []


def probe_args(wildcards):
    """The protocol: an optional YAML file and the overrides."""
    exp = experiment(wildcards)
    spec = probe_benchmark(exp, wildcards.benchmark)
    args = set_args(probe_overrides(exp, wildcards.benchmark, int(wildcards.seed)))
    if spec["protocol"]:
        args = f"--protocol {shlex.quote(spec['protocol'])} {args}"
    return args


def probe_set_args(wildcards):
    """The overrides alone (`nextvid report features` takes no protocol file)."""
    exp = experiment(wildcards)
    return set_args(probe_overrides(exp, wildcards.benchmark, int(wildcards.seed)))


def probe_out(wildcards):
    return str(
        layout.probe_dir(
            wildcards.config,
            wildcards.variant,
            int(wildcards.seed),
            int(wildcards.step),
            wildcards.benchmark,
        )
    )


def probe_encoder(wildcards):
    if wildcards.variant == "pixels":
        return "pixels"
    if wildcards.variant == "random":
        return "reference"
    return experiment(wildcards)["probe"]["encoder"]


def reference_checkpoint(wildcards):
    """A reference row's encoder: random init of the experiment's preset (`pixels` reads only its
    tubelet geometry)."""
    return f"random:{experiment(wildcards)['preset']}"


def probe_metrics_files(name):
    """Every probe result of an experiment: variant x seed x probed step x benchmark, and the
    reference rows at step 0."""
    exp = EXPERIMENTS[name]
    out = []
    for seed in exp["seeds"]:
        for benchmark in exp["probe"]["benchmarks"]:
            for variant in exp["variants"]:
                for step in probe_steps(exp):
                    out.append(
                        layout.probe_metrics(name, variant, seed, step, benchmark)
                    )
            for ref in exp["probe"]["references"]:
                out.append(layout.probe_metrics(name, ref, seed, 0, benchmark))
    return [str(p) for p in out]


# --- generations and features --------------------------------------------------------------------


def generate_manifest(wildcards):
    exp = experiment(wildcards)
    benchmark = exp["generate"]["benchmark"]
    return manifest(probe_benchmark(exp, benchmark)["dataset"], "val", benchmark)


def generate_out(wildcards):
    return str(
        layout.generate_dir(
            wildcards.config,
            wildcards.variant,
            int(wildcards.seed),
            int(wildcards.step),
        )
    )


def generate_args(wildcards):
    gen = experiment(wildcards)["generate"]
    args = f"--samples {gen['samples']} --seed {int(wildcards.seed)}"
    if gen["ode_steps"]:
        args += f" --steps {gen['ode_steps']}"
    return args


def generation_files(name):
    exp = EXPERIMENTS[name]
    gen = exp.get("generate")
    if not gen:
        return []
    step = final_step(exp)
    return [
        str(layout.generate_dir(name, v, s, step) / "samples.npz")
        for v in gen["variants"]
        for s in exp["seeds"]
    ]


def generation_dirs(wildcards):
    """The generation directories, as shell arguments (quoted)."""
    return shlex.join(str(Path(f).parent) for f in generation_files(wildcards.config))


def features_file(name, variant, seed, step, benchmark):
    """Pooled val features (t-SNE figure, RankMe in the findings)."""
    return str(layout.features_file(name, variant, seed, step, benchmark))


def features_inputs(wildcards):
    inputs = {"val": probe_val_manifest(wildcards)}
    if wildcards.variant not in REFERENCES:
        inputs["done"] = run_done(wildcards)
    return inputs


def features_checkpoint(wildcards):
    if wildcards.variant in REFERENCES:
        return reference_checkpoint(wildcards)
    return checkpoint_file(wildcards)


def pooled_feature_files(name, variants, seeds):
    """Pooled val features on the experiment's t-SNE benchmark and samples, per variant and seed: a
    run at its final step, a reference row at step 0 (none without a `tsne` section)."""
    exp = EXPERIMENTS[name]
    tsne = exp.get("tsne")
    if not tsne:
        return []
    return [
        features_file(
            name, v, seed, 0 if v in REFERENCES else final_step(exp), tsne["benchmark"]
        )
        for v in variants
        for seed in seeds
    ]


def tsne_feature_files(name):
    """Fig. 7: the t-SNE variants, first seed."""
    exp = EXPERIMENTS[name]
    return pooled_feature_files(
        name, (exp.get("tsne") or {}).get("variants", []), exp["seeds"][:1]
    )


def rank_feature_files(name):
    """The findings' RankMe section: every run and the random-init reference, every seed."""
    exp = EXPERIMENTS[name]
    return pooled_feature_files(name, [*exp["variants"], "random"], exp["seeds"])


# --- tables and figures --------------------------------------------------------------------------


def experiment_tables(name):
    tables = EXPERIMENTS[name]["report"]["tables"]
    return list(TABLES) if tables is None else tables


def figure_outputs(fig):
    """A figure rule's outputs: the PNG (in the snakemake report, with its caption) and the caption
    text that `nextvid report figures` writes beside it (the report's caption includes it).
    """
    png = str(layout.figures_dir("{config}") / f"{FIGURES[fig]}.png")
    caption = str(layout.figures_dir("{config}") / f"{FIGURES[fig]}.caption.rst")
    return {
        "png": report(
            png,
            caption=f"../report/{fig}.rst",
            category="Figures",
            subcategory="{config}",
            labels={"experiment": "{config}", "figure": FIGURES[fig]},
        ),
        "caption": caption,
    }


def experiment_figures(name):
    exp = EXPERIMENTS[name]
    figs = ["fig4", "fig6"]
    figs += ["fig5"] if exp.get("generate") else []
    figs += ["fig7"] if exp.get("tsne") else []
    return [str(layout.figures_dir(name) / f"{FIGURES[f]}.png") for f in sorted(figs)]


def findings_file(name):
    return str(layout.RESULTS / "findings" / name / "findings.md")


def all_targets():
    out = []
    for name, exp in EXPERIMENTS.items():
        out += [
            str(layout.tables_dir(name) / f"{t}.md") for t in experiment_tables(name)
        ]
        out += experiment_figures(name)
        out += [findings_file(name)] if exp["report"]["findings"] else []
        out += [exp["report"]["findings_doc"]] if exp["report"]["findings_doc"] else []
    return out


# --- package code a rule depends on --------------------------------------------------------------
# A rule reruns when the code it runs changes (rerun trigger `mtime` on these inputs). The set is
# the closure of the package modules its command imports, read from their `import` statements
# (also those inside functions), so it follows the code without a hand-kept list. Data extraction
# and pretraining take no code inputs: a package change never reruns them.

PACKAGE = Path(workflow.basedir) / "nextvid"


def _module_file(dotted):
    base = PACKAGE.parent / Path(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path):
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return {m for m in found if m == "nextvid" or m.startswith("nextvid.")}


def code_closure(*entries):
    """The package files that the entry modules import, directly or not (with packages' __init__).
    Another command module (nextvid.commands.*) counts as its own file only: its imports serve its
    own subcommands (e.g. `generate` borrows a label helper from `report`)."""
    seen, todo = {}, list(entries)
    while todo:
        dotted = todo.pop()
        path = _module_file(dotted)
        if path is None or dotted in seen:
            continue
        seen[dotted] = path
        if dotted in entries or not dotted.startswith("nextvid.commands."):
            todo += sorted(_imports(path))
        parent = dotted.rpartition(".")[0]
        if parent:
            todo.append(parent)
    return sorted(_rel(p) for p in seen.values())


def _rel(path):
    """Relative to the working directory where it lies inside it (shorter logs), else absolute."""
    cwd = Path.cwd()
    return os.path.relpath(path, cwd) if path.is_relative_to(cwd) else str(path)


PROBE_CODE = code_closure("nextvid.commands.probe")
GENERATE_CODE = code_closure("nextvid.commands.generate")
REPORT_CODE = code_closure("nextvid.commands.report")
# `report features` encodes clips (minutes): not rerun for a change to tables or figures
FEATURES_CODE = sorted(
    set(code_closure("nextvid.report.features"))
    | {_rel(_module_file("nextvid.commands.report"))}
)


# --- checks the schema cannot make: names and keys the package owns -----------------------------


def check_pretrain(name, exp):
    where = f"experiments.{name}"
    pre = exp["pretrain"]
    for i, variant in enumerate(exp["variants"]):
        try:
            get_variant(variant)
        except ConfigError as err:
            raise config_error(f"{where}.variants.{i}", err) from None
    if pre["mixture"] == "embedded":
        embedded_name()
    else:
        for i, m in enumerate(pre["mixture"]):
            if m["dataset"] not in DATASETS:
                raise config_error(
                    f"{where}.pretrain.mixture.{i}.dataset",
                    f"{m['dataset']!r} is not in data.datasets",
                )
    check_vae(name, exp)
    past = [s for s in pre["keep_steps"] if s > final_step(exp)]
    if past:
        raise config_error(
            f"{where}.pretrain.keep_steps",
            f"{past} past the run's last step {final_step(exp)}",
        )
    own = {s.split("=", 1)[0] for s in pre["set"]}
    for variant in exp["variants"]:
        variant_keys = {s.split("=", 1)[0] for s in get_variant(variant).overrides}
        if own & variant_keys:
            raise config_error(
                f"{where}.pretrain.set",
                f"{sorted(own & variant_keys)} would undo what variant {variant!r} sets",
            )
        sets = pretrain_overrides(name, variant, exp["seeds"][0]) + pre["launch"]
        try:  # every key and type of the resolved nextvid config, before anything runs
            load_nextvid_config(exp["preset"], exp["nextvid_config"], sets)
        except (ConfigError, OSError) as err:
            raise config_error(f"{where} (variant {variant})", err) from None


def check_vae(name, exp):
    where = f"experiments.{name}"
    try:
        vae_config(name)
    except ConfigError as err:
        raise config_error(f"{where}.vae.set", err) from None
    users = [v for v in exp["variants"] if trains_vae(name, v)]
    if not users:
        return
    if exp["pretrain"]["mixture"] != "embedded":
        raise config_error(
            f"{where}.variants",
            f"{users} need a VAE: the workflow trains one on the embedded mixture only; "
            "name your own with target.vae_path and target.vae_stats in pretrain.set",
        )
    clash = sorted(
        {s.split("=", 1)[0] for s in exp["pretrain"]["set"]} & VAE_TARGET_KEYS
    )
    if clash:
        raise config_error(
            f"{where}.pretrain.set",
            f"{clash} would undo what the workflow-trained VAE sets (change it with vae.set)",
        )


def check_probe(name, exp):
    where = f"experiments.{name}"
    not_kept = sorted(set(probe_steps(exp)) - set(kept_steps(exp)))
    if not_kept:
        raise config_error(
            f"{where}.probe.steps",
            f"{not_kept} are not kept checkpoints {kept_steps(exp)}",
        )
    for benchmark in exp["probe"]["benchmarks"]:
        spec = probe_benchmark(exp, benchmark)
        bwhere = f"{where}.probe.benchmarks.{benchmark}"
        if spec["dataset"] == "embedded":
            embedded_name()
            if benchmark not in EMBEDDED_BENCHMARKS:
                raise config_error(
                    bwhere, f"the embedded default has {EMBEDDED_BENCHMARKS}"
                )
        elif spec["dataset"] not in DATASETS:
            raise config_error(bwhere, f"{spec['dataset']!r} is not in data.datasets")
        elif "val" not in DATASETS[spec["dataset"]]:
            raise config_error(
                bwhere, f"{spec['dataset']!r} has no val split to probe on"
            )
        try:
            load_protocol(
                benchmark, spec["protocol"], probe_overrides(exp, benchmark, 0)
            )
        except (ConfigError, OSError) as err:
            raise config_error(bwhere, err) from None


def check_outputs(name, exp):
    where = f"experiments.{name}"
    for section in ("generate", "tsne"):
        spec = exp.get(section)
        if not spec:
            continue
        if spec["benchmark"] not in exp["probe"]["benchmarks"]:
            raise config_error(
                f"{where}.{section}.benchmark",
                f"{spec['benchmark']!r} is not a probe benchmark",
            )
        allowed = set(exp["variants"]) | (
            set(REFERENCES) if section == "tsne" else set()
        )
        for i, v in enumerate(spec["variants"]):
            if v not in allowed:
                raise config_error(
                    f"{where}.{section}.variants.{i}",
                    f"{v!r} is not one of {sorted(allowed)}",
                )
    unknown = sorted(set(experiment_tables(name)) - set(TABLES))
    if unknown:
        raise config_error(
            f"{where}.report.tables",
            f"unknown {unknown} (choose from {', '.join(TABLES)})",
        )
    doc = exp["report"]["findings_doc"]
    if doc and not exp["report"]["findings"]:
        raise config_error(
            f"{where}.report.findings_doc", "needs report.findings: true"
        )
    if doc and (
        Path(doc).is_absolute() or ".." in Path(doc).parts or Path(doc).suffix != ".md"
    ):
        raise config_error(
            f"{where}.report.findings_doc",
            f"{doc!r}: give a relative .md path inside the repository",
        )


for _name, _exp in EXPERIMENTS.items():
    check_pretrain(_name, _exp)
    check_probe(_name, _exp)
    check_outputs(_name, _exp)

# repository path -> the experiment whose findings page is published there
FINDINGS_DOCS = {
    e["report"]["findings_doc"]: n
    for n, e in EXPERIMENTS.items()
    if e["report"]["findings_doc"]
}


wildcard_constraints:
    config="|".join(map(re.escape, EXPERIMENTS)),
    seed=r"\d+",
    step=r"\d+",
    benchmark=r"[a-z][a-z0-9_]*",
    split="train|val",
