"""The positive weights between classes that LPA's SupCon term takes from the class attribute vectors a(y)."""

from __future__ import annotations

import re

import numpy as np

from lpa.targets.kinds import SIMILARITY_PATTERN


def class_similarity(attributes: np.ndarray, kind: str) -> np.ndarray:
    """(C, C) non-negative positive weights between classes from their attribute vectors a(y) (C, K).

    ``cosine``: cos(a(y_i), a(y_j)), in [0, 1] since a(y) is a histogram; ``cosine_pow<p>``:
    the cosine to the power p (sharper: small similarities fade); ``top<k>``: the cosine kept
    for each class's k most similar other classes and itself, zero elsewhere; ``dominant``: 1
    where the classes share their most frequent pseudo-attribute; ``jaccard``: the Jaccard
    overlap |A_i & A_j| / |A_i | A_j| of the sets of prototypes each class holds, A_i those
    above the midpoint of a(y_i)'s smallest and largest entries; ``label``: the identity
    (plain SupCon, the control without attributes); ``none``: all zero (no SupCon positives).

    Two cosines first remove the mass that every class shares, which makes the plain cosine
    high between any two classes: ``centred_cosine`` subtracts the mean a(y) over the classes;
    ``idf_cosine`` weights prototype k by its inverse class frequency, log((1 + C) / (1 + C_k)),
    C_k the classes that hold it (:func:`held_prototypes`), so a prototype every class holds
    counts for nothing. Negative cosines are clipped to 0 (no repulsion from a positive weight).
    ``multilabel`` is no class similarity (:class:`lpa.losses.MultiLabelSupConLoss`).
    """
    a = np.asarray(attributes, dtype=np.float64)
    if a.ndim != 2 or not np.isfinite(a).all() or (a < 0).any():
        raise ValueError(f"class attributes must be a finite, non-negative (C, K) matrix, got shape {a.shape} "
                         f"with {int((~np.isfinite(a)).sum())} non-finite and {int((a < 0).sum())} negative values")
    if not re.fullmatch(SIMILARITY_PATTERN, kind):
        raise ValueError(
            f"unknown similarity {kind!r}; choose cosine, cosine_pow<p>, centred_cosine, idf_cosine, top<k>, "
            "dominant, jaccard, label or none"
        )
    c = len(a)
    if kind in ("multilabel", "image_cosine"):
        raise ValueError(f"{kind} is not a class similarity: multilabel is a SupCon per pseudo-attribute "
                         "(held_prototypes), image_cosine weighs images by their own s(x)")  # fmt: skip
    if kind == "label":
        return np.eye(c, dtype=np.float32)
    if kind == "none":
        return np.zeros((c, c), np.float32)
    if kind == "dominant":
        top = a.argmax(1)
        return (top[:, None] == top[None, :]).astype(np.float32)
    if kind == "jaccard":
        held = held_prototypes(a).astype(np.float64)
        union = held.sum(1)[:, None] + held.sum(1)[None, :] - held @ held.T
        return np.where(union > 0, held @ held.T / np.maximum(union, 1), 0.0).astype(np.float32)
    if kind == "centred_cosine":
        a = a - a.mean(0, keepdims=True)
    if kind == "idf_cosine":
        a = a * prototype_idf(a)
    unit = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    cos = np.clip(unit @ unit.T, 0.0, 1.0)
    if kind.startswith("cosine_pow"):
        return (cos ** int(kind.removeprefix("cosine_pow"))).astype(np.float32)
    if kind.startswith("top"):
        k = int(kind.removeprefix("top"))
        others = np.where(np.eye(c, dtype=bool), -np.inf, cos)
        keep = np.argsort(-others, axis=1, kind="stable")[:, :k]
        mask = np.eye(c, dtype=bool)
        mask[np.arange(c)[:, None], keep] = True
        return np.where(mask, cos, 0.0).astype(np.float32)
    return cos.astype(np.float32)


def held_prototypes(attributes: np.ndarray) -> np.ndarray:
    """(C, K) bool: the prototypes each class holds, those above the midpoint of its a(y)'s
    smallest and largest entries (a class whose a(y) is flat holds none)."""
    a = np.asarray(attributes, dtype=np.float64)
    return a > (a.min(1, keepdims=True) + a.max(1, keepdims=True)) / 2


def prototype_idf(attributes: np.ndarray) -> np.ndarray:
    """(K,) inverse class frequency of each prototype, log((1 + C) / (1 + C_k)): 0 for one every class holds."""
    held = held_prototypes(attributes)
    return np.log((1.0 + len(held)) / (1.0 + held.sum(0)))


def image_unit_scores(scores: np.ndarray) -> np.ndarray:
    """(N, K) float32 per-image scores s(x) scaled to unit length (the per-image target's cosine
    is their dot product); an image without scores stays zero and is nobody's positive."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or not np.isfinite(s).all() or (s < 0).any():
        raise ValueError(f"image scores must be a finite, non-negative (N, K) matrix, got shape {s.shape}")
    return (s / np.maximum(np.linalg.norm(s, axis=1, keepdims=True), 1e-12)).astype(np.float32)
