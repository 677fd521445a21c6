import numpy as np
import pandas as pd
import pytest

from lpa import paper
from lpa.figures import retrieve


def s(all_, many=None, medium=None, few=None):
    return {"all": all_, "many": many, "medium": medium, "few": few}


def test_table1_puts_ours_beside_the_paper_and_marks_missing_cells():
    frame = paper.build("table1", [("PaCo", "100", s(50.0)), ("PaCo", "100", s(52.0)), ("LPA", "10", s(66.0))])
    rows = frame.set_index("method")
    assert rows.loc["PaCo (paper)"].tolist() == ["52.0", "56.0", "64.2"]
    assert rows.loc["LPA (paper)"].tolist() == ["53.3", "57.1", "65.1"]
    assert rows.loc["PaCo (ours)"].tolist() == ["51.0 ± 1.4", "not run", "not run"]
    assert rows.loc["LPA (ours)"].tolist() == ["not run", "not run", "66.0"]


def test_table3_uses_the_shot_groups():
    frame = paper.build("table3", [("LPA", "all", s(57.0, 66.0, 55.0, 39.5))])
    lpa = frame.set_index("method").loc["LPA (ours)"]
    assert lpa.tolist() == ["66.0", "55.0", "39.5", "57.0"]
    assert frame.set_index("method").loc["LPA (paper)"].tolist() == ["66.7", "55.4", "39.0", "57.5"]
    md = paper.to_markdown("table3", frame, ["a note"])
    assert "ImageNet-LT" in md and "Note: a note" in md
    empty_groups = paper.build("table3", [("PaCo", "all", s(20.0, None, None, 20.0))]).set_index("method")
    assert empty_groups.loc["PaCo (ours)"].tolist() == ["n/a", "n/a", "20.0", "20.0"]


def test_unknown_column_or_method_is_named():
    with pytest.raises(ValueError, match="not '20'"):
        paper.build("table1", [("PaCo", "20", s(1.0))])
    with pytest.raises(ValueError, match="'CE'"):
        paper.build("table2", [("CE", "all", s(1.0))])


def test_retrieval_finds_other_classes_sharing_the_dominant_attribute():
    scores = pd.DataFrame(
        {
            "image_id": [10, 11, 12, 13, 14],
            "label": [0, 0, 1, 1, 2],
            "scores": list(np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.1, 0.9], [0.6, 0.4]])),
        }
    )
    counts = pd.DataFrame({"label": [0, 1, 2], "train_count": [2, 2, 1]})
    picked = retrieve(scores, counts, queries=1, neighbours=2)
    assert picked == [{"image_id": 14, "label": 2, "attribute": 0, "neighbours": [10, 12], "neighbour_labels": [0, 1]}]


def test_paper_table_pairs_lpa_with_paco_by_seed():
    runs = [("PaCo", "100", {**s(50.0), "seed": 0}), ("PaCo", "100", {**s(52.0), "seed": 1}),
            ("LPA", "100", {**s(51.0), "seed": 0}), ("LPA", "100", {**s(52.5), "seed": 1}),
            ("PaCo", "10", {**s(60.0), "seed": 0}), ("LPA", "10", {**s(61.0), "seed": 0})]  # fmt: skip
    row = paper.build("table1", runs).set_index("method").loc["LPA - PaCo (ours, paired)"]
    # differences +1.0, +0.5: mean 0.75, standard error 0.25, t(0.975, 1) = 12.71: [-2.4, +3.9]
    assert row.tolist() == ["+0.8 [-2.4, +3.9] within noise", "not run", "+1.0 (1 seed)"]
