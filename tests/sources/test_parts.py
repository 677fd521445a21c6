"""The planted-parts source: deterministic per seed, long-tailed, every class sharing parts, ground truth."""

import numpy as np
import pytest

from lpa.data import DataConfig, long_tailed_counts, open_source
from lpa.io.artifacts import read_split
from lpa.sources import parts
from lpa.sources.planted import source_of_split


def _source(seed=0, counts=(12, 6, 3, 2, 2, 1)):
    return parts.PartsSource(list(counts), val_per_class=2, test_per_class=3, seed=seed)


def test_the_generator_is_deterministic_per_seed():
    a, b, other = _source(), _source(), _source(seed=1)
    ids = a.table["image_id"]
    assert np.array_equal(a.pixels(ids), b.pixels(ids)) and np.array_equal(a.part_masks(ids), b.part_masks(ids))
    assert np.array_equal(a.parts, b.parts)
    assert not np.array_equal(a.pixels(ids), other.pixels(ids))


def test_classes_are_distinct_part_sets_that_share_parts():
    sets = parts.class_parts(40, seed=0)
    assert sets.shape == (40, parts.PARTS_PER_CLASS)
    assert len({tuple(s) for s in sets}) == 40  # distinct
    assert set(sets.ravel()) == set(range(len(parts.PARTS)))  # the whole vocabulary is used
    shares = parts.sharing(sets)
    np.fill_diagonal(shares, False)
    assert shares.any(axis=1).all()  # every class shares a part with another
    assert 0.2 < shares[np.triu_indices(40, 1)].mean() < 0.8  # and both kinds of pair are common
    # some parts differ only in colour
    assert parts.PARTS[0].split()[1] == parts.PARTS[1].split()[1] and parts.PARTS[0] != parts.PARTS[1]


def test_every_image_carries_which_part_lies_where():
    source = _source()
    for image_id in source.table["image_id"]:
        mask = source.part_masks([image_id])[0]
        placed = source.placements(image_id)
        label = source.table.at[image_id, "label"]
        assert [p.part for p in placed[: parts.PARTS_PER_CLASS]] == list(source.parts[label])
        assert set(np.unique(mask[mask >= 0])) == {p.part for p in placed}  # each placed part is drawn
        for p in placed:  # and lies around its centre
            rows, cols = np.nonzero(mask == p.part)
            assert abs(rows.mean() - p.row) < p.radius and abs(cols.mean() - p.col) < p.radius
        assert source.holds([image_id])[0].sum() == len(placed)
        if len(placed) > parts.PARTS_PER_CLASS:  # the distractor: a part of the vocabulary not the class's
            assert len(placed) == parts.PARTS_PER_CLASS + 1 and placed[-1].part not in source.parts[label]
    distractors = sum(len(source.placements(i)) > parts.PARTS_PER_CLASS for i in source.table["image_id"])
    assert distractors == round(parts.DISTRACTOR * len(source.table))


def test_positions_take_the_part_covering_most_of_their_cell():
    mask = np.full((32, 32), parts.BACKGROUND)
    mask[0:4, 0:3] = 5  # 12 of the 16 pixels of cell (0, 0) at an 8x8 map
    mask[4:6, 4:8] = 2  # half of cell (1, 1): not over half
    positions = parts.positions_of(mask, 8, 8)
    assert positions[0, 0] == 5 and positions[1, 1] == parts.BACKGROUND and (positions >= 0).sum() == 1
    with pytest.raises(ValueError, match="does not tile"):
        parts.positions_of(mask, 5, 5)


def test_the_data_stage_makes_a_long_tailed_parts_split(tmp_path):
    cfg = DataConfig(source="parts", num_classes=6, n_max=20, imbalance_factor=10, val_per_class=2,
                     test_per_class=3, split_seed=4)  # fmt: skip
    source = open_source(cfg.source_meta())
    split = source.make_split(cfg)
    train = split[split["split"] == "train"]
    assert train["label"].value_counts().sort_index().tolist() == long_tailed_counts(20, 10, 6)
    assert (split[split["split"] == "val"]["label"].value_counts() == 2).all()
    assert (split[split["split"] == "test"]["label"].value_counts() == 3).all()
    assert source.pixels(split["image_id"][:2]).shape == (2, 32, 32, 3)
    assert source.load(0).size == (32, 32)
    from lpa import data

    out = ["--out-split", str(tmp_path / "split.parquet"), "--out-counts", str(tmp_path / "counts.csv")]
    data.main(["--source", "parts", "--num-classes", "6", "--n-max", "20", "--imbalance-factor", "10", *out])
    _, meta = read_split(tmp_path / "split.parquet")
    planted = source_of_split(str(tmp_path / "split.parquet"))
    assert type(planted) is parts.PartsSource and planted.parts.tolist() == parts.class_parts(6, 0).tolist()
    assert meta["source"] == "parts"


def test_bad_parts_settings_are_named():
    with pytest.raises(ValueError, match="train_counts"):
        parts.PartsSource([5, 0], val_per_class=1, test_per_class=1, seed=0)
    with pytest.raises(ValueError, match="test_per_class"):
        parts.PartsSource([5, 2], val_per_class=1, test_per_class=0, seed=0)
