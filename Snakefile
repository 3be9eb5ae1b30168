# NExT-Vid experiment suite: data -> pretraining -> probing -> tables and figures.
# Usage, rerun policy and cluster use: workflow/README.md. Every rule calls the `nextvid` command;
# what a variant is, which protocol a benchmark uses and where results live come from the package.

# The default experiment config, unless --configfile names one (the two would otherwise be merged,
# uniting their experiments).
if not workflow.overwrite_configfiles:

    configfile: f"{workflow.basedir}/workflow/config/embedded.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/vae.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/probe.smk"
include: "workflow/rules/generate.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        PLAN.all_targets(),
