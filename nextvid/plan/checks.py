"""The checks a JSON schema cannot make, run before the workflow builds its DAG: names and keys the
package owns (variants, datasets, benchmarks, tables), the resolved nextvid config and probe
protocol of every run, and the overrides an experiment may not undo. Each failure is a PlanError
naming the config key, so a bad config stops at start-up rather than in a job hours later."""

from __future__ import annotations

from pathlib import Path

from nextvid.catalog import CEILING_VARIANT, EMBEDDED_BENCHMARKS, FLOOR_VARIANTS, REFERENCE_VARIANTS, TABLES
from nextvid.config_engine import ConfigError
from nextvid.experiments import get_variant
from nextvid.plan.data import PlanError
from nextvid.plan.outputs import Plan
from nextvid.plan.runs import VAE_TARGET_KEYS, set_keys
from nextvid.probe.protocol import load_protocol


def check_all(plan: Plan) -> None:
    for name in plan.experiments:
        check_pretrain(plan, name)
        check_probe(plan, name)
        check_outputs(plan, name)


def check_pretrain(plan: Plan, name: str) -> None:
    exp = plan.experiments[name]
    where = f"experiments.{name}"
    pre = exp.pretrain
    for i, variant in enumerate(exp.variants):
        try:
            get_variant(variant)
        except ConfigError as err:
            raise PlanError(f"{where}.variants.{i}", err) from None
    if pre.embedded:
        plan.embedded_name()
    else:
        for i, m in enumerate(pre.mixture):
            if m.dataset not in plan.datasets:
                raise PlanError(f"{where}.pretrain.mixture.{i}.dataset", f"{m.dataset!r} is not in data.datasets")
    check_vae(plan, name)
    final = plan.final_step(name)
    past = [s for s in pre.keep_steps if s > final]
    if past:
        raise PlanError(f"{where}.pretrain.keep_steps", f"{past} past the run's last step {final}")
    own = set_keys(pre.set)
    for variant in exp.variants:
        undone = own & set_keys(get_variant(variant).overrides)
        if undone:
            raise PlanError(f"{where}.pretrain.set", f"{sorted(undone)} would undo what variant {variant!r} sets")
        try:  # the run's config as `nextvid pretrain` resolves it (nextvid.config_resolve), before anything runs
            plan.resolve(name, variant, exp.seeds[0])
        except (ConfigError, OSError) as err:
            raise PlanError(f"{where} (variant {variant})", err) from None


def check_vae(plan: Plan, name: str) -> None:
    exp = plan.experiments[name]
    where = f"experiments.{name}"
    try:
        plan.vae_config(name)
    except ConfigError as err:
        raise PlanError(f"{where}.vae.set", err) from None
    users = [v for v in exp.variants if plan.trains_vae(name, v)]
    if not users:
        return
    if not exp.pretrain.embedded:
        raise PlanError(
            f"{where}.variants",
            f"{users} need a VAE: the workflow trains one on the embedded mixture only; "
            "name your own with target.vae_path and target.vae_stats in pretrain.set",
        )
    clash = sorted(set_keys(exp.pretrain.set) & VAE_TARGET_KEYS)
    if clash:
        raise PlanError(
            f"{where}.pretrain.set", f"{clash} would undo what the workflow-trained VAE sets (change it with vae.set)"
        )


def check_probe(plan: Plan, name: str) -> None:
    exp = plan.experiments[name]
    where = f"experiments.{name}"
    kept = plan.kept_steps(name)
    not_kept = sorted(set(plan.probe_steps(name)) - set(kept))
    if not_kept:
        raise PlanError(f"{where}.probe.steps", f"{not_kept} are not kept checkpoints {kept}")
    for i, ref in enumerate(plan.references(name)):
        if ref not in REFERENCE_VARIANTS:
            raise PlanError(f"{where}.probe.references.{i}", f"{ref!r} is not one of {REFERENCE_VARIANTS}")
    for benchmark in exp.probe.benchmarks:
        spec = plan.probe_benchmark(name, benchmark)
        bwhere = f"{where}.probe.benchmarks.{benchmark}"
        if spec.dataset == "embedded":
            plan.embedded_name()
            if benchmark not in EMBEDDED_BENCHMARKS:
                raise PlanError(bwhere, f"the embedded default has {EMBEDDED_BENCHMARKS}")
        elif spec.dataset not in plan.datasets:
            raise PlanError(bwhere, f"{spec.dataset!r} is not in data.datasets")
        elif plan.datasets[spec.dataset].val is None:
            raise PlanError(bwhere, f"{spec.dataset!r} has no val split to probe on")
        try:
            load_protocol(benchmark, spec.protocol, plan.probe_overrides(name, benchmark, 0))
        except (ConfigError, OSError) as err:
            raise PlanError(bwhere, err) from None
        if CEILING_VARIANT in plan.references(name):
            try:
                load_protocol(benchmark, spec.protocol, plan.probe_overrides(name, benchmark, 0, CEILING_VARIANT))
            except ConfigError as err:
                raise PlanError(f"{where}.probe.ceiling.set", f"on {benchmark}: {err}") from None


def check_outputs(plan: Plan, name: str) -> None:
    exp = plan.experiments[name]
    where = f"experiments.{name}"
    for section, spec in (("generate", exp.generate), ("tsne", exp.tsne)):
        if spec is None:
            continue
        if spec.benchmark not in exp.probe.benchmarks:
            raise PlanError(f"{where}.{section}.benchmark", f"{spec.benchmark!r} is not a probe benchmark")
        # t-SNE reads frozen features: the floors have them, the finetuned ceiling does not
        allowed = set(exp.variants) | (set(FLOOR_VARIANTS) if section == "tsne" else set())
        for i, v in enumerate(spec.variants):
            if v not in allowed:
                raise PlanError(f"{where}.{section}.variants.{i}", f"{v!r} is not one of {sorted(allowed)}")
    unknown = sorted(set(plan.experiment_tables(name)) - set(TABLES))
    if unknown:
        raise PlanError(f"{where}.report.tables", f"unknown {unknown} (choose from {', '.join(TABLES)})")
    doc = exp.report.findings_doc
    if doc and not exp.report.findings:
        raise PlanError(f"{where}.report.findings_doc", "needs report.findings: true")
    if doc and (Path(doc).is_absolute() or ".." in Path(doc).parts or Path(doc).suffix != ".md"):
        raise PlanError(f"{where}.report.findings_doc", f"{doc!r}: give a relative .md path inside the repository")
