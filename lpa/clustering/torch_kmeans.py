"""Lloyd's K-means in PyTorch: the GPU backend for machines where faiss-gpu cannot be installed.

Same contract as the faiss backend: seeded random initial centroids drawn from the points,
``niter`` iterations, the best of ``nredo`` restarts, spherical (cosine) or squared-L2
objective. An empty cluster is re-seeded with the point worst served by its centroid.
"""

from __future__ import annotations

import numpy as np
import torch


def _scores(x: torch.Tensor, centroids: torch.Tensor, spherical: bool) -> torch.Tensor:
    """(n, K) scores to maximise: cosine similarity, or minus squared L2 distance."""
    if spherical:
        return x @ centroids.T
    return 2 * x @ centroids.T - (centroids * centroids).sum(1)[None, :] - (x * x).sum(1, keepdim=True)


def _assign(x: torch.Tensor, centroids: torch.Tensor, spherical: bool, chunk: int = 65536):
    """Best centroid of each point and its score, in chunks to bound memory."""
    best, score = [], []
    for start in range(0, len(x), chunk):
        s = _scores(x[start : start + chunk], centroids, spherical)
        value, index = s.max(1)
        best.append(index)
        score.append(value)
    return torch.cat(best), torch.cat(score)


def _lloyd(x: torch.Tensor, k: int, niter: int, spherical: bool, generator: torch.Generator):
    n = len(x)
    centroids = x[torch.randperm(n, generator=generator)[:k].to(x.device)].clone()
    trace = []
    for _ in range(niter):
        assign, score = _assign(x, centroids, spherical)
        # objective of this assignment: sum of similarities, or sum of squared distances
        trace.append(float(score.sum()) if spherical else float(-score.sum()))
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k)
        empty = torch.nonzero(counts == 0).flatten()
        if len(empty):
            worst = torch.argsort(score)[: len(empty)]
            sums[empty], counts[empty] = x[worst], 1
        centroids = sums / counts[:, None].to(x.dtype)
        if spherical:
            centroids = torch.nn.functional.normalize(centroids, dim=1)
    return centroids, trace


def torch_kmeans(
    points: np.ndarray, k: int, niter: int = 25, nredo: int = 1, seed: int = 0, spherical: bool = True,
    device: str | None = None,
) -> tuple[np.ndarray, np.ndarray, list[float], str]:  # fmt: skip
    """Cluster (n, D) float32 points; returns centroids (K, D), assignments (n,), objective trace, device."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    x = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32)).to(dev)
    generator = torch.Generator().manual_seed(seed)
    runs = [_lloyd(x, k, niter, spherical, generator) for _ in range(nredo)]
    pick = max if spherical else min
    centroids, _ = pick(runs, key=lambda run: run[1][-1])
    trace = [value for _, run_trace in runs for value in run_trace]  # every restart, as faiss reports
    assign, _ = _assign(x, centroids, spherical)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    return centroids.cpu().numpy(), assign.cpu().numpy(), trace, f"torch {torch.__version__} {name}"
