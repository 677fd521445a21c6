scattergather:
    features=config["features"]["shards"],


rule features:
    """Dense local features of one shard of the training images, from the PaCo encoder."""
    input:
        model=paco_model,
        split="results/{dataset}/data/split.parquet",
    output:
        run_path("features/shard-{scatteritem}.parquet"),
    log:
        logged("logs", "features/{scatteritem}.log"),
    benchmark:
        logged("benchmarks", "features/{scatteritem}.tsv")
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        gpu=min(config["execution"]["gpus"], 1),  # one GPU is enough here
        mem_mb=config["execution"]["mem_mb"],
        runtime=config["execution"]["runtime"],
    params:
        batch_size=config["features"]["batch_size"],
        dtype=config["features"]["dtype"],
        device=config["execution"]["device"],
    shell:
        "python -m lpa.features --checkpoint {input.model} --split {input.split} --shard {wildcards.scatteritem}"
        " --batch-size {params.batch_size} --dtype {params.dtype}"
        " --device {params.device} --threads {threads} --out {output} > {log} 2>&1"
