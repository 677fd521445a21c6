"""How big each job's request is (memory, run time), from measured per-item costs."""

from __future__ import annotations

from lpa.models.dims import feature_dim


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
