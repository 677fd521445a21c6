# The functions these rules call: common.smk, section "evaluate.smk".


rule evaluate:
    """Top-1 on the test split of one final model: overall, per shot group, per class."""
    input:
        model=model_checkpoint,
        split="results/{dataset}/data/split.parquet",
        counts="results/{dataset}/data/class_counts.csv",
    output:
        summary=run_path("evaluate/{model}/summary.json"),
        per_class=run_path("evaluate/{model}/per_class.csv"),
    log:
        logged("logs", "evaluate/{model}.log"),
    benchmark:
        logged("benchmarks", "evaluate/{model}.tsv")
    conda:
        "../envs/torch.yaml"
    threads: config["execution"]["threads"]
    resources:
        gpu=gpus(ONE_GPU),
        gres=gres(ONE_GPU),
        mem_mb=growing(config["execution"]["mem_mb"]),
        runtime=growing(config["execution"]["runtime"]),
    params:
        split="test",
    shell:
        "python -m lpa.evaluate --checkpoint {input.model} --split {input.split} --counts {input.counts}"
        " --threads {threads} --eval-split {params.split}"
        " --out-summary {output.summary} --out-per-class {output.per_class} > {log} 2>&1"


use rule evaluate as evaluate_val with:
    output:
        summary=run_path("evaluate_val/{model}/summary.json"),
        per_class=run_path("evaluate_val/{model}/per_class.csv"),
    log:
        logged("logs", "evaluate_val/{model}.log"),
    benchmark:
        logged("benchmarks", "evaluate_val/{model}.tsv")
    params:
        split="val",
