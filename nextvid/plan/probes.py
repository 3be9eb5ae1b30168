"""Probes of an experiment: which checkpoints are probed on which benchmark with which protocol, and
the reference rows at step 0: the floors (a random-init encoder, raw pixels) and the supervised
ceiling (a small 3D CNN and the probe head finetuned with labels, `nextvid probe --finetune`).

A probe's protocol is the benchmark's (nextvid.probe.protocol), an optional YAML file and the
overrides of the experiment, the benchmark, the ceiling's own (`probe.ceiling.set`: the ceiling
trains its encoder, so it gets lighter settings) and the seed: seed n replicates pretraining and
probing.
"""

from __future__ import annotations

import shlex

from nextvid import layout
from nextvid.catalog import CEILING_VARIANT, REFERENCE_VARIANTS, SPLITS, random_checkpoint
from nextvid.plan.experiment import Benchmark
from nextvid.plan.runs import RunPlan, set_args


class ProbePlan(RunPlan):
    def probe_steps(self, name: str) -> list[int]:
        """The steps probed: probe.steps, or every kept checkpoint."""
        steps = self.experiments[name].probe.steps
        return sorted(steps) if steps is not None else self.kept_steps(name)

    def references(self, name: str) -> list[str]:
        """The reference rows an experiment probes: probe.references, or all of them."""
        refs = self.experiments[name].probe.references
        return list(REFERENCE_VARIANTS if refs is None else refs)

    def probe_benchmark(self, name: str, benchmark: str) -> Benchmark:
        """A benchmark's dataset, protocol file (None: the benchmark's own) and overrides."""
        return self.experiments[name].probe.benchmark(benchmark)

    def probe_overrides(self, name: str, benchmark: str, seed: int, variant: str = "") -> list[str]:
        """Protocol overrides: the experiment's, the benchmark's, the ceiling's own for the `ceiling`
        row (after the others: they lighten the protocol for a model that trains its encoder), and
        the seed (probe heads, held-out split, random-init reference encoder, the ceiling's CNN)."""
        spec = self.probe_benchmark(name, benchmark)
        probe = self.experiments[name].probe
        ceiling = list(probe.ceiling.set) if variant == CEILING_VARIANT else []
        return list(probe.set) + list(spec.set) + ceiling + [f"seed={seed}"]

    def probe_manifests(self, name: str, benchmark: str) -> dict[str, str]:
        dataset = self.probe_benchmark(name, benchmark).dataset
        return {split: self.manifest(dataset, split, benchmark) for split in SPLITS}

    def probe_protocol_file(self, name: str, benchmark: str) -> list[str]:
        protocol = self.probe_benchmark(name, benchmark).protocol
        return [protocol] if protocol else []

    def probe_set_args(self, name: str, benchmark: str, seed: int | str) -> str:
        """The overrides alone (`nextvid report features` takes no protocol file)."""
        return set_args(self.probe_overrides(name, benchmark, int(seed)))

    def probe_args(self, name: str, benchmark: str, seed: int | str, variant: str = "") -> str:
        """The protocol of a variant's probe: an optional YAML file and the overrides."""
        args = set_args(self.probe_overrides(name, benchmark, int(seed), variant))
        protocol = self.probe_benchmark(name, benchmark).protocol
        return f"--protocol {shlex.quote(protocol)} {args}" if protocol else args

    @staticmethod
    def probe_mode(variant: str) -> str:
        """`--finetune` for the supervised ceiling (encoder and head trained with labels), else nothing:
        every other row is a frozen probe."""
        return "--finetune" if variant == CEILING_VARIANT else ""

    def probe_encoder(self, name: str, variant: str) -> str:
        """The encoder a probe reads: raw pixels, the random-init reference, the ceiling's small CNN,
        or the experiment's."""
        if variant == "pixels":
            return "pixels"
        if variant == "random":
            return "reference"
        if variant == CEILING_VARIANT:
            return "convnet"
        return self.experiments[name].probe.encoder

    def reference_checkpoint(self, name: str) -> str:
        """A reference row's encoder: random init of the experiment's preset (`pixels` and the
        ceiling's CNN read only its geometry)."""
        return random_checkpoint(self.experiments[name].preset)

    def probe_metrics_files(self, name: str) -> list[str]:
        """Every probe result of an experiment: variant x seed x probed step x benchmark, and the
        reference rows at step 0."""
        exp = self.experiments[name]
        out = []
        for seed in exp.seeds:
            for benchmark in exp.probe.benchmarks:
                for variant in exp.variants:
                    for step in self.probe_steps(name):
                        out.append(layout.probe_metrics(name, variant, seed, step, benchmark))
                for ref in self.references(name):
                    out.append(layout.probe_metrics(name, ref, seed, 0, benchmark))
        return [str(p) for p in out]
