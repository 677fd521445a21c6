"""The readings of s(x): how an image's local features score against the prototypes.

numpy only. Each reading (:data:`lpa.targets.kinds.READINGS`) turns an image's nearest
prototypes, its cosines to them and its class activation map into one score per prototype;
the attributes stage (:mod:`lpa.attributes`) averages them per class into a(y) and documents
each reading.
"""

from __future__ import annotations

import numpy as np

SOFTMAX_TEMPERATURE = 0.1
PRESENCE_SHARE = 0.05  # of the image's positions: 4 of an 8x8 map, about one 8x8-pixel part of a 32x32 image
BACKGROUND_SHARE = 0.25  # the foreground reading's default (attributes.background_share)

def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def assign_and_cosines(local: np.ndarray, centroids: np.ndarray, normalize: bool) -> tuple[np.ndarray, np.ndarray]:
    """Nearest prototype of each local feature (n, P) int, and the cosine of each to every prototype (n, P, K).

    Nearest by cosine similarity when ``normalize`` (as the spherical K-means that made the
    centroids), else by squared L2 distance. One product of the features with the prototypes
    serves both.
    """
    n, p, _ = local.shape
    flat = local.reshape(n * p, -1)
    if normalize:
        flat = _unit_rows(flat)
    dots = flat @ centroids.T
    if normalize:
        nearest = np.argmax(dots, axis=1)
        cos = dots / np.maximum(np.linalg.norm(centroids, axis=1), 1e-12)
    else:
        nearest = np.argmin((centroids**2).sum(1)[None, :] - 2.0 * dots, axis=1)
        cos = _unit_rows(flat) @ _unit_rows(centroids).T
    return nearest.reshape(n, p), cos.astype(np.float32).reshape(n, p, -1)


def assign(local: np.ndarray, centroids: np.ndarray, normalize: bool) -> np.ndarray:
    """Nearest prototype of each local feature: (n, P, D) -> (n, P) int (see :func:`assign_and_cosines`)."""
    return assign_and_cosines(local, centroids, normalize)[0]


def reading_scores(assignments: np.ndarray, cos: np.ndarray, cams: np.ndarray,
                   background_share: float = BACKGROUND_SHARE) -> dict[str, np.ndarray]:  # fmt: skip
    """Every reading of s(x) (:data:`READINGS`): (n, P) nearest prototypes, (n, P, K) cosines and
    (n, P) class activation maps -> (n, K) each."""
    k = cos.shape[-1]
    histogram = image_scores(assignments, k)
    logits = cos / SOFTMAX_TEMPERATURE
    soft = np.exp(logits - logits.max(-1, keepdims=True))
    return {
        "histogram": histogram,
        "maxcos": np.clip(cos.max(1), 0.0, None),
        "softmax": (soft / soft.sum(-1, keepdims=True)).mean(1).astype(np.float32),
        "presence": (histogram >= PRESENCE_SHARE).astype(np.float32),
        "cam": image_scores(assignments, k, cam_weights(cams)),
        "foreground": foreground(histogram, background_share),
    }


def image_scores(assignments: np.ndarray, k: int, weights: np.ndarray | None = None) -> np.ndarray:
    """(n, P) prototype indices -> (n, K) histograms s(x); each position counts 1/P, or its (n, P) weight."""
    n, p = assignments.shape
    offsets = (np.arange(n)[:, None] * k + assignments).ravel()
    weights = np.full(n * p, 1.0 / p) if weights is None else np.asarray(weights, np.float64).ravel()
    return np.bincount(offsets, weights=weights, minlength=n * k).reshape(n, k).astype(np.float32)


def cam_weights(cams: np.ndarray) -> np.ndarray:
    """(n, P) class activation maps -> (n, P) position weights summing to 1 per image: each position's
    evidence above the image's mean, relu(cam_p - mean cam); equal weights where no position is above."""
    excess = np.clip(cams - cams.mean(1, keepdims=True), 0.0, None)
    total = excess.sum(1, keepdims=True)
    return np.where(total > 0, excess / np.maximum(total, 1e-30), 1.0 / cams.shape[1])


def foreground(histogram: np.ndarray, background_share: float) -> np.ndarray:
    """(n, K) histograms without the prototypes holding more than ``background_share`` of an image's
    positions, renormalised; all zeros for an image whose every prototype is set aside."""
    kept = np.where(histogram > background_share, 0.0, histogram)
    total = kept.sum(1, keepdims=True)
    return np.where(total > 0, kept / np.maximum(total, 1e-30), 0.0).astype(np.float32)
