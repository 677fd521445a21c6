"""The draw of the local features K-means clusters: water-filled class quotas, seeded, and the rows it picks."""

import numpy as np
import pytest

from lpa.clustering.sampling import chosen_rows, class_quotas, evidence_slots, sample_mask, top_evidence


def test_class_quotas_water_fill():
    assert class_quotas([1000, 10, 500], 300).tolist() == [145, 10, 145]
    assert class_quotas([5, 5], 100).tolist() == [5, 5]
    assert class_quotas([3, 3, 3], 2).tolist() == [1, 1, 0]


def test_sample_mask_is_balanced_seeded_and_within_budget():
    labels = np.array([0] * 50 + [1] * 5)
    mask = sample_mask(labels, points_per_image=4, budget=60, seed=3)
    assert mask.sum() == 60
    assert mask[labels == 1].sum() == 20  # the tail class gives all it has
    assert mask[labels == 0].sum() == 40
    np.testing.assert_array_equal(mask, sample_mask(labels, 4, 60, seed=3))
    assert not np.array_equal(mask, sample_mask(labels, 4, 60, seed=4))


def test_chosen_rows_are_image_by_image_and_position_by_position():
    local = np.arange(2 * 3 * 2).reshape(2, 3, 2)
    mask = np.array([[True, False, True], [False, True, False]])
    ids, labels, values = chosen_rows(np.array([7, 9]), np.array([0, 1]), local, mask)
    assert ids.tolist() == [7, 7, 9] and labels.tolist() == [0, 0, 1]
    assert values.tolist() == [[0, 1], [4, 5], [8, 9]]


def test_the_top_evidence_positions_leave_the_background_out():
    """A 4 x 4 map whose parts sit at known positions, where the class evidence is high: a quarter
    of the positions is the parts and none of the background, highest evidence first."""
    parts = np.array([[5, 6, 9, 10], [0, 3, 12, 15]])
    cams = np.full((2, 16), -1.0)
    cams[0, parts[0]] = [2.0, 4.0, 3.0, 1.0]
    cams[1, parts[1]] = 0.5
    slots = evidence_slots(16, 0.25)
    assert slots == 4
    top = top_evidence(cams, slots)
    assert top[0].tolist() == [6, 9, 5, 10]
    assert top[1].tolist() == [0, 3, 12, 15]  # ties: lower position first
    assert evidence_slots(16, 1.0) == 16 and evidence_slots(16, 0.01) == 1 and evidence_slots(49, 0.1) == 5


@pytest.mark.parametrize("share", [0.0, -0.5, 1.5])
def test_an_evidence_share_outside_zero_to_one_is_refused(share):
    with pytest.raises(ValueError, match=f"evidence_share must be in \\(0, 1\\], got {share}"):
        evidence_slots(16, share)
