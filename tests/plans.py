"""The workflow's plan of a test's config, built as the workflow builds it: the config validated
against workflow/schemas/config.schema.yaml with its defaults filled in, then nextvid.plan.Plan."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable, Optional

from snakemake.utils import validate

from nextvid.plan import Plan

SCHEMA = Path(__file__).resolve().parents[1] / "workflow/schemas/config.schema.yaml"


def validated_plan(config: dict, change: Optional[Callable[[dict], None]] = None) -> Plan:
    """The plan of a copy of `config`, changed in place by `change` first."""
    config = copy.deepcopy(config)
    if change:
        change(config)
    validate(config, str(SCHEMA), set_default=True)
    return Plan(config)
