"""What the workflow makes: the models of each dataset, where each model's checkpoint lies, and the targets of
``rule all``."""

from __future__ import annotations

from lpa.planning.runs import lpa_runs
from lpa.sources import PLANTED_SOURCES

TABLES = ("accuracy.csv", "accuracy.md", "per_class_accuracy.png", "lpa_ablation.csv")


def run_dir(dataset: str, seed: int | str) -> str:
    """Per-run outputs: results/<dataset>/seed<seed>."""
    return f"results/{dataset}/seed{seed}"


def paco_model(config: dict, dataset: str, seed: int | str) -> str:
    """The PaCo baseline: imported from datasets.<name>.paco_checkpoint when set, else trained."""
    kind = "paco_imported" if config["datasets"][dataset]["paco_checkpoint"] else "paco"
    return f"{run_dir(dataset, seed)}/baseline/{kind}/model.pt"


def model_checkpoint(config: dict, dataset: str, seed: int | str, model: str) -> str:
    """The model.pt of ``model`` (ce, paco or lpa_<run>) that evaluate/{model} scores."""
    if model == "paco":
        return paco_model(config, dataset, seed)
    if model == "ce":
        return f"{run_dir(dataset, seed)}/baseline/ce/model.pt"
    return f"{run_dir(dataset, seed)}/finetune/{model.removeprefix('lpa_')}/model.pt"


def trained_models(config: dict, dataset: str) -> list[str]:
    """Every model of a dataset trained by this workflow: ce, paco (unless imported), the LPA runs."""
    imported = config["datasets"][dataset]["paco_checkpoint"]
    return ["ce"] + ([] if imported else ["paco"]) + [f"lpa_{run}" for run in lpa_runs(config)]


def has_ground_truth(config: dict, dataset: str) -> bool:
    """Sources that know which part lies where: their attributes stage measures recovery."""
    return config["datasets"][dataset]["source"] in PLANTED_SOURCES


def all_targets(config: dict) -> list[str]:
    datasets, seeds, ks = list(config["datasets"]), config["seeds"], config["kmeans"]["K"]
    targets = [f"results/{d}/tables/{name}" for d in datasets for name in TABLES]
    targets += [f"results/{d}/data/provenance.json" for d in datasets]
    targets += [f"{run_dir(d, s)}/attributes/K{k}/balance.json" for d in datasets for s in seeds for k in ks]
    targets += [f"{run_dir(d, seeds[0])}/figures/K{ks[0]}/retrieval.png" for d in datasets]
    targets += [
        f"{run_dir(d, s)}/figures/training/{m}.png" for d in datasets for s in seeds for m in trained_models(config, d)
    ]
    validated = [d for d in datasets if config["datasets"][d]["validate"]]
    targets += [f"results/{d}/tables/{name}" for d in validated for name in ("lpa_ablation_val.csv", "selected.csv")]
    targets += [f"results/{d}/tables/recovery.csv" for d in datasets if has_ground_truth(config, d)]
    if config["paper_table"] != "none":
        targets.append(f"results/paper/{config['paper_table']}.md")
    return targets
