"""How LPA's SupCon target spreads an anchor's positive weight within a batch (the positive-weight diagnostic)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from lpa.targets.similarity import class_similarity

# The similarities balance.json diagnoses, whatever the config runs (so that adding a run does
# not redo this stage); the ablation report diagnoses the configured ones itself.
DIAGNOSED = ("label", "cosine", "cosine_pow2", "cosine_pow4", "top1", "top3")


def weight_diagnostic(similarity: np.ndarray, train_counts: np.ndarray, batch_size: int) -> pd.DataFrame:
    """Per anchor class: how LPA's SupCon term spreads its positive weight within a batch.

    The contrast set of a step is the batch's 2B query and key embeddings. For an anchor of
    class y, its own key has weight w(y, y) and each of the other B - 1 images enters twice,
    of class c with probability p(c) = n_c / N (sampling as in training). With the expected
    composition (the ratio of expected weights, close to the expected ratio at B >= 32):

    - ``other_share``: the share of the anchor's positive weight on other classes,
      sum_{c != y} m_c w(y, c) / sum_c m_c w(y, c), with m_y = 1 + 2(B - 1) p(y) and
      m_c = 2(B - 1) p(c);
    - ``effective_positives``: Kish's effective number (sum w)^2 / sum w^2 over the 2B - 1
      other rows, from 1 + 2(B - 1) p(y) for plain SupCon up to 2B - 1 for a uniform target.
    """
    p = np.asarray(train_counts, np.float64) / np.sum(train_counts)
    w = np.asarray(similarity, np.float64)
    m = 2.0 * (batch_size - 1) * np.broadcast_to(p, w.shape)
    m = m + np.eye(len(p))  # the anchor's own key
    mass, square = (m * w).sum(1), (m * w**2).sum(1)
    same = np.diag(m * w)
    with np.errstate(invalid="ignore", divide="ignore"):
        other = np.where(mass > 0, (mass - same) / mass, np.nan)
        effective = np.where(square > 0, mass**2 / square, np.nan)
    return pd.DataFrame({"label": np.arange(len(p)), "other_share": other, "effective_positives": effective})


def diagnostic_summary(attributes: np.ndarray, counts: pd.DataFrame, batch_size: int, kinds: Sequence[str]) -> dict:
    """:func:`weight_diagnostic` per similarity, averaged over the classes of each shot group."""
    out: dict = {"batch_size": batch_size, "rows": 2 * batch_size - 1, "similarities": {}}
    for kind in kinds:
        per_class = weight_diagnostic(class_similarity(attributes, kind), counts["train_count"].to_numpy(), batch_size)
        per_class["group"] = counts["group"].to_numpy()
        groups = per_class.groupby("group", sort=False)[["other_share", "effective_positives"]].mean()
        out["similarities"][kind] = {
            group: {"other_share": float(row["other_share"]), "effective_positives": float(row["effective_positives"])}
            for group, row in groups.iterrows()
        }
    return out
