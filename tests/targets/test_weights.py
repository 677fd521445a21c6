"""The positive-weight diagnostic."""

import numpy as np
import pandas as pd
import pytest

from lpa.targets.weights import diagnostic_summary, multilabel_weights, weight_diagnostic


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


def test_the_target_entropy_is_uniform_only_for_a_uniform_target():
    counts = np.array([60, 30, 10])
    uniform = weight_diagnostic(np.ones((3, 3)), counts, batch_size=8)
    np.testing.assert_allclose(uniform["entropy"], np.log(15))
    np.testing.assert_allclose(uniform["uniform_entropy"], np.log(15))
    label = weight_diagnostic(np.eye(3), counts, batch_size=8)
    np.testing.assert_allclose(label["entropy"], np.log(1 + 14 * counts / 100))  # uniform over its own rows


def test_multilabel_weights_share_each_prototype_among_its_holders():
    # class 0 holds prototype 0 and class 2 prototype 1
    attributes = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])  # a flat a(y) (class 1) holds nothing
    counts = np.array([50, 30, 20])
    w = multilabel_weights(attributes, counts, batch_size=4)
    assert (w[1] == 0).all() and (w[:, 1] == 0).all()
    assert w[0, 2] == 0 and w[0, 0] > 0 and w[2, 2] > 0
    # prototype 0: 8 * 0.5 anchors; an anchor of class 0 has 1 + 6 * 0.5 positives
    assert w[0, 0] == pytest.approx(1 / ((1 + 6 * 0.5) * 8 * 0.5))
    summary = diagnostic_summary(attributes, pd.DataFrame({"train_count": counts, "group": ["many", "few", "few"]}),
                                 4, ["multilabel"])  # fmt: skip
    assert summary["similarities"]["multilabel"]["many"]["other_share"] == pytest.approx(0.0)


def test_the_per_image_target_is_diagnosed_from_the_class_means_of_unit_scores():
    unit_means = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    counts = pd.DataFrame({"train_count": [50, 30, 20], "group": ["many", "medium", "few"]})
    summary = diagnostic_summary(np.ones((3, 2)), counts, 4, ["image_cosine"], unit_means)
    assert summary["similarities"]["image_cosine"]["many"]["other_share"] > 0  # class 2 shares with class 0
    with pytest.raises(ValueError, match="unit s"):
        diagnostic_summary(np.ones((3, 2)), counts, 4, ["image_cosine"])
