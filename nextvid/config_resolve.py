"""The pretraining config of a run, resolved in one place. `nextvid pretrain` (before it launches),
the workflow's plan (its checks and kept steps, at DAG time) and the launcher's tests all call
`resolve_pretrain_config`, so the same arguments give the same config, and so the same training hash
and run directory, wherever they are resolved.

The merges, in this fixed order (a later one wins over an earlier one):

1. the preset (`--preset`; default vit_l, or the YAML file's `preset:`);
2. the YAML file (`--config`);
3. the KEY=VALUE overrides (`--set`), in the order given (the workflow's: the variant's, what it
   needs, the experiment's, the data sources, the seed, the budget, then where the run goes);
4. the mixture file (`--mixture`): its sources replace `data.sources`, whatever 1-3 put there (an
   indexed override such as `data.sources.0.weight=2` applies in 3, before the mixture, and fails
   when the preset has no sources);
5. the data sources' manifest and shard paths made absolute: a SLURM job runs from a code snapshot
   elsewhere, so relative paths must not reach it; a missing manifest is an error here;
6. `target.vae_path` and `target.vae_stats` made absolute, like the data, when `target.kind` is vae;
7. at least one data source.

Every step builds a Config, so every key, type and rule (nextvid.config_rules) is checked after each
merge and an error names the dotted key. Torch-free: the plan resolves configs while Snakemake
builds its DAG.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from nextvid.config import Config, ConfigError, load, merge
from nextvid.data.mixture_file import read_mixture

VAE_PATH_KEYS = ("vae_path", "vae_stats")


def resolve_pretrain_config(
    preset: Optional[str] = None,
    file: Optional[str | Path] = None,
    overrides: Sequence[str] = (),
    mixture: Optional[str | Path] = None,
    *,
    inputs_ready: bool = True,
) -> Config:
    """The config `nextvid pretrain --preset P --config F --set ... --mixture M` runs (the module's
    docstring lists the order of the merges).

    `inputs_ready=False` is for callers that resolve before the rules that write the mixture and the
    manifests have run (the workflow's plan at DAG time): the mixture is not read (step 4), missing
    manifests are not errors (step 5) and no data source is needed (step 7). All else is the same,
    so such a config differs from the run's only in the sources the mixture brings."""
    cfg = load(preset, file, list(overrides))
    if mixture is not None and inputs_ready:
        cfg = merge(cfg, {"data": {"sources": read_mixture(mixture)}})
    cfg = merge(cfg, {"data": {"sources": absolute_sources(cfg.data.sources, must_exist=inputs_ready)}})
    if cfg.target.kind == "vae":
        cfg = merge(cfg, {"target": {key: absolute(getattr(cfg.target, key)) for key in VAE_PATH_KEYS}})
    if inputs_ready and not cfg.data.sources:
        raise ConfigError("data.sources: no pretraining data (give --mixture or data.sources)")
    return cfg


def absolute(path: str) -> str:
    return str(Path(path).expanduser().resolve())


def absolute_sources(sources: Sequence, must_exist: bool = True) -> list[dict]:
    """`data.sources` with manifest and shard paths resolved against the current directory; with
    `must_exist`, a missing manifest is reported here, before anything is submitted."""
    out = []
    for i, s in enumerate(sources):
        manifest = absolute(s.manifest)
        if must_exist and not Path(manifest).is_file():
            raise ConfigError(f"data.sources.{i}.manifest: {s.manifest} does not exist")
        shards = absolute(s.shards) if s.shards else ""
        out.append({"name": s.name, "weight": s.weight, "manifest": manifest, "shards": shards})
    return out
