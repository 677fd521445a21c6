"""Stage 4, kmeans: K prototypes (the pseudo-attributes) of the local features.

Backends: faiss (on the GPU when the installed faiss has GPU support, else the CPU) and a
PyTorch implementation for GPUs where faiss-gpu cannot be installed. Runs in its own process;
the faiss backend never loads torch (faiss and torch can clash over OpenMP).
It clusters the samples the features stage drew (:mod:`lpa.clustering.sampling`): every local
feature up to ``max_points``, above it a seeded subsample balanced across classes, so that tail
classes are represented; it decodes those and nothing else. Writes ``centroids.npy``
(K, D) float32 and ``stats.json``; fails, writing neither, if the clusters collapse.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from lpa.io.artifacts import iter_shard_batches, open_features, read_sample_meta
from lpa.io.cli import add_dataclass_arguments, dataclass_from_args, run_main, setup_logging
from lpa.io.files import atomic_path, write_json

log = logging.getLogger("lpa.kmeans")


@dataclass(frozen=True)
class KMeansConfig:
    k: int = 16
    niter: int = 25
    nredo: int = 1
    seed: int = 0
    normalize: bool = True  # cluster L2-normalised local features (spherical K-means)
    max_points: int = 1_000_000  # point budget; above it, a class-balanced subsample
    evidence_share: float = 1.0  # the sample's positions: each image's top share by class evidence
    backend: str = "auto"  # auto | faiss (GPU when faiss has one) | torch (CUDA when visible)
    max_cluster_fraction: float = 0.5  # fail if one cluster holds more of the points than this
    max_empty_fraction: float = 0.1  # fail if more of the K clusters than this are empty

    def __post_init__(self) -> None:
        if self.k < 2:
            raise ValueError(f"k must be >= 2, got {self.k}")
        if self.backend not in ("auto", "faiss", "torch"):
            raise ValueError(f"backend must be auto, faiss or torch, got {self.backend!r}")


# Sample rows read at a time: the local features of a shard batch (128 images of 7 x 7). Reading
# and filling 348 MB of samples (2,000 images of 7x7x2048) took 9.5 s at 128 rows a batch and
# 6.9 s at this size (medians of 3 alternating runs, each in a fresh process).
SAMPLE_BATCH_ROWS = 128 * 49


def load_points(paths: Sequence[str | Path], cfg: KMeansConfig) -> tuple[np.ndarray, dict]:
    """The (n, D) float32 points to cluster, read from the features stage's samples, and a summary of
    how they were chosen. A sample drawn for another ``max_points``, seed or ``evidence_share`` is
    an error naming it."""
    paths, (_, _, dim) = open_features(paths)
    metas = [read_sample_meta(p) for p in paths]
    for path, meta in zip(paths, metas):
        drawn = (meta["max_points"], meta["seed"], meta.get("evidence_share", 1.0))
        if drawn != (cfg.max_points, cfg.seed, cfg.evidence_share):
            raise ValueError(f"{path} was drawn for max_points, seed, evidence_share {drawn}, K-means is set to "
                             f"{(cfg.max_points, cfg.seed, cfg.evidence_share)}: rerun the features stage")  # fmt: skip
    maps = {tuple(m["feature_map"]) for m in metas}
    if len(maps) != 1:
        raise ValueError(f"K-means samples disagree on the feature map: {sorted(maps)}")
    # filled in place: the points are held once (max_points x D float32), never concatenated
    points = np.empty((sum(pq.ParquetFile(p).metadata.num_rows for p in paths), dim), np.float32)
    filled, labels = 0, []
    tic = time.perf_counter()
    for _, _, batch_labels, local in iter_shard_batches(paths, batch_rows=SAMPLE_BATCH_ROWS):
        points[filled : filled + len(local)] = local.reshape(len(local), dim)
        filled += len(local)
        labels.append(batch_labels)
    per_class = np.unique(np.concatenate(labels) if labels else np.zeros(0, int), return_counts=True)[1]
    local_features = sum(m["local_features"] for m in metas)
    summary = {
        "images": sum(m["images"] for m in metas),
        "local_features": local_features,
        "points_used": int(len(points)),
        "subsampled": bool(len(points) < local_features),
        "points_per_class_min": int(per_class.min()) if len(per_class) else 0,
        "points_per_class_max": int(per_class.max()) if len(per_class) else 0,
        "feature_map": list(maps.pop()),
        "evidence_share": cfg.evidence_share,
        # the samples alone are decoded: their rate against the disk's
        "read_bytes": int(sum(p.stat().st_size for p in paths)),
        "read_seconds": time.perf_counter() - tic,
    }
    return points, summary


def normalize_rows(points: np.ndarray, block: int = 8192) -> None:
    """L2-normalise the rows of a float32 array in place, ``block`` rows at a time.

    Block by block, so no temporary as large as the points is made (``np.linalg.norm`` over
    all rows at once allocates one: +1,955 MiB on 1,953 MiB of points). Each row's norm is
    ``np.linalg.norm``'s, bit for bit, whatever the block.
    """
    for start in range(0, len(points), block):
        rows = points[start : start + block]
        rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def faiss_gpus() -> int:
    import faiss

    return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0


def torch_cuda_available() -> bool:
    """Asked in a child process, so that torch is never loaded beside faiss here."""
    probe = "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"
    try:
        return subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def choose_backend(backend: str) -> str:
    """auto: faiss when it has a GPU, else the torch backend when CUDA is visible, else faiss on the CPU."""
    if backend != "auto":
        return backend
    if faiss_gpus() > 0:
        return "faiss"
    return "torch" if torch_cuda_available() else "faiss"


def faiss_kmeans(points: np.ndarray, cfg: KMeansConfig) -> tuple[np.ndarray, np.ndarray, list[float], str, dict]:
    """faiss.Kmeans on every GPU it sees, else on the CPU.

    The last value says which faiss ran where (``stats.json``'s ``faiss``): the build's GPU
    support, the GPUs it saw, and the device used, so a GPU run that fell back to the CPU (a
    faiss-cpu wheel over faiss-gpu, or no device visible to the job) shows in the results.
    """
    import faiss

    n, dim = points.shape
    gpus = faiss_gpus()
    gpu = gpus > 0
    km = faiss.Kmeans(
        dim,
        cfg.k,
        niter=cfg.niter,
        nredo=cfg.nredo,
        seed=cfg.seed,
        spherical=cfg.normalize,
        gpu=gpu,
        verbose=False,
        # our explicit subsample is the one used: no silent faiss subsampling on top
        max_points_per_centroid=max(n // cfg.k + 1, 256),
        min_points_per_centroid=1,
    )
    km.train(points)
    _, assign = km.index.search(points, 1)
    used = "gpu" if gpu else "cpu"
    record = {
        "version": faiss.__version__,
        "gpu_build": hasattr(faiss, "StandardGpuResources"),
        "gpus_visible": int(gpus),
        "device": used,
    }
    trace = [float(x) for x in km.obj]  # km.obj concatenates the iterations of every restart
    return km.centroids.astype(np.float32), assign[:, 0], trace, f"faiss {faiss.__version__} {used}", record


def objective(
    points: np.ndarray, centroids: np.ndarray, assign: np.ndarray, spherical: bool, block: int = 8192
) -> float:
    """Sum of cosine similarities (spherical) or of squared distances, of points to their centroids.

    Computed ``block`` points at a time, so it needs no second copy of the points.
    """
    total = 0.0
    for start in range(0, len(points), block):
        x, chosen = points[start : start + block], centroids[assign[start : start + block]]
        if spherical:
            total += float(np.einsum("nd,nd->", x, chosen, dtype=np.float64))
        else:
            total += float(((x.astype(np.float64) - chosen) ** 2).sum())
    return total


def fit(points: np.ndarray, cfg: KMeansConfig) -> tuple[np.ndarray, np.ndarray, dict]:
    """Cluster (n, D) points; returns centroids (K, D), assignments (n,) and statistics.

    With ``cfg.normalize`` a float32 ``points`` is L2-normalised in place (no second copy).
    """
    points = np.ascontiguousarray(points, dtype=np.float32)  # a copy only if not float32 already
    if cfg.normalize:  # in place: the caller's float32 points are not needed un-normalised
        normalize_rows(points)
    n, dim = points.shape
    if n < cfg.k:
        raise ValueError(f"k={cfg.k} prototypes need at least {cfg.k} points, got {n}")
    backend = choose_backend(cfg.backend)
    tic = time.perf_counter()
    faiss_record = None  # the torch backend runs no faiss
    if backend == "faiss":
        centroids, assign, trace, device, faiss_record = faiss_kmeans(points, cfg)
    else:
        try:
            from lpa.clustering.torch_kmeans import torch_kmeans
        except ImportError as err:
            raise ValueError(f"kmeans backend torch needs PyTorch in this environment: {err}") from None
        centroids, assign, trace, device = torch_kmeans(points, cfg.k, cfg.niter, cfg.nredo, cfg.seed, cfg.normalize)
    seconds = time.perf_counter() - tic
    sizes = np.bincount(assign, minlength=cfg.k)
    stats = {
        "backend": backend,
        "device": device,
        "faiss": faiss_record,
        "points": int(n),
        "dim": int(dim),
        "k": cfg.k,
        "iterations": len(trace),  # over all restarts
        "objective": objective(points, centroids, assign, cfg.normalize),
        "objective_metric": "sum of cosine similarities" if cfg.normalize else "sum of squared L2 distances",
        "objective_trace": trace,
        "cluster_sizes": sizes.tolist(),
        "largest_cluster_fraction": float(sizes.max() / n),
        "empty_clusters": int((sizes == 0).sum()),
        "seconds": seconds,
    }
    return centroids, assign, stats


def check_collapse(stats: dict, cfg: KMeansConfig) -> None:
    if stats["largest_cluster_fraction"] > cfg.max_cluster_fraction:
        raise ValueError(
            f"K-means collapsed: one cluster holds {stats['largest_cluster_fraction']:.1%} of the points "
            f"(max_cluster_fraction={cfg.max_cluster_fraction}); cluster sizes {stats['cluster_sizes']}"
        )
    if stats["empty_clusters"] > cfg.max_empty_fraction * cfg.k:
        raise ValueError(
            f"K-means collapsed: {stats['empty_clusters']} of {cfg.k} clusters are empty "
            f"(max_empty_fraction={cfg.max_empty_fraction}); lower k or check the features"
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_dataclass_arguments(parser, KMeansConfig)
    parser.add_argument("--features", nargs="+", required=True, help="feature shards (Parquet)")
    parser.add_argument("--out-centroids", required=True)
    parser.add_argument("--out-stats", required=True)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    setup_logging()
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    cfg = dataclass_from_args(KMeansConfig, args)
    points, sampling = load_points(args.features, cfg)
    log.info("sampling %s", sampling)
    centroids, _, stats = fit(points, cfg)
    stats = {"config": asdict(cfg), "sampling": sampling, **stats}
    log.info(
        "K=%d on %d points (%s): %d iterations in %.1fs, objective %.4g, cluster sizes %s",
        cfg.k,
        stats["points"],
        stats["backend"],
        stats["iterations"],
        stats["seconds"],
        stats["objective"],
        stats["cluster_sizes"],
    )
    check_collapse(stats, cfg)
    with atomic_path(args.out_centroids) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, centroids)
    write_json(args.out_stats, stats)


if __name__ == "__main__":
    run_main(main)
