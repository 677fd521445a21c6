rule baseline:
    """Train a baseline from scratch: plain cross-entropy (ce) or PaCo (paco)."""
    input:
        split="results/{dataset}/data/split.parquet",
        counts="results/{dataset}/data/class_counts.csv",
    output:
        model=run_path("baseline/{method}/model.pt"),
        metrics=run_path("baseline/{method}/metrics.jsonl"),
        config=run_path("baseline/{method}/config.json"),
    log:
        logged("logs", "baseline/{method}.log"),
    benchmark:
        logged("benchmarks", "baseline/{method}.tsv")
    conda:
        "../envs/torch.yaml"
    threads: config["execution"]["threads"]
    resources:
        gpu=config["execution"]["gpus"],
        mem_mb=config["execution"]["mem_mb"],
        runtime=config["execution"]["runtime"],
    params:
        flags=lambda wc: train_flags(wc, wc.method, "baseline"),
        out_dir=lambda wc, output: os.path.dirname(output.model),
        launcher=train_launcher(),
    shell:
        "{params.launcher} -m lpa.train {params.flags} --split {input.split} --counts {input.counts}"
        " --out-dir {params.out_dir} --threads {threads} > {log} 2>&1"
