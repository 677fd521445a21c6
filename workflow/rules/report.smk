# The functions these rules call: common.smk, section "report.smk".


# Cheap summaries: run on the submitting machine, not as cluster jobs.
localrules:
    tables,
    ablation,
    ablation_val,
    select,
    recovery,
    paper_table,
    curves,


rule tables:
    """Accuracy table (CE, PaCo, LPA; mean and std over seeds) and the per-class accuracy plot."""
    input:
        unpack(table_inputs),
    output:
        csv=report(
            "results/{dataset}/tables/accuracy.csv",
            caption="../report/accuracy.rst",
            category="Results",
            subcategory="{dataset}",
        ),
        md=report(
            "results/{dataset}/tables/accuracy.md",
            caption="../report/accuracy.rst",
            category="Results",
            subcategory="{dataset}",
        ),
        plot=report(
            "results/{dataset}/tables/per_class_accuracy.png",
            caption="../report/per_class_accuracy.rst",
            category="Results",
            subcategory="{dataset}",
        ),
    log:
        "results/{dataset}/logs/tables.log",
    benchmark:
        "results/{dataset}/benchmarks/tables.tsv"
    conda:
        "../envs/torch.yaml"
    params:
        flags=table_flags,
    shell:
        "python -m lpa.tables {params.flags} --out-csv {output.csv} --out-md {output.md}"
        " --out-plot {output.plot} > {log} 2>&1"


rule ablation:
    """LPA over every K, similarity and alpha beside its controls (alpha 0; label SupCon), paired over seeds."""
    input:
        ablation_inputs,
    output:
        csv=report(
            "results/{dataset}/tables/lpa_ablation.csv",
            caption="../report/ablation.rst",
            category="LPA ablation",
            subcategory="{dataset}",
        ),
        md="results/{dataset}/tables/lpa_ablation.md",
        paired=report(
            "results/{dataset}/tables/lpa_ablation_paired.csv",
            caption="../report/ablation_paired.rst",
            category="LPA ablation",
            subcategory="{dataset}",
        ),
    log:
        "results/{dataset}/logs/ablation.log",
    benchmark:
        "results/{dataset}/benchmarks/ablation.tsv"
    conda:
        "../envs/torch.yaml"
    params:
        flags=ablation_flags,
    shell:
        "python -m lpa.tables {params.flags} --out-csv {output.csv} --out-md {output.md}"
        " --out-paired-csv {output.paired} > {log} 2>&1"


use rule ablation as ablation_val with:
    input:
        lambda wc: ablation_inputs(wc, "evaluate_val"),
    output:
        csv=report(
            "results/{dataset}/tables/lpa_ablation_val.csv",
            caption="../report/ablation_val.rst",
            category="LPA ablation",
            subcategory="{dataset}",
        ),
        md="results/{dataset}/tables/lpa_ablation_val.md",
        paired="results/{dataset}/tables/lpa_ablation_val_paired.csv",
    log:
        "results/{dataset}/logs/ablation_val.log",
    benchmark:
        "results/{dataset}/benchmarks/ablation_val.tsv"
    params:
        flags=lambda wc: ablation_flags(wc, "evaluate_val"),


rule select:
    """Each family's setting (LPA, label SupCon, alpha 0) chosen on val, and the picks paired on test."""
    input:
        selection_inputs,
    output:
        csv=report(
            "results/{dataset}/tables/selected.csv",
            caption="../report/selected.rst",
            category="LPA ablation",
            subcategory="{dataset}",
        ),
        paired="results/{dataset}/tables/selected_paired.csv",
        md="results/{dataset}/tables/selected.md",
    log:
        "results/{dataset}/logs/select.log",
    benchmark:
        "results/{dataset}/benchmarks/select.tsv"
    conda:
        "../envs/torch.yaml"
    params:
        flags=selection_flags,
    shell:
        "python -m lpa.select {params.flags} --out-csv {output.csv} --out-paired-csv {output.paired}"
        " --out-md {output.md} > {log} 2>&1"


rule recovery:
    """How well the pseudo-attributes recover the planted parts, per seed and K (sources with ground truth)."""
    input:
        recovery_inputs,
    output:
        csv=report(
            "results/{dataset}/tables/recovery.csv",
            caption="../report/recovery.rst",
            category="Pseudo-attributes",
            subcategory="{dataset}",
        ),
        md="results/{dataset}/tables/recovery.md",
    log:
        "results/{dataset}/logs/recovery.log",
    benchmark:
        "results/{dataset}/benchmarks/recovery.tsv"
    conda:
        "../envs/torch.yaml"
    params:
        flags=recovery_flags,
    shell:
        "python -m lpa.recovery {params.flags} --out-csv {output.csv} --out-md {output.md} > {log} 2>&1"


rule figures:
    """Retrieval grid of rare-class queries by their dominant pseudo-attribute; frequency profiles."""
    input:
        scores=run_path("attributes/K{K}/image_scores.parquet"),
        balance=run_path("attributes/K{K}/balance.json"),
        split="results/{dataset}/data/split.parquet",
        counts="results/{dataset}/data/class_counts.csv",
    output:
        retrieval=report(
            run_path("figures/K{K}/retrieval.png"),
            caption="../report/retrieval.rst",
            category="Pseudo-attributes",
            subcategory="{dataset}",
        ),
        frequencies=report(
            run_path("figures/K{K}/attribute_frequencies.png"),
            caption="../report/frequencies.rst",
            category="Pseudo-attributes",
            subcategory="{dataset}",
        ),
    log:
        logged("logs", "figures/K{K}.log"),
    benchmark:
        logged("benchmarks", "figures/K{K}.tsv")
    conda:
        "../envs/torch.yaml"
    shell:
        "python -m lpa.figures --scores {input.scores} --balance {input.balance} --split {input.split}"
        " --counts {input.counts} --out-retrieval {output.retrieval}"
        " --out-frequencies {output.frequencies} > {log} 2>&1"


rule curves:
    """Training curves of one run: each loss term, train top-1 and lr against epoch."""
    input:
        training_metrics,
    output:
        report(
            run_path("figures/training/{model}.png"),
            caption="../report/curves.rst",
            category="Training curves",
            subcategory="{dataset}",
            labels={"seed": "{seed}", "model": "{model}"},
        ),
    log:
        logged("logs", "figures/training/{model}.log"),
    benchmark:
        logged("benchmarks", "figures/training/{model}.tsv")
    conda:
        "../envs/torch.yaml"
    shell:
        "python -m lpa.curves --metrics {input} --title '{wildcards.dataset}, seed {wildcards.seed}, {wildcards.model}'"
        " --out {output} > {log} 2>&1"


rule paper_table:
    """The paper's table for this config's benchmark: our numbers beside the reported ones."""
    input:
        paper_table_inputs,
    output:
        md="results/paper/{table}.md",
        csv=report(
            "results/paper/{table}.csv",
            caption="../report/paper.rst",
            category="Paper tables",
        ),
    log:
        "results/paper/logs/{table}.log",
    benchmark:
        "results/paper/benchmarks/{table}.tsv"
    conda:
        "../envs/torch.yaml"
    params:
        flags=paper_table_flags,
    shell:
        "python -m lpa.paper --table {wildcards.table} {params.flags}"
        " --out-md {output.md} --out-csv {output.csv} > {log} 2>&1"
