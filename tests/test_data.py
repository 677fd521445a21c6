import numpy as np
import pytest

from lpa.data import (
    DataConfig,
    DigitsSource,
    class_counts,
    long_tailed_counts,
    long_tailed_indices,
    read_split,
    shot_group,
    write_split,
)


@pytest.mark.parametrize("imbalance,total", [(100, 10847), (50, 12608), (10, 19573)])
def test_cifar100_lt_profile_sizes(imbalance, total):
    counts = long_tailed_counts(500, imbalance, 100)
    assert sum(counts) == total
    assert counts[0] == 500 and counts[-1] == 500 // imbalance


def test_long_tailed_indices_follow_ldam_recipe():
    """Class by class, in class order, one legacy generator seeded once: shuffle, keep the first n_c."""
    targets = np.repeat(np.arange(5), 40)[np.random.RandomState(7).permutation(200)]
    kept = long_tailed_indices(targets, imbalance_factor=8, seed=0)
    np.random.seed(0)
    expected = []
    for c, n in enumerate(long_tailed_counts(40, 8, 5)):
        idx = np.where(targets == c)[0]
        np.random.shuffle(idx)
        expected.extend(idx[:n])
    np.testing.assert_array_equal(kept, expected)


def test_long_tailed_indices_name_the_short_class():
    targets = np.array([0] * 10 + [1] * 3)
    with pytest.raises(ValueError, match="class 0 has 10 images"):
        long_tailed_indices(targets, imbalance_factor=2, n_max=20)


@pytest.mark.parametrize("count,group", [(101, "many"), (100, "medium"), (20, "medium"), (19, "few"), (0, "few")])
def test_shot_group_thresholds(count, group):
    assert shot_group(count, many=100, few=20) == group


def test_default_digits_split_is_balanced_disjoint_and_has_every_group(tmp_path):
    cfg = DataConfig()
    source = DigitsSource()
    split = source.make_split(cfg)
    train, test = split[split["split"] == "train"], split[split["split"] == "test"]
    assert set(train["image_id"]).isdisjoint(test["image_id"])
    assert (test["label"].value_counts() == cfg.test_per_class).all()
    np.testing.assert_array_equal(source.targets[split["image_id"]], split["label"])
    counts = class_counts(split, 10, cfg.many, cfg.few)
    assert counts["train_count"].tolist() == long_tailed_counts(cfg.n_max, cfg.imbalance_factor, 10)
    assert set(counts["group"]) == {"many", "medium", "few"}
    write_split(tmp_path / "split.parquet", split, cfg, 10)
    back, meta = read_split(tmp_path / "split.parquet")
    assert meta == {"source": "digits", "root": "", "num_classes": 10}
    assert back.equals(split)


def test_split_rejects_a_test_set_that_empties_a_class():
    with pytest.raises(ValueError, match="test_per_class=500"):
        DigitsSource().make_split(DataConfig(test_per_class=500))
