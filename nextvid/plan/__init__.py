"""Experiment planning: what the workflow runs for an experiment config, as torch-free package code.

An experiment config (workflow/config/*.yaml, validated against workflow/schemas/config.schema.yaml)
names variants, seeds, a budget, benchmarks and outputs; `Plan` turns it into every rule's inputs,
arguments and targets (data, runs, probes, outputs), and `check_all` rejects what the schema cannot.
The plan reads the config as typed data (nextvid.plan.experiment: frozen dataclasses that mirror the
schema), never as nested dicts.
The workflow's rules are thin adapters from wildcards to these calls, so the tests can ask the plan
what the DAG should hold, and importing it never loads torch (building the DAG stays fast).
"""

from nextvid.plan.checks import check_all
from nextvid.plan.data import PlanError
from nextvid.plan.outputs import Plan

__all__ = ["Plan", "PlanError", "check_all"]
