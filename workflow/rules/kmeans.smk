# The functions these rules call: common.smk, section "features.smk, kmeans.smk, attributes.smk".


rule kmeans:
    """K pseudo-attribute prototypes of the local features the features stage sampled (faiss; GPU
    when available)."""
    input:
        feature_samples,
    output:
        centroids=run_path("kmeans/K{K}/centroids.npy"),
        stats=run_path("kmeans/K{K}/stats.json"),
    log:
        logged("logs", "kmeans/K{K}.log"),
    benchmark:
        logged("benchmarks", "kmeans/K{K}.tsv")
    conda:
        "../envs/faiss.yaml"
    threads: config["execution"]["threads"]
    resources:
        gpu=gpus(ONE_GPU),
        gres=gres(ONE_GPU),
        mem_mb=kmeans_mem_mb,
        runtime=growing(config["execution"]["runtime"]),
    params:
        flags=lambda wc: cli_flags(
            {
                "k": int(wc.K),
                "seed": int(wc.seed),
                **{k: v for k, v in config["kmeans"].items() if k != "K"},
            }
        ),
    shell:
        "python -m lpa.kmeans {params.flags} --features {input} --threads {threads}"
        " --out-centroids {output.centroids} --out-stats {output.stats} > {log} 2>&1"
