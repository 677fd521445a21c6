"""The positive weights between classes from a(y)."""

import numpy as np
import pytest

from lpa.targets.similarity import class_similarity


def test_class_similarity_choices():
    a = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    np.testing.assert_allclose(class_similarity(a, "cosine")[0], [1.0, 0.6, 0.0], atol=1e-6)
    np.testing.assert_allclose(class_similarity(a, "cosine_pow2")[0], [1.0, 0.36, 0.0], atol=1e-6)
    np.testing.assert_allclose(class_similarity(a, "top1"), [[1, 0.6, 0], [0, 1, 0.8], [0, 0.8, 1]], atol=1e-6)
    assert class_similarity(a, "dominant").tolist() == [[1, 0, 0], [0, 1, 1], [0, 1, 1]]
    assert class_similarity(a, "label").tolist() == np.eye(3).tolist()
    assert not class_similarity(a, "none").any()
    # held sets, above the midpoint of each row's extremes: {0}, {1}, {1}
    assert class_similarity(a, "jaccard").tolist() == [[1, 0, 0], [0, 1, 1], [0, 1, 1]]
    b = np.array([[0.4, 0.4, 0.0, 0.2], [0.5, 0.0, 0.5, 0.0]])  # held {0, 1} and {0, 2}: 1 of 3
    assert class_similarity(b, "jaccard")[0, 1] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="unknown similarity 'jacard'"):
        class_similarity(a, "jacard")


def test_non_finite_or_negative_attributes_are_refused():
    for bad in (np.array([[0.5, np.nan], [1.0, 0.0]]), np.array([[0.5, np.inf], [1.0, 0.0]]), np.array([[-0.1, 1.0]])):
        with pytest.raises(ValueError, match="finite, non-negative"):
            class_similarity(bad, "cosine")


def test_the_shared_mass_is_removed_before_the_cosine():
    # every class holds prototype 0 heavily; classes 0 and 1 also share prototype 1, class 2 has 2
    a = np.array([[0.7, 0.3, 0.0], [0.7, 0.3, 0.0], [0.7, 0.0, 0.3]])
    plain = class_similarity(a, "cosine")
    assert plain[0, 2] > 0.8  # the shared prototype makes every class look alike
    idf = class_similarity(a, "idf_cosine")
    np.testing.assert_allclose(idf, [[1, 1, 0], [1, 1, 0], [0, 0, 1]], atol=1e-6)  # prototype 0 counts for nothing
    centred = class_similarity(a, "centred_cosine")
    np.testing.assert_allclose(np.diag(centred), 1, atol=1e-6)
    assert centred[0, 1] == pytest.approx(1.0, abs=1e-6) and centred[0, 2] == 0.0  # negatives clipped
    with pytest.raises(ValueError, match="multilabel is a SupCon per pseudo-attribute"):
        class_similarity(a, "multilabel")
