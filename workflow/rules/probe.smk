# Probing: an attentive probe per (experiment, variant, seed, step, benchmark) on a frozen checkpoint,
# and the reference rows at step 0: the floors (a random-init encoder, raw pixels) and the supervised
# ceiling (a small 3D CNN and the probe head trained end to end with labels: --finetune, its own
# lighter protocol overrides from probe.ceiling.set; nextvid.plan.probes). A probe reruns when its run,
# its manifests, its parameters or the package code it runs (PROBE_CODE) change; never pretraining.
# The cached features are deleted after the run: bulky, and nothing reads them again.


rule probe:
    """A pretrained variant's checkpoint at one kept step, probed on one benchmark."""
    input:
        unpack(probe_manifests),
        done=run_done,
        protocol=probe_protocol_file,
        code=PROBE_CODE,
    output:
        metrics=layout.probe_metrics(
            "{config}", "{variant}", "{seed}", "{step}", "{benchmark}"
        ),
    log:
        log_file(
            "probe",
            "{config}",
            "{variant}",
            "seed{seed}",
            "step{step}",
            "{benchmark}.log",
        ),
    wildcard_constraints:
        variant=VARIANT_RE,
    conda:
        "../../envs/nextvid.yaml"
    threads: 1
    resources:
        mem_mb=16000,
        runtime=120,
    params:
        out=probe_out,
        checkpoint=checkpoint_file,
        encoder=probe_encoder,
        mode=probe_mode,
        protocol=probe_args,
    shell:
        "(nextvid probe --checkpoint {params.checkpoint:q} --encoder {params.encoder:q} {params.mode}"
        " --benchmark {wildcards.benchmark:q} --train-manifest {input.train:q}"
        " --val-manifest {input.val:q} {params.protocol} --threads {threads} --out {params.out:q}"
        " && rm -rf {params.out:q}/features) > {log:q} 2>&1"


use rule probe as probe_reference with:
    input:
        unpack(probe_manifests),
        protocol=probe_protocol_file,
        code=PROBE_CODE,
    wildcard_constraints:
        variant=REFERENCE_RE,
        step="0",
    params:
        out=probe_out,
        checkpoint=reference_checkpoint,
        encoder=probe_encoder,
        mode=probe_mode,
        protocol=probe_args,
