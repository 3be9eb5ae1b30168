# Next-frame generations (paper Fig. 5): masked and autoregressive samples from the flow decoder of a
# run's checkpoint, on deterministic val clips of one benchmark. Reruns when the run, the manifest,
# the parameters or the package code it runs (GENERATE_CODE) change; never pretraining.


rule generate:
    input:
        done=run_done,
        manifest=lambda wc: PLAN.generate_manifest(wc.config),
        code=GENERATE_CODE,
    output:
        samples=layout.generate_dir("{config}", "{variant}", "{seed}", "{step}")
        / "samples.npz",
        png=layout.generate_dir("{config}", "{variant}", "{seed}", "{step}")
        / "samples.png",
    log:
        log_file("generate", "{config}", "{variant}", "seed{seed}", "step{step}.log"),
    wildcard_constraints:
        variant=VARIANT_RE,
    conda:
        "../../envs/nextvid.yaml"
    threads: 1
    resources:
        mem_mb=16000,
        runtime=60,
    params:
        out=generate_out,
        checkpoint=checkpoint_file,
        args=lambda wc: PLAN.generate_args(wc.config, wc.seed),
    shell:
        "nextvid generate --checkpoint {params.checkpoint:q} --manifest {input.manifest:q}"
        " {params.args} --threads {threads} --out {params.out:q} > {log:q} 2>&1"
