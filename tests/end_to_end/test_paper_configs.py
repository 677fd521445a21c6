"""The three benchmark configs, end to end on tiny data in their real formats, through the same rules."""

import copy
from pathlib import Path

import pandas as pd
import pytest
import yaml
from fakedata import write_cifar100, write_jpeg_lists
from snakemake_cli import REPO, planned_rules, snakemake

TINY_TRAINING = {
    "seeds": [0],
    "baseline": {"epochs": 1, "warmup_epochs": 0, "batch_size": 16},
    "finetune": {"epochs": [1], "batch_size": 16},
    "paco": {"queue_size": 32},
    "features": {"shards": 2, "batch_size": 64},
    "kmeans": {"K": [4], "niter": 5, "max_cluster_fraction": 0.95},  # a 1-epoch model on tiny data
    "execution": {"threads": 1, "gpus": 0, "num_workers": 0, "amp": False},
}


def merged(base: dict, patch: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in patch.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def tiny_config(name: str, data_patch: dict, extra: dict | None = None) -> dict:
    config = yaml.safe_load((REPO / "config" / f"{name}.yaml").read_text())
    config = merged(config, TINY_TRAINING | (extra or {}))
    for dataset in config["datasets"].values():
        dataset.update(data_patch)
    return config


def run_benchmark(tmp_path: Path, config: dict) -> Path:
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    snakemake(tmp_path, "--configfile", str(tmp_path / "tiny.yaml"))
    return tmp_path / "results"


@pytest.mark.parametrize("name", ["cifar100_lt", "imagenet_lt", "inat2018"])
def test_full_config_plans_every_cell_of_its_table(name):
    out = snakemake(REPO, "--dry-run", "--configfile", str(REPO / "config" / f"{name}.yaml"))
    assert {"data", "baseline", "features", "kmeans", "attributes", "finetune", "evaluate", "paper_table"} <= (
        planned_rules(out)
    )


def test_cifar100_lt_tiny(tmp_path):
    write_cifar100(tmp_path / "cifar", train_per_class=100, test_per_class=1)
    config = tiny_config(
        "cifar100_lt",
        {"root": str(tmp_path / "cifar"), "download": False},
        {"model": {"depth": 8, "widths": [4, 8, 8]}},
    )
    for dataset in config["datasets"].values():
        dataset["n_max"] = int(dataset["imbalance_factor"])  # every class keeps at least one image
    results = run_benchmark(tmp_path, config)
    table = pd.read_csv(results / "paper" / "table1.csv").set_index("method")
    assert list(table.columns) == ["100", "50", "10"]
    assert float(table.loc["PaCo (paper)", "100"]) == 52.0
    assert table.loc["LPA - PaCo (ours, paired)", "100"].endswith("(1 seed)")
    assert (table.loc[["PaCo (ours)", "LPA (ours)"]] != "not run").all().all()
    provenance = yaml.safe_load((results / "cifar100_lt_if100" / "data" / "provenance.json").read_text())
    kept = [int(100 * 0.01 ** (c / 99)) for c in range(100)]
    # val: 20 of each class's unused training images, or all of them (class 0 keeps all 100)
    assert provenance["split_sizes"] == {"train": sum(kept), "val": sum(min(20, 100 - n) for n in kept), "test": 100}
    picks = pd.read_csv(results / "cifar100_lt_if100" / "tables" / "selected.csv")
    assert picks["family"].tolist() == ["LPA", "label", "alpha0"]


@pytest.mark.parametrize(
    "name,lists,expected,table",
    [
        (
            "imagenet_lt",
            {
                "ImageNet_LT_train.txt": [12, 6, 3, 2, 1],
                "ImageNet_LT_val.txt": [1] * 5,
                "ImageNet_LT_test.txt": [2] * 5,
            },
            {"train": 24, "val": 5, "test": 10, "classes": 5, "max_per_class": 12, "min_per_class": 1},
            "table3",
        ),
        (
            "inat2018",
            {"iNaturalist18_train.txt": [10, 5, 3, 1], "iNaturalist18_val.txt": [2] * 4},
            {"train": 19, "test": 8, "classes": 4},
            "table2",
        ),
    ],
)
def test_list_file_benchmark_tiny(tmp_path, name, lists, expected, table):
    root = tmp_path / "data"
    write_jpeg_lists(root, lists, size=72)
    config = tiny_config(name, {"root": str(root), "expected": expected, "image_size": 64})
    results = run_benchmark(tmp_path, config)
    frame = pd.read_csv(results / "paper" / f"{table}.csv").set_index("method")
    assert frame.loc["LPA (ours)", "all"] not in ("not run", "n/a")
    assert (frame.loc["LPA (ours)"] != "not run").all()
    verify = yaml.safe_load((results / name / "data" / "verify.json").read_text())
    assert verify["lists"]["train"]["images"] == expected["train"] and len(verify["lists"]["train"]["sha256"]) == 64
    if name == "inat2018":
        assert "official validation set" in (results / "paper" / "table2.md").read_text()


def test_verify_rule_stops_the_workflow_on_wrong_counts(tmp_path):
    root = tmp_path / "data"
    write_jpeg_lists(root, {"iNaturalist18_train.txt": [3, 2], "iNaturalist18_val.txt": [1, 1]}, size=16)
    config = tiny_config("inat2018", {"root": str(root), "expected": {"train": 437513, "test": 2, "classes": 2}})
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    out = snakemake(tmp_path, "--configfile", str(tmp_path / "bad.yaml"), check=False)
    assert "Error in rule verify" in out
    log = (tmp_path / "results" / "inat2018" / "logs" / "verify.log").read_text()
    assert "5 images, expected 437513" in log
    assert not (tmp_path / "results" / "inat2018" / "data" / "verify.json").exists()
