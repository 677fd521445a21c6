# The functions these rules call: common.smk, section "baseline.smk and finetune.smk".


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
    retries: TRAIN_RETRIES
    conda:
        "../envs/torch.yaml"
    threads: config["execution"]["threads"]
    resources:
        gpu=gpus(TRAIN_GPUS),
        gres=gres(TRAIN_GPUS),
        mem_mb=growing(config["execution"]["mem_mb"]),
        runtime=config["execution"]["runtime"],
        attempt=lambda wildcards, attempt: attempt,
    params:
        flags=lambda wc: train_flags(wc, wc.method, "baseline"),
        out_dir=lambda wc, output: os.path.dirname(output.model),
        launcher=train_launcher(),
    shell:
        "{params.launcher} -m lpa.train {params.flags} --split {input.split} --counts {input.counts}"
        " --out-dir {params.out_dir} --threads {threads} --attempt {resources.attempt} > {log} 2>&1"


rule import_paco:
    """The PaCo baseline from a checkpoint saved by PaCo's own code (datasets.<name>.paco_checkpoint)."""
    input:
        checkpoint=lambda wc: dataset_cfg(wc)["paco_checkpoint"],
        split="results/{dataset}/data/split.parquet",
    output:
        model=run_path("baseline/paco_imported/model.pt"),
        provenance=run_path("baseline/paco_imported/provenance.json"),
    log:
        logged("logs", "baseline/paco_imported.log"),
    benchmark:
        logged("benchmarks", "baseline/paco_imported.tsv")
    conda:
        "../envs/torch.yaml"
    params:
        flags=lambda wc: train_flags(wc, "paco", "baseline"),
    shell:
        "python -m lpa.import_paco {params.flags} --paco-checkpoint {input.checkpoint} --split {input.split}"
        " --out-model {output.model} --out-provenance {output.provenance} > {log} 2>&1"
