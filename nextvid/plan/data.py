"""The data an experiment config names: the embedded default's build (its directory name, files and
mixture) and real datasets converted to manifests (`nextvid data convert-<kind>` arguments per kind).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, Optional

from nextvid import layout
from nextvid.catalog import EMBEDDED_BENCHMARKS, SPLITS
from nextvid.config_engine import ConfigError
from nextvid.plan.experiment import Dataset, DatasetSplit, EmbeddedData, Experiment, workflow_config

# dataset kind -> its `nextvid data` subcommand
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
# a split's keys that name the user's raw files
RAW_KEYS = ("csv", "videos", "list", "root", "split_json")


class PlanError(ConfigError):
    """An experiment config the schema accepts but the package cannot run; `where` is its key."""

    def __init__(self, where: str, message: Any):
        super().__init__(f"{where}: {message}")
        self.where = where


class DataPlan:
    """`config`: the workflow's config, validated against its schema (defaults filled in); the plan
    reads it as typed data (nextvid.plan.experiment)."""

    def __init__(self, config: dict[str, Any]):
        self.config = config
        typed = workflow_config(config)
        self.experiments: dict[str, Experiment] = typed.experiments
        self.datasets: dict[str, Dataset] = typed.data.datasets
        self.embedded: Optional[EmbeddedData] = typed.data.embedded

    # --- the embedded default ------------------------------------------------------------------

    def embedded_name(self) -> str:
        """results/data/<name>: `embedded` for the default build, a suffix for any other."""
        if self.embedded is None:
            raise PlanError("data.embedded", "used by an experiment, but not configured")
        name = "embedded"
        if self.embedded.scale != "default":
            name += f"_{self.embedded.scale}"
        if self.embedded.seed != 0:
            name += f"_seed{self.embedded.seed}"
        return name

    @staticmethod
    def embedded_outputs(name: str) -> dict[str, str]:
        """The files a build writes: its info, its mixture and each benchmark's split manifests."""
        root = layout.data_dir(name)
        out = {"info": str(root / "info.json"), "mixture": str(root / "mixture.json")}
        for benchmark in EMBEDDED_BENCHMARKS:
            for split in SPLITS:
                out[f"{benchmark}_{split}"] = str(root / benchmark / f"{split}.tsv")
        return out

    def embedded_sources_args(self) -> str:
        if self.embedded and self.embedded.sources:
            return f"--sources {shlex.quote(self.embedded.sources)}"
        return ""

    @staticmethod
    def cache_dir(name: str) -> Path:
        return layout.data_dir(f"{name}_cache")

    def cache_size_args(self) -> str:
        size = self.embedded.cache.size
        return f"--size {size}" if size else ""

    def embedded_mixture(self) -> str:
        """The mixture file pretraining reads: the build's, or its shard cache's."""
        if self.embedded.cache.enabled:
            return str(self.cache_dir(self.embedded_name()) / "mixture.json")
        return str(layout.data_dir(self.embedded_name()) / "mixture.json")

    def manifest(self, dataset: str, split: str, benchmark: Optional[str] = None) -> str:
        """The embedded default's <benchmark>/<split>.tsv, or a converted dataset's <split>.tsv."""
        if dataset == "embedded":
            return str(layout.data_dir(self.embedded_name()) / benchmark / f"{split}.tsv")
        return str(layout.data_dir(dataset) / f"{split}.tsv")

    # --- real datasets -------------------------------------------------------------------------

    def dataset_split(self, dataset: str, split: str) -> tuple[Dataset, DatasetSplit]:
        ds = self.datasets.get(dataset)
        if ds is None or split not in ds.splits():
            raise PlanError(f"data.datasets.{dataset}.{split}", "not configured")
        return ds, ds.splits()[split]

    def convert_raw(self, dataset: str, split: str) -> dict[str, str]:
        """The user's raw files of a split (and the dataset's label files), by argument name."""
        ds, spec = self.dataset_split(dataset, split)
        raw = {k: getattr(spec, k) for k in RAW_KEYS if getattr(spec, k) is not None}
        raw.update({k: getattr(ds, k) for k in ("labels", "vocab") if getattr(ds, k) is not None})
        return raw

    def convert_label_map(self, dataset: str, split: str) -> Optional[str]:
        """A val split of these kinds takes the train split's class ids."""
        ds, _ = self.dataset_split(dataset, split)
        if split == "val" and ds.kind in SHARED_LABEL_MAP:
            return str(layout.data_dir(dataset) / "train.labels.json")
        return None

    def convert_args(self, dataset: str, split: str) -> str:
        """`nextvid data` arguments converting one split: every path and setting of it, so a change
        reconverts exactly this split."""
        ds, spec = self.dataset_split(dataset, split)
        kind = ds.kind
        args = []
        if kind == "k400" and spec.list is not None:
            args += ["--list", spec.list]
        elif kind == "k400":
            args += ["--csv", spec.csv, "--videos", spec.videos]
            args += ["--split", spec.split] if spec.split is not None else []
        elif kind == "list":
            args += [spec.list]
        elif kind in ("ssv2", "diving48"):
            args += ["--labels", ds.labels] if kind == "ssv2" else []
            args += ["--split-json", spec.split_json, "--videos", spec.videos]
            args += ["--vocab", ds.vocab] if ds.vocab is not None else []
        else:  # imagefolder, folder
            args += [spec.root]
            args += ["--images"] if ds.images else []
        args += ["--root", spec.root] if kind in ("k400", "list") and spec.root is not None else []
        label_map = self.convert_label_map(dataset, split)
        args += ["--label-map", label_map] if label_map else []
        args += ["--max-bad-fraction", ds.max_bad_fraction]
        return " ".join([CONVERTERS[kind]] + [shlex.quote(str(a)) for a in args])
