"""The report's tables: which evaluations each table gathers, and how they are paired.

Paths are relative to the workflow's working directory, as the rules write them.
"""

from __future__ import annotations

import shlex

from lpa.planning.runs import lpa_controls, lpa_runs


def evaluations(config: dict, dataset: str, model: str, name: str, stage: str = "evaluate") -> list[str]:
    """The evaluation file ``name`` of one model, for every seed (stage ``evaluate_val``: on the val split)."""
    return [f"results/{dataset}/seed{s}/{stage}/{model}/{name}" for s in config["seeds"]]


def table_models(config: dict) -> dict[str, str]:
    """The accuracy table's rows: label -> model (LPA is the config's first run)."""
    return {"CE": "ce", "PaCo": "paco", "LPA": f"lpa_{lpa_runs(config)[0]}"}


def table_inputs(config: dict, dataset: str) -> dict[str, list[str]]:
    """Every seed's evaluation of the table's models, keyed summary_<model> / per_class_<model>."""
    return {
        f"{kind}_{model}": evaluations(config, dataset, model, name)
        for model in table_models(config).values()
        for kind, name in (("summary", "summary.json"), ("per_class", "per_class.csv"))
    }


def table_flags(config: dict, dataset: str) -> str:
    parts = []
    for label, model in table_models(config).items():
        parts += [f"--summary {label}={p}" for p in evaluations(config, dataset, model, "summary.json")]
        parts += [f"--per-class {label}={p}" for p in evaluations(config, dataset, model, "per_class.csv")]
    return " ".join(parts + ["--pair LPA=PaCo", "--pair PaCo=CE"])


def ablation_models(config: dict) -> dict[str, str]:
    """The ablation's rows: PaCo (no fine-tuning) and every LPA run, named as in their paths."""
    return {"PaCo": "paco", **{f"LPA_{run}": f"lpa_{run}" for run in lpa_runs(config)}}


def class_attribute_files(config: dict, dataset: str) -> dict[str, list[str]]:
    """Every seed's class_attributes.parquet of each K (for the positive-weight diagnostic)."""
    return {
        f"K{k}": [f"results/{dataset}/seed{s}/attributes/K{k}/class_attributes.parquet" for s in config["seeds"]]
        for k in config["kmeans"]["K"]
    }


def ablation_inputs(config: dict, dataset: str, stage: str = "evaluate") -> list[str]:
    summaries = [
        p for m in ablation_models(config).values() for p in evaluations(config, dataset, m, "summary.json", stage)
    ]
    attributes = [p for paths in class_attribute_files(config, dataset).values() for p in paths]
    return summaries + attributes + [f"results/{dataset}/data/class_counts.csv"]


def ablation_flags(config: dict, dataset: str, stage: str = "evaluate") -> str:
    """Every run against PaCo, and each attribute run against its controls (paired over seeds)."""
    runs = lpa_runs(config)
    summaries = [
        f"--summary {label}={p}"
        for label, m in ablation_models(config).items()
        for p in evaluations(config, dataset, m, "summary.json", stage)
    ]
    pairs = [f"--pair LPA_{run}=PaCo" for run in runs]
    pairs += [f"--pair LPA_{run}=LPA_{c}" for run in runs for c in lpa_controls(run, runs)]
    weights = [f"--weights {k}={p}" for k, paths in class_attribute_files(config, dataset).items() for p in paths]
    weights += [
        f"--counts results/{dataset}/data/class_counts.csv",
        f"--batch-size {config['finetune']['batch_size']}",
        "--similarity " + " ".join(config["finetune"]["similarity"]),
    ]
    return " ".join(summaries + pairs + weights)


def selection_inputs(config: dict, dataset: str) -> list[str]:
    """Every seed's val and test summary of every LPA run (the selection's candidates)."""
    return [p for run in lpa_runs(config) for stage in ("evaluate_val", "evaluate")
            for p in evaluations(config, dataset, f"lpa_{run}", "summary.json", stage)]  # fmt: skip


def selection_flags(config: dict, dataset: str) -> str:
    return " ".join(
        f"--{flag} {run}={p}"
        for run in lpa_runs(config)
        for flag, stage in (("val", "evaluate_val"), ("test", "evaluate"))
        for p in evaluations(config, dataset, f"lpa_{run}", "summary.json", stage)
    )


def recovery_files(config: dict, dataset: str) -> dict[str, str]:
    """Every seed's and K's recovery.json of a dataset, by run name (seed<s>_K<K>)."""
    return {
        f"seed{s}_K{k}": f"results/{dataset}/seed{s}/attributes/K{k}/recovery.json"
        for s in config["seeds"]
        for k in config["kmeans"]["K"]
    }


def recovery_flags(config: dict, dataset: str) -> str:
    return " ".join(f"--recovery {n}={p}" for n, p in recovery_files(config, dataset).items())


def paper_column(config: dict, dataset: str) -> str:
    """The column of the paper's table a dataset fills: its imbalance factor (Table 1) or all."""
    if config["paper_table"] == "table1":
        return f"{config['datasets'][dataset]['imbalance_factor']:g}"
    return "all"


def paper_results(config: dict) -> list[tuple[str, str, str]]:
    """(method, column, summary path) of every seed of PaCo and the primary LPA run, per dataset."""
    primary = f"lpa_{lpa_runs(config)[0]}"
    return [
        (label, paper_column(config, d), f"results/{d}/seed{s}/evaluate/{model}/summary.json")
        for d in config["datasets"]
        for label, model in (("PaCo", "paco"), ("LPA", primary))
        for s in config["seeds"]
    ]


def paper_table_flags(config: dict) -> str:
    results = " ".join(f"--result {m} {c} {p}" for m, c, p in paper_results(config))
    notes = " ".join(f"--note {shlex.quote(d['note'])}" for d in config["datasets"].values() if d["note"])
    return f"{results} {notes}"
