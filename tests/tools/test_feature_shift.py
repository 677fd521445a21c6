"""lpa.tools.feature_shift: linear CKA and how the class centroids follow a(y)."""

import numpy as np
import pytest

from lpa.tools.feature_shift import centroid_cosines, linear_cka, off_diagonal_correlation


def test_linear_cka_is_one_for_a_rotated_scaled_copy_and_low_for_unrelated_features():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 8))
    rotation, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    assert linear_cka(x, 3.0 * x @ rotation) == pytest.approx(1.0)
    assert linear_cka(x, rng.normal(size=(500, 8))) < 0.1
    assert 0.1 < linear_cka(x, x[:, :4]) < 0.9  # half the dimensions kept


def test_centroids_that_follow_the_target_correlate_with_it():
    rng = np.random.default_rng(1)
    means = np.abs(rng.normal(size=(5, 6)))
    labels = np.repeat(np.arange(5), 40)
    features = means[labels] + 0.01 * rng.normal(size=(200, 6))
    unit = means / np.linalg.norm(means, axis=1, keepdims=True)
    cos = centroid_cosines(features, labels, 5)
    np.testing.assert_allclose(cos, unit @ unit.T, atol=1e-2)
    assert off_diagonal_correlation(cos, unit @ unit.T) == pytest.approx(1.0, abs=1e-2)
    assert off_diagonal_correlation(cos, -(unit @ unit.T)) == pytest.approx(-1.0, abs=1e-2)
