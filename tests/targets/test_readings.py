"""The readings of s(x) on hand-made cases."""

import numpy as np

from lpa.targets.readings import assign, reading_scores


def test_assign_uses_cosine_or_l2():
    centroids = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    local = np.array([[[10.0, 1.0], [0.1, 0.2]]], np.float32)
    assert assign(local, centroids, normalize=True).tolist() == [[0, 1]]
    assert assign(local, np.array([[10.0, 0.0], [0.0, 0.0]], np.float32), normalize=False).tolist() == [[0, 1]]


def test_the_part_readings_ignore_a_known_background():
    """Four positions: three on prototype 0 (the background, or a look every position carries), one
    on the part's prototype 1 (image 0) or 2 (image 1); the classifier's evidence is at the part."""
    nearest = np.array([[0, 0, 0, 1], [0, 2, 0, 0]])
    cams = np.array([[1.0, 1.2, 0.9, 3.0], [2.0, 5.0, 2.0, 2.0]])
    cos = np.zeros((2, 4, 3), np.float32)
    scores = reading_scores(nearest, cos, cams, background_share=0.5)
    np.testing.assert_allclose(scores["histogram"], [[0.75, 0.25, 0], [0.75, 0, 0.25]])
    np.testing.assert_allclose(scores["foreground"], [[0, 1, 0], [0, 0, 1]])  # prototype 0 set aside
    # cam: the evidence above the image's mean, relu(cam - mean), is all at the part
    np.testing.assert_allclose(scores["cam"], [[0, 1, 0], [0, 0, 1]], atol=1e-6)
    flat = reading_scores(nearest, cos, np.zeros((2, 4)), background_share=0.8)
    np.testing.assert_allclose(flat["cam"], flat["histogram"])  # no evidence anywhere: every position alike
    np.testing.assert_allclose(flat["foreground"], flat["histogram"])  # no prototype above 80%
