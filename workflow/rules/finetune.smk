# The functions these rules call: common.smk, section "baseline.smk and finetune.smk".


rule finetune:
    """LPA: fine-tune the PaCo model with L_PaCo + alpha * L_SupCon(z, a(y)) (or a control: label, alpha 0)."""
    input:
        init=paco_model,
        attributes=run_path("attributes/K{K}/class_attributes.parquet"),
        scores=run_path("attributes/K{K}/image_scores.parquet"),
        split="results/{dataset}/data/split.parquet",
        counts="results/{dataset}/data/class_counts.csv",
    output:
        model=run_path("finetune/K{K}_{setting}/model.pt"),
        metrics=run_path("finetune/K{K}_{setting}/metrics.jsonl"),
        config=run_path("finetune/K{K}_{setting}/config.json"),
    log:
        logged(
            "logs",
            "finetune/K{K}_{setting}.log",
        ),
    benchmark:
        logged(
            "benchmarks",
            "finetune/K{K}_{setting}.tsv",
        )
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
        flags=lambda wc: train_flags(wc, "lpa", "finetune"),
        out_dir=lambda wc, output: os.path.dirname(output.model),
        launcher=train_launcher(),
    shell:
        "{params.launcher} -m lpa.train {params.flags} --init-from {input.init} --attributes {input.attributes}"
        " --image-scores {input.scores}"
        " --split {input.split} --counts {input.counts} --out-dir {params.out_dir} --threads {threads} --attempt {resources.attempt} > {log} 2>&1"
