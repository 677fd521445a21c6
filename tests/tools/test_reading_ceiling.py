"""The ceiling of the position-weighting readings, on features made from a looks split's ground truth."""

import numpy as np
from fakedata import write_shard

from lpa import data
from lpa.io.artifacts import read_split
from lpa.sources.parts import PARTS, positions_of
from lpa.sources.planted import source_of_split
from lpa.tools.reading_ceiling import reading_ceiling


def test_features_that_are_the_parts_and_the_look_reach_the_ceiling(tmp_path):
    """Each position's feature is one-hot: its planted part, or the image's look where no part lies.
    The histogram then encodes the look (look-sharing AUC 1.0); counting only the class's own part
    positions encodes the parts (part-sharing AUC 1.0), and every prototype is pure; so are the
    prototypes clustered on the part positions alone."""
    split = tmp_path / "split.parquet"
    data.main(["--source", "looks", "--num-classes", "25", "--n-max", "6", "--imbalance-factor", "3",
               "--val-per-class", "0", "--test-per-class", "1", "--out-split", str(split),
               "--out-counts", str(tmp_path / "counts.csv")])  # fmt: skip
    frame, _ = read_split(split)
    train = frame[frame["split"] == "train"]
    source = source_of_split(str(split))
    ids, labels = train["image_id"].to_numpy(), train["label"].to_numpy()
    dims = len(PARTS) + 5  # the parts, then the 5 looks
    local = np.zeros((len(ids), 64, dims), np.float32)
    for row, (image, label) in enumerate(zip(ids, labels)):
        part = positions_of(source.part_masks([image])[0], 8, 8).ravel()
        local[row, np.arange(64), np.where(part >= 0, part, len(PARTS) + source.groups[label])] = 1.0
    paths = []
    for i, rows in enumerate(np.array_split(np.arange(len(ids)), 2)):
        paths.append(tmp_path / f"shard-{i}.parquet")
        write_shard(paths[-1], ids[rows], labels[rows], local[rows], height=8)
    result = reading_ceiling([str(p) for p in paths], np.eye(dims, dtype=np.float32), True, str(split))
    assert result["cosine"]["histogram"]["look_sharing"] == 1.0
    assert result["cosine"]["own parts only"]["part_sharing"] == 1.0
    assert result["cosine"]["own parts only"]["look_sharing"] < 0.6
    assert result["cosine"]["clustered on own parts"]["part_sharing"] == 1.0
    assert result["part_purity"] == 1.0 and result["K"] == dims


def test_prototypes_clustered_on_part_positions_that_mix_two_parts_lose_their_sharing():
    """Two parts whose features are one point: K-means cannot split them, so classes 0 (part 0)
    and 1 (part 1) look alike, however the prototypes are drawn."""
    from lpa.tools.reading_ceiling import clustered_on_parts

    points = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], np.float32)  # parts 0, 1 (the same), 2
    sums = clustered_on_parts(points, np.array([0, 1, 2]), np.ones(3), 2, True, 3)
    assert (sums[0] == sums[1]).all() and not (sums[0] == sums[2]).all()
