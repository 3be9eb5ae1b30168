# Config validation and the adapters from wildcards to the experiment plan.
#
# The package decides what runs: nextvid.plan (inputs, arguments, targets, the checks
# the schema cannot make, the code a rule runs), nextvid.catalog (names), nextvid.layout (paths).
# This file validates the config, maps wildcards onto the plan and wraps what only Snakemake has
# (ancient inputs, report items, errors). Nothing here imports torch: building the DAG stays fast.

import re
import shlex
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from nextvid import layout
from nextvid.catalog import FIGURES, REFERENCE_VARIANTS, SPLITS, TABLES
from nextvid.experiments import VARIANTS
from nextvid.plan import Plan, PlanError, check_all
from nextvid.plan.code import code_closure, features_code

validate(config, "../schemas/config.schema.yaml")

PLAN = Plan(config)
try:
    check_all(PLAN)
except PlanError as err:
    raise WorkflowError(f"config error: {err}") from None

EMBEDDED = PLAN.embedded
VARIANT_RE = "|".join(map(re.escape, VARIANTS))
REFERENCE_RE = "|".join(map(re.escape, REFERENCE_VARIANTS))
# the one embedded build this config names (results/data/<name>), exactly: a looser pattern also matched
# its shard cache, <name>_cache, and made data_embedded and data_cache_mixture ambiguous
EMBEDDED_RE = re.escape(PLAN.embedded_name()) if EMBEDDED else "$^"
DATASET_RE = "|".join(map(re.escape, PLAN.datasets)) or "$^"
TABLE_RE = "|".join(TABLES)
FIGURE_KEYS = {stem: key for key, stem in FIGURES.items()}  # file name -> fig4..fig7
FIGURE_RE = "|".join(FIGURE_KEYS)
# repository path -> the experiment whose findings page is published there
FINDINGS_DOCS = PLAN.findings_docs()
FINDINGS_DOC_RE = "|".join(map(re.escape, FINDINGS_DOCS)) or "(?!)"  # (?!): none
# Among ready jobs Snakemake starts the higher priority first. Pretraining and the data it waits for
# are the long chain: started first, they are not held back by short probes that can wait.
LONG_CHAIN_PRIORITY = 10

# Code inputs (nextvid.plan.code): the package files a command imports, so that changed code reruns it.
# Data extraction, the VAE and pretraining take no code inputs: a package change never reruns them.
ROOT = Path(workflow.basedir)
PROBE_CODE = code_closure(ROOT, "nextvid.commands.probe")
GENERATE_CODE = code_closure(ROOT, "nextvid.commands.generate")
REPORT_CODE = code_closure(ROOT, "nextvid.commands.report")
FEATURES_CODE = features_code(ROOT)


def log_file(*parts):
    return str(layout.RESULTS / "logs" / Path(*parts))


def ancient_keys(inputs, keys):
    """The user's files as ancient() inputs: they must exist, and a touch reruns nothing."""
    return {k: ancient(v) if k in keys else v for k, v in inputs.items()}


# --- data ----------------------------------------------------------------------------------------


def convert_inputs(wc):
    """A split's raw files (ancient: a touched video folder does not reconvert) and, for a val split
    of some kinds, the train split's label map."""
    raw = PLAN.convert_raw(wc.dataset, wc.split)
    label_map = PLAN.convert_label_map(wc.dataset, wc.split)
    return ancient_keys(raw, raw) | ({"label_map": label_map} if label_map else {})


def convert_args(wc):
    """Params functions take only wildcards: snakemake does not compare params that read `input`."""
    return PLAN.convert_args(wc.dataset, wc.split)


# --- pretraining ---------------------------------------------------------------------------------


def pretrain_inputs(wc):
    return ancient_keys(PLAN.pretrain_inputs(wc.config, wc.variant), {"nextvid_config"})


def pretrain_params(wc):
    return PLAN.pretrain_args(wc.config, wc.variant, int(wc.seed))


def run_done(wc):
    return PLAN.done_file(wc.config, wc.variant, wc.seed)


def checkpoint_file(wc):
    return str(
        layout.checkpoint_path(wc.config, wc.variant, int(wc.seed), int(wc.step))
    )


# --- probes, generations, features ---------------------------------------------------------------


def probe_manifests(wc):
    return PLAN.probe_manifests(wc.config, wc.benchmark)


def probe_protocol_file(wc):
    return PLAN.probe_protocol_file(wc.config, wc.benchmark)


def probe_args(wc):
    return PLAN.probe_args(wc.config, wc.benchmark, wc.seed, wc.variant)


def probe_mode(wc):
    return PLAN.probe_mode(wc.variant)


def probe_encoder(wc):
    return PLAN.probe_encoder(wc.config, wc.variant)


def reference_checkpoint(wc):
    return PLAN.reference_checkpoint(wc.config)


def probe_out(wc):
    return str(
        layout.probe_dir(
            wc.config, wc.variant, int(wc.seed), int(wc.step), wc.benchmark
        )
    )


def generate_out(wc):
    return str(layout.generate_dir(wc.config, wc.variant, int(wc.seed), int(wc.step)))


def features_inputs(wc):
    return PLAN.features_inputs(wc.config, wc.variant, wc.seed, wc.benchmark)


def features_checkpoint(wc):
    return PLAN.features_checkpoint(wc.config, wc.variant, wc.seed, wc.step)


# --- tables and figures --------------------------------------------------------------------------


def figure_key(wc):
    """The short name (fig4..fig7) of the figure whose file name is the `{figure}` wildcard."""
    return FIGURE_KEYS[wc.figure]


wildcard_constraints:
    config="|".join(map(re.escape, PLAN.experiments)),
    seed=r"\d+",
    step=r"\d+",
    benchmark=r"[a-z][a-z0-9_]*",
    split="|".join(SPLITS),
