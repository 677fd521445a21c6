rule data:
    """The long-tailed split (Parquet) and per-class training counts with shot groups."""
    output:
        split="results/{dataset}/data/split.parquet",
        counts="results/{dataset}/data/class_counts.csv",
    log:
        "results/{dataset}/logs/data.log",
    benchmark:
        "results/{dataset}/benchmarks/data.tsv"
    conda:
        "../envs/torch.yaml"
    params:
        flags=lambda wc: cli_flags(
            {
                k: v
                for k, v in {**dataset_cfg(wc), **config["groups"]}.items()
                if k != "augment"
            }
        ),
    shell:
        "python -m lpa.data {params.flags} --out-split {output.split} --out-counts {output.counts} > {log} 2>&1"
