# The functions these rules call: common.smk, section "features.smk, kmeans.smk, attributes.smk".


rule attributes:
    """Per-image pseudo-attribute scores s(x) and class vectors a(y) of every reading, the balance
    summary, and the recovery metrics where the source knows its parts."""
    input:
        features=feature_shards,
        centroids=run_path("kmeans/K{K}/centroids.npy"),
        stats=run_path("kmeans/K{K}/stats.json"),
        counts="results/{dataset}/data/class_counts.csv",
        split="results/{dataset}/data/split.parquet",
    output:
        scores=run_path("attributes/K{K}/image_scores.parquet"),
        classes=run_path("attributes/K{K}/class_attributes.parquet"),
        balance=run_path("attributes/K{K}/balance.json"),
        recovery=run_path("attributes/K{K}/recovery.json"),
    log:
        logged("logs", "attributes/K{K}.log"),
    benchmark:
        logged("benchmarks", "attributes/K{K}.tsv")
    conda:
        "../envs/faiss.yaml"
    threads: config["execution"]["threads"]
    resources:
        mem_mb=attributes_mem_mb,
        runtime=attributes_runtime,
    params:
        batch_size=config["finetune"]["batch_size"],
        background_share=config["attributes"]["background_share"],
    shell:
        "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads}"
        " python -m lpa.attributes --features {input.features} --centroids {input.centroids}"
        " --kmeans-stats {input.stats} --counts {input.counts} --out-scores {output.scores}"
        " --out-classes {output.classes} --out-balance {output.balance}"
        " --split {input.split} --out-recovery {output.recovery}"
        " --batch-size {params.batch_size} --background-share {params.background_share} > {log} 2>&1"
