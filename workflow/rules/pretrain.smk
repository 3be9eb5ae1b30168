# Pretraining: one run per (experiment, variant, seed), launched through submitit from a local rule
# (`nextvid pretrain --wait`: a subprocess here, or a SLURM job that submitit requeues on preemption
# or at its time limit and that resumes from its latest checkpoint).
#
# What the run *is* reaches the command through params (preset, config file, every --set): a changed
# parameter reruns exactly that run and what reads it. Where it runs (launcher, SLURM settings) comes
# from resources, which never rerun anything. No code inputs: a package change never reruns it.
#
# The declared output is done.json, which the trainer writes last, after every kept checkpoint; it is
# protected(): snakemake refuses to replace a finished run (delete the run directory to retrain). The
# kept checkpoints are not declared outputs: snakemake deletes a job's declared outputs before it
# reruns the job, and a run resumed after an interruption cannot rewrite a kept step it has passed.
# Interrupted, a run leaves no done.json and resumes from its latest checkpoint on the next call.


rule pretrain:
    input:
        unpack(pretrain_inputs),
    output:
        done=protected(
            str(layout.pretrain_dir("{config}", "{variant}", "{seed}") / "done.json")
        ),
    log:
        log_file("pretrain", "{config}", "{variant}", "seed{seed}.log"),
    wildcard_constraints:
        variant=VARIANT_RE,
    priority: LONG_CHAIN_PRIORITY
    localrule: True
    conda:
        "../../envs/nextvid.yaml"
    # Snakemake sets OMP_NUM_THREADS to this: on 2 cores a one-thread run beside a probe (or a second
    # run) does more work than one run on both (docs/performance.md)
    threads: 1
    resources:
        # where the run goes, not what it is (never a rerun trigger): `launcher` and `site` (e.g.
        # --set launch.partition=gpu) from the profile, `launch` (nodes, GPUs) from the experiment
        launcher="local",
        launch=lambda wc: PLAN.launch_args(wc.config),
        site="",
    params:
        out=lambda wc: PLAN.run_dir(wc.config, wc.variant, wc.seed),
        args=pretrain_params,
        config_text=lambda wc: PLAN.nextvid_config_text(wc.config),
    shell:
        "nextvid pretrain {params.args} {resources.launch} {resources.site}"
        " --out {params.out:q} --launcher {resources.launcher} --wait > {log:q} 2>&1"
