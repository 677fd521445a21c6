# The functions these rules call: common.smk, section "features.smk, kmeans.smk, attributes.smk".


scattergather:
    features=config["features"]["shards"],


rule features:
    """Dense local features of one shard of the training images, from the PaCo encoder, and the
    shard's part of the local features K-means clusters."""
    input:
        model=paco_model,
        split="results/{dataset}/data/split.parquet",
    output:
        shard=run_path("features/shard-{scatteritem}.parquet"),
        sample=run_path("features/sample-{scatteritem}.parquet"),
    log:
        logged("logs", "features/{scatteritem}.log"),
    benchmark:
        logged("benchmarks", "features/{scatteritem}.tsv")
    conda:
        "../envs/torch.yaml"
    threads: config["execution"]["threads"]
    resources:
        gpu=gpus(ONE_GPU),
        gres=gres(ONE_GPU),
        mem_mb=growing(config["execution"]["mem_mb"]),
        runtime=growing(config["execution"]["runtime"]),
    params:
        dtype=config["features"]["dtype"],
        compression=config["features"]["compression"],
        sample_points=config["kmeans"]["max_points"],
        evidence_share=config["kmeans"]["evidence_share"],
        centre="--centre" if config["features"]["centre"] else "",
    shell:
        "python -m lpa.features --checkpoint {input.model} --split {input.split} --shard {wildcards.scatteritem}"
        " --dtype {params.dtype} --compression {params.compression} --threads {threads} --out {output.shard}"
        " --out-sample {output.sample} --sample-points {params.sample_points} --sample-seed {wildcards.seed}"
        " --evidence-share {params.evidence_share}"
        " {params.centre}"
        " > {log} 2>&1"
