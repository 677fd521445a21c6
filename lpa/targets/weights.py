"""How LPA's SupCon target spreads an anchor's positive weight within a batch (the positive-weight diagnostic)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from lpa.targets.similarity import class_similarity, held_prototypes

# The similarities balance.json diagnoses, whatever the config runs (so that adding a run does
# not redo this stage); the ablation report diagnoses the configured ones itself.
DIAGNOSED = ("label", "cosine", "cosine_pow2", "cosine_pow4", "top1", "top3", "centred_cosine", "idf_cosine",
             "multilabel", "image_cosine")  # fmt: skip


def batch_multiplicity(train_counts: np.ndarray, batch_size: int) -> np.ndarray:
    """(C, C) expected rows of class c among an anchor of class y's 2B - 1 others: 2(B - 1) p(c),
    plus 1 (its own key) where c = y, with p(c) = n_c / N (sampling as in training)."""
    p = np.asarray(train_counts, np.float64) / np.sum(train_counts)
    return 2.0 * (batch_size - 1) * np.broadcast_to(p, (len(p), len(p))) + np.eye(len(p))


def multilabel_weights(attributes: np.ndarray, train_counts: np.ndarray, batch_size: int) -> np.ndarray:
    """(C, C) the weight per row that :class:`lpa.losses.MultiLabelSupConLoss` gives a row of class c
    from an anchor of class y, with the expected batch composition.

    Prototype k's loss averages over its anchors (the 2B p(k) rows whose class holds it, p(k)
    the share of training images that do) and, per anchor, over its positives (the
    m-weighted rows holding it): w(y, c) = sum_k h_yk h_ck / (positives_k anchors_k).
    """
    held = held_prototypes(attributes).astype(np.float64)
    p = np.asarray(train_counts, np.float64) / np.sum(train_counts)
    m = batch_multiplicity(train_counts, batch_size)
    anchors = 2.0 * batch_size * (p @ held)  # (K,)
    positives = m @ held  # (C, K): rows holding k among an anchor of class y's others
    scale = np.where((positives > 0) & (anchors > 0), 1.0 / np.maximum(positives * anchors, 1e-300), 0.0)
    return (held * scale) @ held.T


def target_weights(attributes: np.ndarray, kind: str, train_counts: np.ndarray, batch_size: int,
                   unit_means: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """(C, C) the weight per row of class c of an anchor of class y, for any target ``kind``.

    ``image_cosine`` (the cosine of two images' own s(x)) has the expected weight u_y . u_c,
    u the class means of the unit-length s(x) (``unit_means``, C x K), for two distinct images.
    """
    if kind == "image_cosine":
        if unit_means is None:
            raise ValueError("the image_cosine diagnostic needs the class means of the unit s(x)")
        return np.clip(unit_means @ unit_means.T, 0.0, None)
    if kind == "multilabel":
        return multilabel_weights(attributes, train_counts, batch_size)
    return class_similarity(attributes, kind)


def weight_diagnostic(similarity: np.ndarray, train_counts: np.ndarray, batch_size: int) -> pd.DataFrame:
    """Per anchor class: how LPA's SupCon term spreads its positive weight within a batch.

    The contrast set of a step is the batch's 2B query and key embeddings. For an anchor of
    class y, its own key has weight w(y, y) and each of the other B - 1 images enters twice,
    of class c with probability p(c) = n_c / N (sampling as in training). With the expected
    composition m_c (:func:`batch_multiplicity`; the ratio of expected weights, close to the
    expected ratio at B >= 32):

    - ``other_share``: the share of the anchor's positive weight on other classes,
      sum_{c != y} m_c w(y, c) / sum_c m_c w(y, c) (the own-class share is 1 minus it);
    - ``effective_positives``: Kish's effective number (sum w)^2 / sum w^2 over the 2B - 1
      other rows, from 1 + 2(B - 1) p(y) for plain SupCon up to 2B - 1 for a uniform target;
    - ``entropy``: of the anchor's target distribution over those rows, in nats, against
      log(2B - 1) for a uniform target (``uniform_entropy``).
    """
    w = np.asarray(similarity, np.float64)
    m = batch_multiplicity(train_counts, batch_size)
    mass, square = (m * w).sum(1), (m * w**2).sum(1)
    same = np.diag(m * w)
    with np.errstate(invalid="ignore", divide="ignore"):
        other = np.where(mass > 0, (mass - same) / mass, np.nan)
        effective = np.where(square > 0, mass**2 / square, np.nan)
        q = w / mass[:, None]
        entropy = np.where(mass > 0, -(m * np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0)), 0.0)).sum(1), np.nan)
    return pd.DataFrame({"label": np.arange(len(w)), "other_share": other, "effective_positives": effective,
                         "entropy": entropy, "uniform_entropy": np.log(2 * batch_size - 1)})  # fmt: skip


def diagnostic_summary(attributes: np.ndarray, counts: pd.DataFrame, batch_size: int, kinds: Sequence[str],
                       unit_means: np.ndarray | None = None) -> dict:  # fmt: skip
    """:func:`weight_diagnostic` per target, averaged over the classes of each shot group."""
    out: dict = {"batch_size": batch_size, "rows": 2 * batch_size - 1, "similarities": {}}
    train_counts = counts["train_count"].to_numpy()
    columns = ["other_share", "effective_positives", "entropy", "uniform_entropy"]
    for kind in kinds:
        weights = target_weights(attributes, kind, train_counts, batch_size, unit_means)
        per_class = weight_diagnostic(weights, train_counts, batch_size)
        per_class["group"] = counts["group"].to_numpy()
        groups = per_class.groupby("group", sort=False)[columns].mean()
        out["similarities"][kind] = {
            group: {c: float(row[c]) for c in columns} for group, row in groups.iterrows()
        }
    return out
