"""Config checks that name the key."""

import pytest

from lpa.planning.checks import check_config


def config(**finetune):
    ft = {"reading": ["histogram"], "similarity": ["cosine"], "batch_size": 128, "epochs": [20]}
    digits = {"source": "digits", "n_max": 120, "imbalance_factor": 40}  # 347 training images
    return {
        "seeds": [0, 1, 2],
        "datasets": {"digits_lt": digits},
        "execution": {"gpus": 1},
        "paco": {"queue_size": 1024},
        "baseline": {"batch_size": 128, "epochs": 30},
        "finetune": {**ft, **finetune},
        "features": {"shards": 4},
        "kmeans": {"K": [16]},
    }


def test_a_valid_config_passes():
    check_config(config(reading=["histogram", "presence"], similarity=["cosine_pow4", "top3", "jaccard", "label"]))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"reading": ["histogram", "hist"]}, r"finetune.reading\[1\]='hist' is not a reading"),
        ({"similarity": ["cosin"]}, r"finetune.similarity\[0\]='cosin' is not a similarity"),
        ({"similarity": ["none"]}, r"finetune.similarity\[0\]='none'"),  # alpha 0's own, not a choice
        ({"batch_size": 96}, r"paco.queue_size=1024 must be a multiple of finetune.batch_size=96"),
    ],
)
def test_a_wrong_setting_is_named(change, message):
    with pytest.raises(ValueError, match=message):
        check_config(config(**change))


def test_the_global_batch_must_split_over_the_gpus():
    cfg = config()
    cfg["execution"]["gpus"] = 3
    with pytest.raises(ValueError, match=r"baseline.batch_size=128 .* divisible by execution.gpus=3"):
        check_config(cfg)


@pytest.mark.parametrize(
    "keys, value, message",
    [
        (("kmeans", "K"), [4.0], r"kmeans.K=\[4.0\]: 4.0 must be a whole number"),
        (("finetune", "epochs"), [2.5], r"finetune.epochs=\[2.5\]: 2.5 must be a whole number"),
        (("seeds",), [0, 0], r"seeds=\[0, 0\] repeats \[0\]"),
        (("kmeans", "K"), [8, 16, 8], r"kmeans.K=\[8, 16, 8\] repeats \[8\]"),
        (("features", "shards"), 600, r"features.shards=600 exceeds the 347 training images of dataset digits_lt"),
    ],
)
def test_settings_that_cannot_work_are_refused_naming_the_key(keys, value, message):
    cfg = config()
    node = cfg
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    with pytest.raises(ValueError, match=message):
        check_config(cfg)


def test_a_batch_larger_than_the_training_split_is_refused():
    cfg = config()
    cfg["datasets"]["digits_lt"]["imbalance_factor"] = 100  # 10 classes of 120 .. 1 images
    cfg["baseline"]["batch_size"] = 512
    cfg["paco"]["queue_size"] = 1024
    with pytest.raises(ValueError, match=r"baseline.batch_size=512 exceeds the \d+ training images of dataset"):
        check_config(cfg)


def test_a_list_file_dataset_without_a_known_size_is_not_checked_against_it():
    cfg = config()
    cfg["datasets"] = {"lists": {"source": "listfile", "expected": {"train": None}}}
    cfg["features"]["shards"] = 10_000
    check_config(cfg)
    cfg["datasets"]["lists"]["expected"]["train"] = 500
    with pytest.raises(ValueError, match="features.shards=10000 exceeds the 500 training images of dataset lists"):
        check_config(cfg)
