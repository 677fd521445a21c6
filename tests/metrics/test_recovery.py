"""Recovery metrics: exact on hand-made cases, 1.0 for a perfect clustering, about 0.5 for a random one."""

import numpy as np
import pytest

from lpa.metrics import recovery


def test_roc_auc_counts_ties_as_half():
    # positives 3 and 2, negatives 2 and 1: pairs (3>2, 3>1, 2=2, 2>1) -> 3.5 of 4
    assert recovery.roc_auc([3, 2, 2, 1], [True, True, False, False]) == pytest.approx(0.875)
    assert np.isnan(recovery.roc_auc([1, 2], [True, True]))


def test_a_perfect_clustering_recovers_everything():
    rng = np.random.default_rng(0)
    holds = rng.random((200, 6)) < 0.4
    # prototype k fires exactly on part k (K = 8 > 6 parts: two prototypes are noise)
    scores = np.concatenate([holds.astype(float), rng.random((200, 2))], axis=1)
    result = recovery.part_recovery(scores, holds)
    assert result["mean"] == 1.0 and result["best_prototype"] == list(range(6))
    shares = rng.random((12, 12)) < 0.5
    shares = shares | shares.T
    assert recovery.sharing_recovery(shares.astype(float), shares) == 1.0


def test_a_random_clustering_is_near_chance():
    rng = np.random.default_rng(1)
    holds = rng.random((5000, 4)) < 0.3
    # a single random prototype per part: the best of one is the AUC itself
    result = recovery.part_recovery(rng.random((5000, 1)), holds)
    assert result["mean"] == pytest.approx(0.5, abs=0.03)
    shares = rng.random((60, 60)) < 0.5
    shares = shares | shares.T
    assert recovery.sharing_recovery(rng.random((60, 60)), shares) == pytest.approx(0.5, abs=0.05)


def test_a_part_that_no_image_holds_is_an_error():
    with pytest.raises(ValueError, match="undefined"):
        recovery.best_prototype_auc(np.random.default_rng(0).random((10, 3)), np.zeros((10, 2), bool))
