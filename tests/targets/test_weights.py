"""The positive-weight diagnostic."""

import numpy as np
import pytest

from lpa.targets.weights import weight_diagnostic


def test_weight_diagnostic_limits_and_a_worked_example():

    counts = np.array([60, 30, 10])
    label = weight_diagnostic(np.eye(3), counts, batch_size=8)
    np.testing.assert_allclose(label["other_share"], 0.0)
    np.testing.assert_allclose(label["effective_positives"], 1 + 14 * counts / 100)  # own key + same-class rows
    uniform = weight_diagnostic(np.ones((3, 3)), counts, batch_size=8)
    np.testing.assert_allclose(uniform["effective_positives"], 15.0)  # all 2B - 1 other rows alike
    np.testing.assert_allclose(uniform["other_share"], 1 - (1 + 14 * counts / 100) / 15)
    # class 2 (p = 0.1) with weight 0.5 to the others: same-class mass 1 + 1.4, others 0.5 * (8.4 + 4.2)
    w = np.array([[1, 0.5, 0.5], [0.5, 1, 0.5], [0.5, 0.5, 1]])
    row = weight_diagnostic(w, counts, batch_size=8).iloc[2]
    assert row["other_share"] == pytest.approx(6.3 / (2.4 + 6.3))
    assert row["effective_positives"] == pytest.approx((2.4 + 6.3) ** 2 / (2.4 + 0.25 * 12.6))
