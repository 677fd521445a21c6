"""The looks source: groups share a look, parts are shared across groups, and the ground truth is the pixels'."""

import numpy as np
import pytest

from lpa.data import DataConfig, long_tailed_counts
from lpa.io.artifacts import read_split
from lpa.sources import PLANTED_SOURCES, looks, parts
from lpa.sources.planted import PLANTED, source_of_split


def _source(seed=0, num_classes=40, per_class=2):
    return looks.LooksSource([per_class] * num_classes, val_per_class=0, test_per_class=1, seed=seed)


def test_the_planted_names_match_the_planted_sources():
    assert tuple(PLANTED) == PLANTED_SOURCES


def test_the_generator_is_deterministic_per_seed():
    ids = list(range(12))
    a, b, c = _source(0), _source(0), _source(1)
    np.testing.assert_array_equal(a.pixels(ids), b.pixels(ids))
    np.testing.assert_array_equal(a.part_masks(ids), b.part_masks(ids))
    assert not np.array_equal(a.pixels(ids), c.pixels(ids))
    np.testing.assert_array_equal(a.parts, c.parts)  # the class structure is the design, not the seed's


@pytest.mark.parametrize("num_classes", [25, 30, 35, 40])
def test_look_sharing_and_part_sharing_pairs_are_disjoint(num_classes):
    groups, held = looks.look_classes(num_classes)
    g = num_classes // looks.GROUP_SIZE
    assert np.bincount(groups).tolist() == [looks.GROUP_SIZE] * g
    assert groups[:g].tolist() == list(range(g))  # the heads come first: the frequent classes
    onehot = np.zeros((num_classes, len(parts.PARTS)), int)
    np.put_along_axis(onehot, held, 1, axis=1)
    shared = onehot @ onehot.T
    same_look = groups[:, None] == groups[None, :]
    upper = np.triu(np.ones_like(same_look), k=1)
    assert not (upper & same_look & (shared > 0)).any()  # no two classes of a look share a part
    assert shared[upper].max() == 1  # and no two classes share two
    assert len({tuple(p) for p in held}) == num_classes
    heads = held[:g]
    assert sorted(heads.ravel().tolist()) == list(range(2 * g))  # every part in use is one head's
    for c in range(g, num_classes):  # a tail's parts are other groups' heads'
        owners = [int(np.flatnonzero((heads == p).any(1))[0]) for p in held[c]]
        assert groups[c] not in owners and len(set(owners)) == 2
    source = _source(num_classes=num_classes, per_class=1)
    np.testing.assert_array_equal(source.shares_look(), same_look)
    np.testing.assert_array_equal(source.shares_part(), shared > 0)


def test_the_part_map_and_the_look_are_in_the_pixels():
    source = _source()
    ids = np.arange(len(source.table))
    pixels, masks = source.pixels(ids).astype(float), source.part_masks(ids)
    labels = source.table["label"].to_numpy()
    holds = source.holds(ids)
    nearer = []
    for i in ids:
        drawn = set(np.unique(masks[i][masks[i] >= 0]).tolist())
        assert drawn <= set(np.flatnonzero(holds[i]).tolist())
        assert set(source.parts[labels[i]].tolist()) <= set(np.flatnonzero(holds[i]).tolist())
        _, low, high = looks.LOOKS[source.groups[labels[i]]]
        for p in drawn:  # a part's pixels are its colour (jittered), nearer it than the look's two colours
            colour = np.asarray(parts.COLOURS[parts.PARTS[p].split()[0]], float)
            median = np.median(pixels[i][masks[i] == p], axis=0)
            nearer.append(np.linalg.norm(median - colour) < min(np.linalg.norm(median - np.asarray(c, float))
                                                                for c in (low, high)))  # fmt: skip
    assert np.mean(nearer) > 0.97
    # the background holds the look's two colours: its darkest and brightest 30% of pixels match
    # the look's darker and brighter colour, up to the look's brightness jitter, for nearly every image
    def dark_and_bright(rgb):
        brightness = rgb.sum(1)
        return np.r_[np.median(rgb[brightness <= np.percentile(brightness, 30)], axis=0),
                     np.median(rgb[brightness >= np.percentile(brightness, 70)], axis=0)]  # fmt: skip

    observed = np.stack([dark_and_bright(pixels[i][masks[i] < 0]) for i in ids])
    designed = np.array([np.r_[tuple(sorted((lo, hi), key=sum))] for _, lo, hi in looks.LOOKS], float).reshape(8, 6)
    scale = observed @ designed.T / (designed**2).sum(1)  # (images, looks): the best brightness factor
    error = np.linalg.norm(observed[:, None] - scale[..., None] * designed[None], axis=-1)
    assert (error.argmin(1) == source.groups[labels]).mean() > 0.9

def test_the_data_stage_makes_a_looks_split_that_the_attributes_stage_reopens(tmp_path):
    from lpa import data

    out = ["--out-split", str(tmp_path / "split.parquet"), "--out-counts", str(tmp_path / "counts.csv")]
    data.main(["--source", "looks", "--num-classes", "25", "--n-max", "20", "--imbalance-factor", "10",
               "--val-per-class", "1", "--test-per-class", "2", *out])  # fmt: skip
    split, meta = read_split(tmp_path / "split.parquet")
    assert meta["source"] == "looks"
    train = split[split["split"] == "train"]
    assert train["label"].value_counts().sort_index().tolist() == long_tailed_counts(20, 10, 25)
    planted = source_of_split(str(tmp_path / "split.parquet"))
    assert type(planted) is looks.LooksSource and planted.groups.tolist() == looks.look_classes(25)[0].tolist()
    cfg = DataConfig(source="looks", num_classes=25, n_max=20, imbalance_factor=10, val_per_class=1,
                     test_per_class=2)  # fmt: skip
    assert cfg.source_meta()["train_counts"] == long_tailed_counts(20, 10, 25)


@pytest.mark.parametrize("num_classes", [20, 24, 45])
def test_a_class_count_the_design_cannot_make_is_named(num_classes):
    with pytest.raises(ValueError, match=f"got {num_classes}"):
        looks.look_classes(num_classes)
