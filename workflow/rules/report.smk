# Tables and figures (`nextvid report`): each reads probe metrics.json files and run directories at
# nextvid.layout's paths, so every cell traces back to its file. They rerun when their inputs or the
# report code (REPORT_CODE) change. `snakemake --report` collects them with their captions.


rule report_features:
    """Pooled frozen features of a benchmark's val split for the t-SNE figure (Fig. 7): a run's final
    checkpoint, or a reference row's encoder (random init, pixels)."""
    input:
        unpack(features_inputs),
        code=FEATURES_CODE,
    output:
        features=str(
            layout.features_file(
                "{config}", "{variant}", "{seed}", "{step}", "{benchmark}"
            )
        ),
    log:
        log_file(
            "features",
            "{config}",
            "{variant}",
            "seed{seed}",
            "step{step}",
            "{benchmark}.log",
        ),
    conda:
        "../../envs/nextvid.yaml"
    threads: 1
    resources:
        mem_mb=16000,
        runtime=60,
    params:
        checkpoint=features_checkpoint,
        encoder=probe_encoder,
        protocol=lambda wc: PLAN.probe_set_args(wc.config, wc.benchmark, wc.seed),
        max_samples=lambda wc: PLAN.experiments[wc.config].tsne.max_samples,
    shell:
        "nextvid report features --checkpoint {params.checkpoint:q} --encoder {params.encoder:q}"
        " --benchmark {wildcards.benchmark:q} --val-manifest {input.val:q} {params.protocol}"
        " --max-samples {params.max_samples:q} --threads {threads} --out {output.features:q}"
        " > {log:q} 2>&1"


rule report_table:
    """One of the paper's tables, our numbers beside the paper's (md, tex, csv, cell sources)."""
    input:
        metrics=lambda wc: PLAN.probe_metrics_files(wc.config),
        runs=lambda wc: PLAN.run_done_files(wc.config),
        code=REPORT_CODE,
    output:
        md=layout.tables_dir("{config}") / "{table}.md",
        tex=layout.tables_dir("{config}") / "{table}.tex",
        csv=report(
            layout.tables_dir("{config}") / "{table}.csv",
            caption="../report/table.rst",
            category="Tables",
            subcategory="{config}",
            labels={"experiment": "{config}", "table": "{table}"},
        ),
        sources=layout.tables_dir("{config}") / "{table}.sources.csv",
        caption=layout.tables_dir("{config}") / "{table}.caption.rst",
    log:
        log_file("report", "{config}", "{table}.log"),
    wildcard_constraints:
        table=TABLE_RE,
    localrule: True
    conda:
        "../../envs/nextvid.yaml"
    params:
        out=lambda wc: str(layout.tables_dir(wc.config)),
        runs=lambda wc: PLAN.run_dirs(wc.config),
    shell:
        "nextvid report tables --tables {wildcards.table:q} --config {wildcards.config:q}"
        " --metrics {input.metrics:q} --runs {params.runs} --out {params.out:q} > {log:q} 2>&1"


rule report_figure:
    """Figs. 4 (probe accuracy against pretraining step, per benchmark), 5 (next-frame generations),
    6 (training losses by stage) and 7 (t-SNE of pooled features): one rule, `{figure}` the figure's
    file name (nextvid.catalog.FIGURES), each figure on its own inputs (nextvid.plan).
    """
    input:
        unpack(lambda wc: PLAN.figure_inputs(wc.config, figure_key(wc))),
        code=REPORT_CODE,
    output:
        png=report(
            layout.figure_file("{config}", "{figure}"),
            caption="../report/figure.rst",
            category="Figures",
            subcategory="{config}",
            labels={"experiment": "{config}", "figure": "{figure}"},
        ),
        caption=layout.figure_file("{config}", "{figure}", ".caption.rst"),
    log:
        log_file("report", "{config}", "{figure}.log"),
    wildcard_constraints:
        figure=FIGURE_RE,
    localrule: True
    conda:
        "../../envs/nextvid.yaml"
    params:
        out=lambda wc: str(layout.figures_dir(wc.config)),
        args=lambda wc: PLAN.figure_args(wc.config, figure_key(wc)),
    shell:
        "nextvid report figures {params.args} --out {params.out:q} > {log:q} 2>&1"


rule report_findings:
    """For each claim of the paper's ablations: what this experiment shows, with the numbers."""
    input:
        metrics=lambda wc: PLAN.probe_metrics_files(wc.config),
        runs=lambda wc: PLAN.run_done_files(wc.config),
        features=lambda wc: PLAN.rank_feature_files(wc.config),
        code=REPORT_CODE,
    output:
        md=PLAN.findings_file("{config}"),
    log:
        log_file("report", "{config}", "findings.log"),
    localrule: True
    conda:
        "../../envs/nextvid.yaml"
    params:
        runs=lambda wc: PLAN.run_dirs(wc.config),
        features=lambda wc, input: (
            f"--features {shlex.join(input.features)}" if input.features else ""
        ),
    shell:
        "nextvid report findings --config {wildcards.config:q} --metrics {input.metrics:q}"
        " --runs {params.runs} {params.features} --out {output.md:q} > {log:q} 2>&1"


rule publish_findings:
    """The findings page at the repository path an experiment names (`report.findings_doc`), so the
    committed docs/findings.md is the workflow's output, byte for byte. The path is the user's: it
    reaches the command quoted (a `run:` block would not do: Snakemake spawns one as a shell command
    with the wildcard unquoted)."""
    input:
        md=lambda wc: PLAN.findings_file(FINDINGS_DOCS[wc.doc]),
    output:
        md="{doc}",
    log:
        log_file("report", "publish", "{doc}.log"),
    wildcard_constraints:
        doc=FINDINGS_DOC_RE,
    localrule: True
    conda:
        "../../envs/nextvid.yaml"
    shell:
        "nextvid report publish {input.md:q} {output.md:q} > {log:q} 2>&1"
