# Data: the embedded default (registry data -> H.264 benchmarks + pretraining corpus), its optional
# shard cache, and real datasets converted to manifests (docs/data.md). Data rules take no code
# inputs: a change to the package never rebuilds data (and so never reruns pretraining).


rule data_embedded:
    """The embedded default: the fetched registry sources (fetch is idempotent and offline once
    done) -> four benchmarks and a pretraining corpus, built in a staging folder and swapped in.
    """
    output:
        **PLAN.embedded_outputs("{embedded}"),
    log:
        log_file("data", "{embedded}.log"),
    wildcard_constraints:
        embedded=EMBEDDED_RE,
    conda:
        "../../envs/nextvid.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        out=lambda wc: str(layout.data_dir(wc.embedded)),
        scale=EMBEDDED.scale if EMBEDDED else None,
        seed=EMBEDDED.seed if EMBEDDED else None,
        sources=PLAN.embedded_sources_args(),
    shell:
        "(nextvid data fetch {params.sources}"
        " && nextvid data embedded --out {params.out:q} --scale {params.scale:q}"
        " --seed {params.seed:q} --workers {threads} {params.sources}) > {log:q} 2>&1"


rule data_cache_mixture:
    """Every source of the embedded pretraining mixture decoded once into uint8 shards."""
    input:
        mixture=lambda wc: layout.data_dir(wc.embedded) / "mixture.json",
    output:
        mixture=str(layout.data_dir("{embedded}_cache") / "mixture.json"),
    log:
        log_file("data", "{embedded}_cache.log"),
    wildcard_constraints:
        embedded=EMBEDDED_RE,
    # pretraining waits for it; else the reference probes would take both cores first
    priority: LONG_CHAIN_PRIORITY
    conda:
        "../../envs/nextvid.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=240,
    params:
        out=lambda wc: str(PLAN.cache_dir(wc.embedded)),
        step=lambda wc: EMBEDDED.cache.step,
        size=lambda wc: PLAN.cache_size_args(),
    shell:
        "nextvid data cache-mixture --mixture {input.mixture:q} --out {params.out:q}"
        " --step {params.step:q} {params.size} --workers {threads} > {log:q} 2>&1"


rule data_convert:
    """A real dataset's split -> manifest, label map and skip report (`nextvid data convert-*`)."""
    input:
        unpack(convert_inputs),
    output:
        manifest=str(layout.data_dir("{dataset}") / "{split}.tsv"),
        labels=str(layout.data_dir("{dataset}") / "{split}.labels.json"),
        skips=str(layout.data_dir("{dataset}") / "{split}.skips.json"),
    log:
        log_file("data", "{dataset}", "convert_{split}.log"),
    wildcard_constraints:
        dataset=DATASET_RE,
    conda:
        "../../envs/nextvid.yaml"
    resources:
        mem_mb=8000,
        runtime=240,
    params:
        # every path and setting of this split: a change reconverts exactly this split
        args=convert_args,
    shell:
        "nextvid data {params.args} --out {output.manifest:q} > {log:q} 2>&1"
