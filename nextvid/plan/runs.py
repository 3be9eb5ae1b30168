"""Pretraining runs of an experiment: what each run is (the `--set` overrides of its variant, its
experiment, its data, its seed and budget), the checkpoints it keeps (the trainer's own rule, on the
config the run resolves to), and the VAE the workflow trains for `vae`-target variants.

An experiment with a variant that needs a VAE (nextvid.experiments: Variant.needs) gets one trained
on its embedded pretraining mixture, results/vae/<experiment>/, unless its pretrain.set names a VAE
of its own (target.vae_path, e.g. paper.yaml's VA-VAE).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, Sequence

from nextvid import layout
from nextvid.config import Config
from nextvid.config_resolve import resolve_pretrain_config
from nextvid.experiments import Variant, budget_overrides, get_variant
from nextvid.plan.data import DataPlan
from nextvid.train.schedule import kept_steps
from nextvid.vae.config import VaeConfig, load_vae_config, target_overrides

# held-out frames of the VAE's reconstruction metrics: the embedded default's still images and videos
VAE_VAL_BENCHMARKS = ("images", "motion")


def set_args(overrides: Sequence[str]) -> str:
    """`--set KEY=VALUE` arguments, each quoted for the shell."""
    return " ".join(f"--set {shlex.quote(s)}" for s in overrides)


def set_keys(overrides: Sequence[str]) -> set[str]:
    return {s.split("=", 1)[0] for s in overrides}


def needs_overrides(variant: Variant, vae_dir: str | Path, vae_cfg: VaeConfig) -> list[str]:
    """The `--set` strings of what a variant needs from the workflow besides the data: a VAE target's
    directory, statistics and latent shape."""
    return target_overrides(vae_dir, vae_cfg) if "vae" in variant.needs else []


# the pretraining keys the workflow-trained VAE sets
VAE_TARGET_KEYS = set_keys(target_overrides(".", load_vae_config()))


class RunPlan(DataPlan):
    def __init__(self, config: dict[str, Any]):
        super().__init__(config)
        self._kept: dict[str, list[int]] = {}

    # --- the VAE of `vae`-target variants ------------------------------------------------------

    def own_vae(self, name: str) -> bool:
        return "target.vae_path" in set_keys(self.experiments[name].pretrain.set)

    def trains_vae(self, name: str, variant: str) -> bool:
        return "vae" in get_variant(variant).needs and not self.own_vae(name)

    def vae_experiments(self) -> list[str]:
        """The experiments the workflow trains a VAE for."""
        return [n for n, e in self.experiments.items() if any(self.trains_vae(n, v) for v in e.variants)]

    def vae_config(self, name: str) -> VaeConfig:
        return load_vae_config(list(self.experiments[name].vae.set))

    @staticmethod
    def vae_files(name: str) -> dict[str, str]:
        root = layout.vae_dir(name)
        return {
            "vae_config": str(root / "config.json"),
            "vae_weights": str(root / "diffusion_pytorch_model.safetensors"),
            "vae_stats": str(root / "stats.json"),
        }

    def vae_inputs(self) -> dict[str, Any]:
        return {
            "mixture": self.embedded_mixture(),
            "val": [self.manifest("embedded", "val", b) for b in VAE_VAL_BENCHMARKS],
        }

    def vae_args(self, name: str) -> str:
        return set_args(self.experiments[name].vae.set)

    # --- what a run is -------------------------------------------------------------------------

    def pretrain_overrides(self, name: str, variant: str, seed: int) -> list[str]:
        """`--set` strings of one run: the variant's (nextvid.experiments) and what it needs, the
        experiment's, the data sources (real datasets), the seed and the budget."""
        pre = self.experiments[name].pretrain
        sets = list(get_variant(variant).overrides)
        if self.trains_vae(name, variant):
            sets += needs_overrides(get_variant(variant), layout.vae_dir(name), self.vae_config(name))
        sets += list(pre.set)
        if not pre.embedded:
            sources = ", ".join(
                f"{{name: {m.dataset}, manifest: {self.manifest(m.dataset, 'train')}, weight: {m.weight}}}"
                for m in pre.mixture
            )
            sets.append(f"data.sources=[{sources}]")
        sets.append(f"seed={seed}")
        return sets + budget_overrides(pre.total_steps, pre.stop_at, pre.keep_steps)

    def pretrain_request(self, name: str, variant: str, seed: int) -> dict[str, Any]:
        """What decides a run's trained weights, as the arguments of `resolve_pretrain_config`
        (nextvid.config_resolve): `pretrain_args` writes them on the command line of `nextvid
        pretrain`, which resolves them with that function, and `resolve` passes them to it directly."""
        exp = self.experiments[name]
        return {
            "preset": exp.preset,
            "file": exp.nextvid_config,
            "overrides": self.pretrain_overrides(name, variant, seed),
            "mixture": self.embedded_mixture() if exp.pretrain.embedded else None,  # else: data.sources overrides
        }

    def resolve(self, name: str, variant: str, seed: int, inputs_ready: bool = False) -> Config:
        """The config a run resolves to: its request and the experiment's launch overrides, which the
        rule adds to the command line after them. At DAG time (`inputs_ready` False) the mixture and
        manifests need not exist yet, and the config is the run's but for an embedded mixture's sources."""
        request = self.pretrain_request(name, variant, seed)
        request["overrides"] += self.experiments[name].pretrain.launch
        return resolve_pretrain_config(**request, inputs_ready=inputs_ready)

    def final_step(self, name: str) -> int:
        """The step a run ends at: pretrain.stop_at for an early-stopped run, else the schedule's end."""
        return self.experiments[name].pretrain.final_step

    def kept_steps(self, name: str) -> list[int]:
        """The checkpoints an experiment's runs keep, by the trainer's rule on the config of its
        first run (every run of an experiment has the experiment's budget)."""
        if name not in self._kept:
            exp = self.experiments[name]
            self._kept[name] = kept_steps(self.resolve(name, exp.variants[0], exp.seeds[0]))
        return self._kept[name]

    def pretrain_inputs(self, name: str, variant: str) -> dict[str, str]:
        """The run's data, its VAE, and its nextvid config file (key `nextvid_config`)."""
        exp = self.experiments[name]
        if exp.pretrain.embedded:
            inputs = {"mixture": self.embedded_mixture()}
        else:
            inputs = {m.dataset: self.manifest(m.dataset, "train") for m in exp.pretrain.mixture}
        if self.trains_vae(name, variant):
            inputs.update(self.vae_files(name))
        if exp.nextvid_config:
            inputs["nextvid_config"] = exp.nextvid_config
        return inputs

    def pretrain_args(self, name: str, variant: str, seed: int) -> str:
        """Everything that decides the trained weights (`pretrain_request`), as command-line arguments."""
        request = self.pretrain_request(name, variant, seed)
        args = [f"--preset {shlex.quote(request['preset'])}"]
        if request["file"]:
            args.append(f"--config {shlex.quote(request['file'])}")
        args.append(set_args(request["overrides"]))
        if request["mixture"]:
            args.append(f"--mixture {shlex.quote(request['mixture'])}")
        return " ".join(args)

    def nextvid_config_text(self, name: str) -> str:
        """The config file's content: an edit reruns the runs that use it, a touch does not."""
        path = self.experiments[name].nextvid_config
        return Path(path).read_text() if path else ""

    def launch_args(self, name: str) -> str:
        return set_args(self.experiments[name].pretrain.launch)

    # --- where runs live -----------------------------------------------------------------------

    @staticmethod
    def run_dir(name: str, variant: str, seed: int | str) -> str:
        return str(layout.pretrain_dir(name, variant, int(seed)))

    @staticmethod
    def done_file(name: str, variant: str, seed: int | str) -> str:
        """A run's completion record: the trainer writes it last, after every kept checkpoint."""
        return str(layout.pretrain_dir(name, variant, int(seed)) / "done.json")

    def run_done_files(self, name: str) -> list[str]:
        exp = self.experiments[name]
        return [self.done_file(name, v, s) for v in exp.variants for s in exp.seeds]

    def run_dirs(self, name: str) -> str:
        """The run directories, as shell arguments (quoted: shell commands take them as they are)."""
        return shlex.join(str(Path(f).parent) for f in self.run_done_files(name))
