"""Resource requests from the config: the feature size from the model definitions, doubling on retry."""

import pytest

from lpa.planning.sizing import doubled, kmeans_mem_mb, train_images, verify_runtime


def config(arch, widths=(16, 32, 64), max_points=1_000_000, mem_mb=4000):
    return {"model": {"arch": arch, "widths": list(widths)}, "kmeans": {"max_points": max_points},
            "execution": {"mem_mb": mem_mb}}  # fmt: skip


def test_doubled_on_every_retry():
    assert [doubled(100, a) for a in (1, 2, 3)] == [100, 200, 400]


def test_kmeans_memory_follows_the_feature_size_of_the_architecture():
    points_mb = 1_000_000 * 2048 * 4 / 2**20
    assert kmeans_mem_mb(config("resnext50_32x4d"), 1) == int(1.25 * points_mb + 2000)
    assert kmeans_mem_mb(config("resnet50"), 2) == 2 * int(1.25 * points_mb + 2000)
    # CIFAR's 64-d points are small: the configured floor holds
    assert kmeans_mem_mb(config("resnet_cifar"), 1) == 4000
    with pytest.raises(ValueError, match="unknown model arch 'vit'"):
        kmeans_mem_mb(config("vit"), 1)


def test_verify_runtime_counts_the_listed_images():
    assert verify_runtime({"train": 90_000, "val": 0, "test": None}, threads=1, attempt=1) == 70
    assert verify_runtime({"train": 90_000}, threads=2, attempt=2) == 2 * 40


def test_train_images_follow_the_long_tailed_profile_or_the_expected_size():
    assert train_images({"source": "cifar100", "n_max": 500, "imbalance_factor": 100}) == 10_847  # CIFAR100-LT
    assert train_images({"source": "cifar100", "n_max": 500, "imbalance_factor": 10}) == 19_573
    assert train_images({"source": "parts", "n_max": 150, "imbalance_factor": 50, "num_classes": 40}) == 1_527
    assert train_images({"source": "listfile", "expected": {"train": 115_846}}) == 115_846
    assert train_images({"source": "listfile", "expected": {"train": None}}) is None


def test_train_images_is_what_the_data_stage_makes():
    from lpa.data import DataConfig
    from lpa.sources.images import DigitsSource

    split = DigitsSource().make_split(DataConfig(n_max=120, imbalance_factor=40))
    assert train_images({"source": "digits", "n_max": 120, "imbalance_factor": 40}) == (split["split"] == "train").sum()
