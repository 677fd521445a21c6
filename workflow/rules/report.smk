rule tables:
    """Accuracy table (CE, PaCo, LPA; mean and std over seeds) and the per-class accuracy plot."""
    input:
        unpack(table_inputs),
    output:
        csv="results/{dataset}/tables/accuracy.csv",
        md="results/{dataset}/tables/accuracy.md",
        plot="results/{dataset}/tables/per_class_accuracy.png",
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
    """LPA over every configured K and alpha (alpha 0: PaCo fine-tuned on the same schedule)."""
    input:
        ablation_inputs,
    output:
        csv="results/{dataset}/tables/lpa_ablation.csv",
        md="results/{dataset}/tables/lpa_ablation.md",
    log:
        "results/{dataset}/logs/ablation.log",
    benchmark:
        "results/{dataset}/benchmarks/ablation.tsv"
    conda:
        "../envs/torch.yaml"
    params:
        flags=ablation_flags,
    shell:
        "python -m lpa.tables {params.flags} --out-csv {output.csv} --out-md {output.md} > {log} 2>&1"
