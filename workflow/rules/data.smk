# The functions these rules call: common.smk, section "data.smk".


rule verify:
    """List-file datasets: sizes against the known ones, SHA-256 of each list, every image readable."""
    output:
        "results/{dataset}/data/verify.json",
    log:
        "results/{dataset}/logs/verify.log",
    benchmark:
        "results/{dataset}/benchmarks/verify.tsv"
    conda:
        "../envs/torch.yaml"
    threads: max(4, config["execution"]["threads"])
    resources:
        runtime=verify_runtime,
        mem_mb=growing(2000),
    params:
        flags=verify_flags,
    shell:
        "python -m lpa.verify {params.flags} --workers {threads} --out {output} > {log} 2>&1"


rule data:
    """The long-tailed split (Parquet), per-class training counts with shot groups, provenance."""
    input:
        verify_report,
    output:
        split="results/{dataset}/data/split.parquet",
        counts="results/{dataset}/data/class_counts.csv",
        train_ids="results/{dataset}/data/train_ids.txt",
        provenance="results/{dataset}/data/provenance.json",
    log:
        "results/{dataset}/logs/data.log",
    benchmark:
        "results/{dataset}/benchmarks/data.tsv"
    conda:
        "../envs/torch.yaml"
    params:
        flags=data_flags,
    shell:
        "python -m lpa.data {params.flags} --out-split {output.split} --out-counts {output.counts}"
        " --out-train-ids {output.train_ids} --out-provenance {output.provenance} > {log} 2>&1"
