import numpy as np
import pytest

from lpa.data import DataConfig, class_counts, shot_group
from lpa.io.artifacts import read_split, write_split
from lpa.sources.images import DigitsSource
from lpa.sources.longtail import long_tailed_counts


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
    write_split(tmp_path / "split.parquet", split, {**cfg.source_meta(), "num_classes": 10})
    back, meta = read_split(tmp_path / "split.parquet")
    assert meta == {"source": "digits", "root": "", "num_classes": 10}
    assert back.equals(split)


def test_split_rejects_a_test_set_that_empties_a_class():
    with pytest.raises(ValueError, match="test_per_class=500"):
        DigitsSource().make_split(DataConfig(test_per_class=500))
