"""The local features K-means clusters: a seeded sample balanced across classes, drawn once.

The features stage draws it while it extracts (:func:`sample_mask` over every training image,
then each shard's rows), and writes the chosen local features beside its shard
(:func:`lpa.io.artifacts.sample_writer`), so K-means reads its points and nothing else. With
``kmeans.evidence_share`` below 1, the draw is over each image's positions where the
classifier's evidence for its class is highest (:func:`top_evidence`), so that the background
and the look every position of an image carries take little of the prototypes.
"""

from __future__ import annotations

import numpy as np


def class_quotas(available: np.ndarray, budget: int) -> np.ndarray:
    """Split ``budget`` points as evenly as possible over classes holding ``available`` points each.

    Water-filling: a class with fewer points than its share gives all it has, and the rest of
    the budget is shared among the others.
    """
    available = np.asarray(available, dtype=np.int64)
    quota = np.zeros_like(available)
    open_ = available > 0
    remaining = min(int(budget), int(available.sum()))
    while remaining > 0 and open_.any():
        share = remaining // int(open_.sum())
        if share == 0:  # fewer points left than open classes: one more each for the first ones
            quota[np.flatnonzero(open_)[:remaining]] += 1
            break
        give = np.minimum(available - quota, share) * open_
        quota += give
        remaining -= int(give.sum())
        open_ &= quota < available
    return quota


def sample_mask(labels: np.ndarray, points_per_image: int, budget: int, seed: int) -> np.ndarray:
    """(n_images, points_per_image) bool: the local features to cluster, class-balanced and seeded."""
    n = len(labels)
    if n * points_per_image <= budget:
        return np.ones((n, points_per_image), dtype=bool)
    rng = np.random.default_rng(seed)
    classes, inverse = np.unique(labels, return_inverse=True)
    available = np.bincount(inverse) * points_per_image
    quotas = class_quotas(available, budget)
    mask = np.zeros(n * points_per_image, dtype=bool)
    for c in range(len(classes)):
        images = np.flatnonzero(inverse == c)
        flat = rng.choice(len(images) * points_per_image, size=quotas[c], replace=False)
        mask[images[flat // points_per_image] * points_per_image + flat % points_per_image] = True
    return mask.reshape(n, points_per_image)


def evidence_slots(positions: int, share: float) -> int:
    """How many of an image's ``positions`` the sample draws from: its top ``share``, at least one."""
    if not 0 < share <= 1:
        raise ValueError(f"evidence_share must be in (0, 1], got {share}")
    return max(1, int(np.ceil(share * positions - 1e-9)))


def top_evidence(cams: np.ndarray, count: int) -> np.ndarray:
    """(B, P) class activation maps -> (B, count) positions, highest evidence first (ties: lower
    position first)."""
    return np.argsort(-cams, axis=1, kind="stable")[:, :count]


def chosen_rows(ids: np.ndarray, labels: np.ndarray, local: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, ...]:
    """The chosen local features of a batch: (image_ids, labels, values (m, D)) of the ``mask`` (n, P)
    entries of ``local`` (n, P, D), image by image and position by position."""
    per_image = mask.sum(axis=1)
    return np.repeat(ids, per_image), np.repeat(labels, per_image), local[mask]
