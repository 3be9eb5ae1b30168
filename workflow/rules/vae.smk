# The small VAE of an experiment's `vae`-target runs (Table 3's target_vae): trained on the embedded
# pretraining mixture (`nextvid vae train`, nextvid.vae, docs/vae.md) into results/vae/<experiment>/,
# a diffusers AutoencoderKL directory with its latent statistics (stats.json) and its held-out
# reconstruction PSNR beside a bilinear down-up baseline (metrics.json). The runs that read it get
# target.vae_path, target.vae_stats and the latent shape from nextvid.plan (pretrain_overrides).
# Like data and pretraining, no code inputs: a package change never retrains it (nor the runs on it).


rule vae:
    input:
        unpack(lambda wc: PLAN.vae_inputs()),
    output:
        **PLAN.vae_files("{config}"),
        metrics=str(layout.vae_dir("{config}") / "metrics.json"),
    log:
        log_file("vae", "{config}.log"),
    conda:
        "../../envs/nextvid.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        out=lambda wc: str(layout.vae_dir(wc.config)),
        args=lambda wc: PLAN.vae_args(wc.config),
    shell:
        "nextvid vae train --mixture {input.mixture:q} --val-manifest {input.val:q}"
        " {params.args} --threads {threads} --out {params.out:q} > {log:q} 2>&1"
