"""Recovery metrics: how well pseudo-attributes recover planted parts, for sources with ground truth.

Each is a ROC AUC, so chance is 0.5 and a perfect recovery 1.0 (numpy only: the attributes
stage runs without torch or scikit-learn).

- **Part recovery, images**: for each planted part, the AUC of the best prototype's image
  score at telling the images that hold the part from those that do not; the mean over parts.
- **Part recovery, positions**: the same at the dense map's positions, a position holding a
  part when the part covers more than half of its cell, scored by the cosine of its local
  feature to the prototype.
- **Class-sharing recovery (part)**: the AUC of sim(a(y_i), a(y_j)) over class pairs i < j at
  telling the pairs that share a part from the pairs that share none.
- **Class-sharing recovery (look)**, for a source whose classes share a global appearance
  within groups (``looks``): the same AUC at telling the pairs that share the look from the
  rest. There the two kinds of pairs are disjoint: a reading that finds the parts scores high
  on the first and near chance on the second; one that finds the look, the reverse.
"""

from __future__ import annotations

import numpy as np


def average_ranks(scores: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``scores`` along the first axis, tied scores sharing their average rank."""
    scores = np.asarray(scores, np.float64)
    if scores.ndim > 1:
        return np.stack([average_ranks(column) for column in scores.T], axis=1)
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores), np.float64)
    ranks[order] = np.arange(1, len(scores) + 1)
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    return (np.bincount(inverse, weights=ranks) / counts)[inverse]


def _auc_from_ranks(ranks: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC of every column of ``ranks`` (N, K) for every column of ``positive`` (N, P) -> (P, K)."""
    n_pos = positive.sum(0).astype(np.float64)[:, None]
    n_neg = len(positive) - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        return (positive.T.astype(np.float64) @ ranks - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for the boolean labels ``positive`` (ties count half).

    The Mann-Whitney statistic from average ranks; NaN when either class is empty.
    """
    ranks = average_ranks(np.asarray(scores).ravel())[:, None]
    return float(_auc_from_ranks(ranks, np.asarray(positive, bool).ravel()[:, None])[0, 0])


def best_prototype_auc(scores: np.ndarray, holds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per part, the best prototype's AUC and its index: (N, K) scores, (N, P) bool -> (P,), (P,)."""
    aucs = _auc_from_ranks(average_ranks(scores), np.asarray(holds, bool))
    if np.isnan(aucs).all(axis=1).any():
        raise ValueError("a part is held by every image or by none: its recovery is undefined")
    return np.nanmax(aucs, axis=1), np.nanargmax(aucs, axis=1)


def part_recovery(scores: np.ndarray, holds: np.ndarray) -> dict:
    """Mean over parts of :func:`best_prototype_auc`, with the per-part figures."""
    auc, best = best_prototype_auc(scores, holds)
    return {"mean": float(np.mean(auc)), "per_part": auc.round(4).tolist(), "best_prototype": best.tolist()}


def sharing_recovery(similarity: np.ndarray, shares: np.ndarray) -> float:
    """AUC of the class similarities (C, C) over pairs i < j for the ground truth ``shares`` (C, C) bool."""
    upper = np.triu_indices(len(shares), k=1)
    return roc_auc(np.asarray(similarity)[upper], np.asarray(shares, bool)[upper])
