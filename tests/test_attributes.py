import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from fakedata import write_shard

from lpa import attributes
from lpa.attributes import balance, class_vectors, gini
from lpa.features import centred
from lpa.targets.readings import image_scores
from lpa.targets.similarity import class_similarity


def test_image_scores_and_class_vectors_on_a_hand_made_example():
    # two images of class 0 and one of class 1, four local features each, K = 3
    nearest = np.array([[0, 0, 1, 2], [1, 1, 1, 1], [2, 2, 2, 0]])
    scores = image_scores(nearest, 3)
    np.testing.assert_allclose(scores, [[0.5, 0.25, 0.25], [0, 1, 0], [0.25, 0, 0.75]])
    sums = np.array([scores[0] + scores[1], scores[2]])
    np.testing.assert_allclose(class_vectors(sums, np.array([2, 1])), [[0.25, 0.625, 0.125], [0.25, 0, 0.75]])


def test_gini_and_balance():
    assert gini([5, 5, 5, 5]) == pytest.approx(0.0)
    assert gini([0, 0, 0, 8]) == pytest.approx(0.75)
    assert balance([10, 2, 0]) == {
        "count": 3,
        "empty": 1,
        "imbalance_ratio": 5.0,
        "gini": pytest.approx(gini([10, 2, 0])),
    }


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


def test_a_non_finite_feature_stops_the_stage_naming_shard_and_image(tmp_path):
    local = np.ones((3, 2, 3), np.float32)
    local[1, 1, 2] = np.nan
    write_shard(tmp_path / "a.parquet", [0, 1, 2], [0, 1, 1], local)
    np.save(tmp_path / "c.npy", np.eye(3, dtype=np.float32))
    (tmp_path / "stats.json").write_text(json.dumps({"config": {"normalize": True}}))
    pd.DataFrame({"label": [0, 1], "train_count": [1, 2], "group": ["few", "few"]}).to_csv(tmp_path / "counts.csv")
    out = {f"--out-{k}": str(tmp_path / f"{k}.out") for k in ("scores", "classes", "balance")}
    with pytest.raises(ValueError, match=r"a.parquet: image 1 has non-finite features"):
        attributes.main(["--features", str(tmp_path / "a.parquet"), "--centroids", str(tmp_path / "c.npy"),
                         "--kmeans-stats", str(tmp_path / "stats.json"), "--counts", str(tmp_path / "counts.csv"),
                         *[x for kv in out.items() for x in kv]])  # fmt: skip
    assert not any((tmp_path / f"{k}.out").exists() for k in ("scores", "classes", "balance"))


def test_a_part_shared_by_two_classes_shows_in_their_cam_attributes_not_in_the_histogram(tmp_path):
    """Class 0 and class 1 share a look (prototype 0 everywhere but one position) and hold different
    parts; class 2 has another look and class 0's part. Only the part readings find 0 ~ 2."""
    centroids = np.eye(4, dtype=np.float32)
    look_a, look_b = [1, 0, 0, 0], [0, 0, 0, 1]
    part_x, part_y = [0, 1, 0, 0], [0, 0, 1, 0]
    local = np.array([[look_a, look_a, look_a, part_x], [look_a, look_a, look_a, part_y],
                      [look_b, look_b, look_b, part_x]], np.float32)  # fmt: skip
    cams = np.array([[0, 0, 0, 2.0], [0, 0, 0, 2.0], [0, 0, 0, 2.0]])
    write_shard(tmp_path / "a.parquet", [0, 1, 2], [0, 1, 2], local, cams)
    vectors, *_ = attributes.compute([tmp_path / "a.parquet"], centroids, True, 3, str(tmp_path / "s.parquet"),
                                     background_share=0.5)  # fmt: skip
    histogram, cam, fore = (class_similarity(vectors[r], "cosine") for r in ("histogram", "cam", "foreground"))
    assert histogram[0, 1] > histogram[0, 2]  # the look dominates the plain histogram
    assert cam[0, 2] == pytest.approx(1.0) and cam[0, 1] == pytest.approx(0.0)
    assert fore[0, 2] == pytest.approx(1.0) and fore[0, 1] == pytest.approx(0.0)


def test_centring_removes_the_look_so_the_histogram_finds_the_part(tmp_path):
    """Each position holds its image's look plus, at the last position, its class's part. Class 0
    and class 1 share look a, class 2 has look b and class 0's part. Centred (features.centre),
    class 0 and class 2 hold the same local features and the histogram finds 0 ~ 2, not 0 ~ 1."""
    look_a, look_b = torch.tensor([4.0, 0, 0, 0]), torch.tensor([0, 0, 0, 4.0])
    part_x, part_y = torch.tensor([0, 1.0, 0, 0]), torch.tensor([0, 0, 1.0, 0])
    dense = torch.stack([look.expand(4, 4).clone() for look in (look_a, look_a, look_b)])  # (B, W, D)
    for image, part in enumerate((part_x, part_y, part_x)):
        dense[image, 3] += part
    dense = dense.permute(0, 2, 1)[:, :, None]  # (B, D, H=1, W)
    local = centred(dense).permute(0, 2, 3, 1).reshape(3, 4, 4).numpy()
    np.testing.assert_allclose(local[0], local[2], atol=1e-6)  # the look is gone
    centroids = np.stack([-part_x, part_x, -part_y, part_y]).astype(np.float32)
    write_shard(tmp_path / "a.parquet", [0, 1, 2], [0, 1, 2], local, np.ones((3, 4)))
    vectors, *_ = attributes.compute([tmp_path / "a.parquet"], centroids, True, 3, str(tmp_path / "s.parquet"))
    histogram = class_similarity(vectors["histogram"], "cosine")
    assert histogram[0, 2] == pytest.approx(1.0) and histogram[0, 1] == pytest.approx(0.0)


def test_shards_without_class_activation_maps_are_named(tmp_path):
    import pyarrow as pa

    from lpa.io.artifacts import iter_local_features, shard_writer

    with shard_writer(tmp_path / "old.parquet", pa.float32(), 1, 2, 3) as write:
        write(np.array([0]), np.array([0]), np.ones((1, 6), np.float32))
    with pytest.raises(ValueError, match="old.parquet has no 'cam' column"):
        list(iter_local_features([tmp_path / "old.parquet"], cam=True))
