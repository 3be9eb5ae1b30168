"""The workflow's config as typed data: frozen dataclasses that mirror workflow/schemas/config.schema.yaml
key for key (its experiments and its data), built with the config engine (nextvid.config_engine) from
the config the workflow has validated against that schema, defaults filled in.

The schema stays the one source of defaults and rules (ranges, patterns, which keys a dataset kind
takes): a field has a default here only where a key may still be absent after validation (an optional
section, a dataset's optional file), so a config that skipped validation fails by its dotted key rather
than being planned on guesses. tests/test_plan_experiment.py holds the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Optional, Union

from nextvid.config_engine import from_dict
from nextvid.config_schema import run_end_step

Overrides = tuple[str, ...]  # KEY=VALUE strings, as `--set` takes them
# JSON's number: an integer stays one, so a command line shows the value as the user wrote it (`0`,
# not `0.0`: a changed rule parameter would rerun the rule)
Number = Union[int, float]


# --- data ------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class EmbeddedCache:
    """data.embedded.cache: the pretraining mixture decoded once into uint8 shards."""

    enabled: bool
    step: int
    size: Optional[int]


@dataclass(frozen=True, kw_only=True)
class EmbeddedData:
    """data.embedded: the embedded default's build (`nextvid data embedded`)."""

    scale: Literal["default", "smoke", "large"]
    seed: int
    sources: Optional[str]
    cache: EmbeddedCache


@dataclass(frozen=True, kw_only=True)
class DatasetSplit:
    """A split's raw files, the keys of every kind's split in one type: which of them a kind takes
    (split_k400, split_list, split_json, split_folder) the schema has checked."""

    csv: Optional[str] = None
    videos: Optional[str] = None
    split: Optional[str] = None
    list: Optional[str] = None
    root: Optional[str] = None
    split_json: Optional[str] = None


@dataclass(frozen=True, kw_only=True)
class Dataset:
    """data.datasets.<name>: a real dataset, the keys of every kind in one type (the schema has checked
    which a kind takes: labels is ssv2's, vocab diving48's, images folder's)."""

    kind: Literal["k400", "list", "ssv2", "diving48", "imagefolder", "folder"]
    max_bad_fraction: Number
    train: DatasetSplit
    val: Optional[DatasetSplit] = None
    labels: Optional[str] = None
    vocab: Optional[str] = None
    images: bool = False

    def splits(self) -> dict[str, DatasetSplit]:
        """The configured splits by name (a `folder` corpus has no val split)."""
        return {name: s for name, s in (("train", self.train), ("val", self.val)) if s is not None}


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    embedded: Optional[EmbeddedData] = None
    datasets: dict[str, Dataset]


# --- an experiment ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class MixtureSource:
    """A real dataset's train manifest in the pretraining mixture, with its sampling weight."""

    dataset: str
    weight: Number


@dataclass(frozen=True, kw_only=True)
class Pretrain:
    mixture: Union[Literal["embedded"], tuple[MixtureSource, ...]]
    total_steps: int
    stop_at: Optional[int]
    keep_steps: tuple[int, ...]
    set: Overrides
    launch: Overrides

    @property
    def embedded(self) -> bool:
        """Pretraining reads the embedded default's mixture (else: real datasets' train manifests)."""
        return self.mixture == "embedded"

    @property
    def final_step(self) -> int:
        """The step a run ends at: stop_at for an early-stopped run, else the schedule's end."""
        return run_end_step(self.total_steps, self.stop_at)


@dataclass(frozen=True, kw_only=True)
class Vae:
    set: Overrides


@dataclass(frozen=True, kw_only=True)
class Benchmark:
    """A probe benchmark's dataset and protocol (None: the benchmark's own), with its overrides."""

    dataset: str
    protocol: Optional[str] = None
    set: Overrides


@dataclass(frozen=True, kw_only=True)
class Ceiling:
    set: Overrides


@dataclass(frozen=True, kw_only=True)
class Probe:
    benchmarks: dict[str, Union[str, Benchmark]]  # a dataset's name, or a Benchmark
    steps: Optional[tuple[int, ...]]
    references: Optional[tuple[str, ...]]
    ceiling: Ceiling
    encoder: Literal["reference", "online"]
    set: Overrides

    def benchmark(self, name: str) -> Benchmark:
        """A benchmark in its full form: a dataset's name alone is that dataset at the benchmark's own
        protocol."""
        spec = self.benchmarks[name]
        return Benchmark(dataset=spec, set=()) if isinstance(spec, str) else spec


@dataclass(frozen=True, kw_only=True)
class Generate:
    variants: tuple[str, ...]
    benchmark: str
    samples: int
    ode_steps: Optional[int]


@dataclass(frozen=True, kw_only=True)
class Tsne:
    variants: tuple[str, ...]
    benchmark: str
    max_samples: int


@dataclass(frozen=True, kw_only=True)
class Report:
    tables: Optional[tuple[str, ...]]
    findings: bool
    findings_doc: Optional[str]


@dataclass(frozen=True, kw_only=True)
class Experiment:
    """experiments.<name>: what the workflow runs for one experiment (nextvid.plan)."""

    preset: str
    nextvid_config: Optional[str]
    pretrain: Pretrain
    vae: Vae
    variants: tuple[str, ...]
    seeds: tuple[int, ...]
    probe: Probe
    generate: Optional[Generate] = None
    tsne: Optional[Tsne] = None
    report: Report


@dataclass(frozen=True, kw_only=True)
class WorkflowConfig:
    data: DataConfig
    experiments: dict[str, Experiment]


def workflow_config(config: dict[str, Any]) -> WorkflowConfig:
    """The workflow's config, validated against its schema with the defaults filled in, as typed data;
    a ConfigError names the dotted key of anything that does not fit (a config that skipped validation)."""
    return from_dict(WorkflowConfig, config)
