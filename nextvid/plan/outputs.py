"""What an experiment produces beyond its probes: next-frame generations, pooled features (t-SNE,
RankMe), its tables, figures and findings page; and the workflow's targets, all of them."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Sequence

from nextvid import layout
from nextvid.catalog import FIGURES, REFERENCE_VARIANTS, TABLES
from nextvid.plan.probes import ProbePlan


class Plan(ProbePlan):
    """An experiment config's plan: every rule's inputs, arguments and targets (nextvid.plan)."""

    # --- generations ---------------------------------------------------------------------------

    def generate_manifest(self, name: str) -> str:
        benchmark = self.experiments[name].generate.benchmark
        return self.manifest(self.probe_benchmark(name, benchmark).dataset, "val", benchmark)

    def generate_args(self, name: str, seed: int | str) -> str:
        gen = self.experiments[name].generate
        args = f"--samples {gen.samples} --seed {int(seed)}"
        if gen.ode_steps:
            args += f" --steps {gen.ode_steps}"
        return args

    def generation_files(self, name: str) -> list[str]:
        """Fig. 5's samples: the generate variants at the final step, every seed."""
        exp = self.experiments[name]
        if exp.generate is None:
            return []
        step = self.final_step(name)
        return [
            str(layout.generate_dir(name, v, s, step) / "samples.npz") for v in exp.generate.variants for s in exp.seeds
        ]

    def generation_dirs(self, name: str) -> str:
        """The generation directories, as shell arguments (quoted)."""
        return shlex.join(str(Path(f).parent) for f in self.generation_files(name))

    # --- pooled features -----------------------------------------------------------------------

    def pooled_feature_files(self, name: str, variants: Sequence[str], seeds: Sequence[int]) -> list[str]:
        """Pooled val features on the experiment's t-SNE benchmark and samples, per variant and seed: a
        run at its final step, a reference row at step 0 (none without a `tsne` section)."""
        tsne = self.experiments[name].tsne
        if tsne is None:
            return []
        return [
            str(
                layout.features_file(
                    name, v, seed, 0 if v in REFERENCE_VARIANTS else self.final_step(name), tsne.benchmark
                )
            )
            for v in variants
            for seed in seeds
        ]

    def tsne_feature_files(self, name: str) -> list[str]:
        """Fig. 7: the t-SNE variants, first seed."""
        exp = self.experiments[name]
        return self.pooled_feature_files(name, exp.tsne.variants if exp.tsne else [], exp.seeds[:1])

    def rank_feature_files(self, name: str) -> list[str]:
        """The findings' RankMe section: every run and the random-init reference, every seed."""
        exp = self.experiments[name]
        return self.pooled_feature_files(name, [*exp.variants, "random"], exp.seeds)

    def features_inputs(self, name: str, variant: str, seed: int | str, benchmark: str) -> dict[str, str]:
        inputs = {"val": self.probe_manifests(name, benchmark)["val"]}
        if variant not in REFERENCE_VARIANTS:
            inputs["done"] = self.done_file(name, variant, seed)
        return inputs

    def features_checkpoint(self, name: str, variant: str, seed: int | str, step: int | str) -> str:
        if variant in REFERENCE_VARIANTS:
            return self.reference_checkpoint(name)
        return str(layout.checkpoint_path(name, variant, int(seed), int(step)))

    # --- tables, figures, findings -------------------------------------------------------------

    def experiment_tables(self, name: str) -> list[str]:
        tables = self.experiments[name].report.tables
        return list(TABLES if tables is None else tables)

    def experiment_figures(self, name: str) -> list[str]:
        """The figures' short names (nextvid.catalog.FIGURES): Fig. 5 with generations, Fig. 7 with t-SNE."""
        exp = self.experiments[name]
        figs = ["fig4", "fig6"]
        figs += ["fig5"] if exp.generate else []
        figs += ["fig7"] if exp.tsne else []
        return sorted(figs)

    def figure_inputs(self, name: str, fig: str) -> dict[str, list[str]]:
        """What a figure is drawn from: probe results (Fig. 4), generations (Fig. 5), runs (Fig. 6),
        pooled features (Fig. 7)."""
        source = {
            "fig4": ("metrics", self.probe_metrics_files),
            "fig5": ("samples", self.generation_files),
            "fig6": ("runs", self.run_done_files),
            "fig7": ("features", self.tsne_feature_files),
        }
        key, files = source[fig]
        return {key: files(name)}

    def figure_args(self, name: str, fig: str) -> str:
        """`nextvid report figures` arguments of one figure, quoted for the shell."""
        if fig == "fig4":
            return f"--config {shlex.quote(name)} --metrics {shlex.join(self.probe_metrics_files(name))}"
        if fig == "fig5":
            return f"--generations {self.generation_dirs(name)}"
        if fig == "fig6":
            return f"--runs {self.run_dirs(name)}"
        return f"--features {shlex.join(self.tsne_feature_files(name))}"

    @staticmethod
    def figure_file(name: str, fig: str, suffix: str = ".png") -> str:
        return str(layout.figure_file(name, FIGURES[fig], suffix))

    @staticmethod
    def findings_file(name: str) -> str:
        return str(layout.RESULTS / "findings" / name / "findings.md")

    def findings_docs(self) -> dict[str, str]:
        """Repository path -> the experiment whose findings page is published there."""
        return {e.report.findings_doc: n for n, e in self.experiments.items() if e.report.findings_doc}

    def all_targets(self) -> list[str]:
        out = []
        for name, exp in self.experiments.items():
            out += [str(layout.tables_dir(name) / f"{t}.md") for t in self.experiment_tables(name)]
            out += [self.figure_file(name, f) for f in self.experiment_figures(name)]
            out += [self.findings_file(name)] if exp.report.findings else []
            out += [exp.report.findings_doc] if exp.report.findings_doc else []
        return out
