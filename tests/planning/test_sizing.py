"""Resource requests from the config: the feature size from the model definitions, doubling on retry."""

import pytest

from lpa.planning.sizing import (
    attributes_mem_mb,
    attributes_runtime,
    doubled,
    kmeans_mem_mb,
    train_images,
    verify_runtime,
)


def config(arch, widths=(16, 32, 64), max_points=1_000_000, mem_mb=4000, strides=(1, 2, 2)):
    return {"model": {"arch": arch, "widths": list(widths), "strides": list(strides)},
            "kmeans": {"max_points": max_points}, "execution": {"mem_mb": mem_mb, "runtime": 60}}  # fmt: skip


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


IMAGENET_LT = {"source": "listfile", "augment": "randclsstack_sim", "expected": {"train": 115_846}}


def test_attributes_runtime_grows_with_images_map_size_and_k():
    # 115,846 images at the measured 7x7x2048, K 128: 10 + 3 x 2.27 ms each = 23 min; twice on a retry
    assert attributes_runtime(config("resnext50_32x4d"), IMAGENET_LT, 128, 1) == 23
    assert attributes_runtime(config("resnext50_32x4d"), IMAGENET_LT, 128, 2) == 46
    assert attributes_runtime(config("resnext50_32x4d"), IMAGENET_LT, 512, 1) == int(10 + 4 * 13.15)
    # a list-file dataset of unknown size keeps the configured runtime
    unknown = {**IMAGENET_LT, "expected": {}}
    assert attributes_runtime(config("resnet50"), unknown, 128, 1) == 60


def test_attributes_memory_is_flat_but_for_the_recovery_metrics_of_planted_parts():
    assert attributes_mem_mb(config("resnext50_32x4d"), IMAGENET_LT, 128, 1) == 2000
    assert attributes_mem_mb(config("resnext50_32x4d"), IMAGENET_LT, 128, 2) == 4000
    parts = {"source": "parts", "augment": "digits", "image_size": 32, "num_classes": 40, "n_max": 200,
             "imbalance_factor": 100}  # fmt: skip
    images = train_images(parts)
    # 8x8 positions of a 32-px input through strides 1, 2, 2; K 16; 8 bytes per cosine
    assert attributes_mem_mb(config("resnet_cifar"), parts, 16, 1) == int(2000 + images * 64 * 16 * 8 / 2**20)

