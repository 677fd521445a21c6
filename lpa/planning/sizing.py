"""How big each job's request is (memory, run time), from measured per-item costs."""

from __future__ import annotations

from lpa.models.dims import feature_dim
from lpa.sources.longtail import long_tailed_counts

SOURCE_CLASSES = {"digits": 10, "cifar100": 100}  # the parts source says its own (num_classes)


def doubled(value: float, attempt: int) -> int:
    """A resource doubled on every retry (Snakemake's attempt counts from 1)."""
    return int(value) * 2 ** (attempt - 1)


def kmeans_mem_mb(config: dict, attempt: int) -> int:
    """K-means holds its ``kmeans.max_points`` x D float32 points once (normalised in place), plus room
    for one feature shard batch and the libraries; doubled on every retry."""
    model = config["model"]
    points_mb = config["kmeans"]["max_points"] * feature_dim(model["arch"], model["widths"]) * 4 / 2**20
    return doubled(max(config["execution"]["mem_mb"], 1.25 * points_mb + 2000), attempt)


def verify_runtime(expected: dict, threads: int, attempt: int) -> int:
    """Minutes to open every listed image: 10 + the listed images at 25 images/s per thread."""
    images = sum(expected.get(k) or 0 for k in ("train", "val", "test"))
    return doubled(10 + images / (25 * threads * 60), attempt)


def train_images(dataset: dict) -> int | None:
    """Training images of a dataset's config, as the data stage will make them; None where unknown
    before it runs (a list-file dataset without ``expected.train``)."""
    if dataset["source"] == "listfile":
        return dataset["expected"].get("train")
    classes = dataset["num_classes"] if dataset["source"] == "parts" else SOURCE_CLASSES[dataset["source"]]
    return sum(long_tailed_counts(dataset["n_max"], dataset["imbalance_factor"], classes))
