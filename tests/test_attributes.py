import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lpa import attributes
from lpa.attributes import assign, balance, class_vectors, gini, image_scores
from lpa.shards import feature_schema


def test_image_scores_and_class_vectors_on_a_hand_made_example():
    # two images of class 0 and one of class 1, four local features each, K = 3
    nearest = np.array([[0, 0, 1, 2], [1, 1, 1, 1], [2, 2, 2, 0]])
    scores = image_scores(nearest, 3)
    np.testing.assert_allclose(scores, [[0.5, 0.25, 0.25], [0, 1, 0], [0.25, 0, 0.75]])
    sums = np.array([scores[0] + scores[1], scores[2]])
    np.testing.assert_allclose(class_vectors(sums, np.array([2, 1])), [[0.25, 0.625, 0.125], [0.25, 0, 0.75]])


def test_assign_uses_cosine_or_l2():
    centroids = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    local = np.array([[[10.0, 1.0], [0.1, 0.2]]], np.float32)
    assert assign(local, centroids, normalize=True).tolist() == [[0, 1]]
    assert assign(local, np.array([[10.0, 0.0], [0.0, 0.0]], np.float32), normalize=False).tolist() == [[0, 1]]


def test_gini_and_balance():
    assert gini([5, 5, 5, 5]) == pytest.approx(0.0)
    assert gini([0, 0, 0, 8]) == pytest.approx(0.75)
    assert balance([10, 2, 0]) == {
        "count": 3,
        "empty": 1,
        "imbalance_ratio": 5.0,
        "gini": pytest.approx(gini([10, 2, 0])),
    }


def write_shard(path, ids, labels, local):
    n, p, d = local.shape
    schema = feature_schema(p * d, pa.float32(), 1, p, d)
    values = pa.FixedSizeListArray.from_arrays(pa.array(local.reshape(-1).astype(np.float32)), p * d)
    pq.write_table(pa.Table.from_arrays([pa.array(ids), pa.array(labels), values], schema=schema), path)


def test_stage_streams_shards_into_scores_classes_and_balance(tmp_path):
    centroids = np.eye(3, dtype=np.float32)
    # image 0 (class 0): parts 0,0 ; image 1 (class 1): parts 1,2 ; image 2 (class 1): parts 2,2
    write_shard(tmp_path / "a.parquet", [0], [0], np.array([[[1, 0, 0], [2, 0, 0]]], np.float32))
    write_shard(tmp_path / "b.parquet", [1, 2], [1, 1], np.array([[[0, 1, 0], [0, 0, 1]], [[0, 0, 3], [0, 0, 1]]]))
    np.save(tmp_path / "c.npy", centroids)
    (tmp_path / "stats.json").write_text(json.dumps({"config": {"normalize": True}}))
    pd.DataFrame({"label": [0, 1], "train_count": [1, 2], "group": ["few", "few"]}).to_csv(tmp_path / "counts.csv")
    attributes.main(
        ["--features", str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet"), "--centroids", str(tmp_path / "c.npy")]
        + ["--kmeans-stats", str(tmp_path / "stats.json"), "--counts", str(tmp_path / "counts.csv")]
        + ["--out-scores", str(tmp_path / "s.parquet"), "--out-classes", str(tmp_path / "a_y.parquet")]
        + ["--out-balance", str(tmp_path / "balance.json")]
    )
    scores = pq.read_table(tmp_path / "s.parquet").to_pandas().sort_values("image_id")
    np.testing.assert_allclose(np.stack(scores["scores"]), [[1, 0, 0], [0, 0.5, 0.5], [0, 0, 1]])
    classes = pq.read_table(tmp_path / "a_y.parquet").to_pandas()
    np.testing.assert_allclose(np.stack(classes["attributes"]), [[1, 0, 0], [0, 0.25, 0.75]])
    assert classes["images"].tolist() == [1, 2]
    summary = json.loads((tmp_path / "balance.json").read_text())
    assert summary["pseudo_attributes"]["frequencies"] == [2, 1, 3]
    assert summary["classes"]["imbalance_ratio"] == 2.0
    assert summary["pseudo_attributes"]["imbalance_ratio"] == 3.0


def test_class_similarity_choices():
    from lpa.attributes import class_similarity

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


def test_weight_diagnostic_limits_and_a_worked_example():
    from lpa.attributes import weight_diagnostic

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


def test_the_workflow_and_the_schema_accept_the_similarities_the_package_knows():
    import re
    from pathlib import Path

    import yaml

    from lpa.attributes import READINGS, RUN_SIMILARITY_PATTERN, SIMILARITY_PATTERN

    repo = Path(__file__).parents[1]
    smk = re.search(r'^SIMILARITY = r"([^"]+)"', (repo / "workflow/rules/common.smk").read_text(), re.M)
    assert smk and smk.group(1) == RUN_SIMILARITY_PATTERN
    schema = yaml.safe_load((repo / "workflow/schemas/config.schema.yaml").read_text())
    finetune = schema["properties"]["finetune"]["properties"]
    assert finetune["similarity"]["items"]["pattern"] == "^(" + SIMILARITY_PATTERN.removesuffix("|none") + ")$"
    assert finetune["reading"]["items"]["enum"] == list(READINGS)
    # a run's wildcard: a similarity, prefixed by another reading than the histogram
    assert re.fullmatch(RUN_SIMILARITY_PATTERN, "presence-jaccard") and re.fullmatch(RUN_SIMILARITY_PATTERN, "cosine")
    assert not re.fullmatch(RUN_SIMILARITY_PATTERN, "histogram-cosine")  # the default reading has no prefix
