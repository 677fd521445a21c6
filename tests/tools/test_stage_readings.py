"""Each backbone stage's local features, clustered and read, against a looks split's ground truth."""

import numpy as np
import pytest
import torch

from lpa import data
from lpa.models.networks import LongTailNet, ModelConfig
from lpa.tools.stage_readings import class_attributes, stage_maps, stage_names, stage_readings


def test_stage_maps_are_every_stage_in_order_the_last_the_dense_map():
    """PaCo's CIFAR stages and torchvision's are found by name, in order; the last stage's output is
    the map the workflow extracts, and the CAM is w_y . z_p of it."""
    torch.manual_seed(0)
    model = LongTailNet(ModelConfig(depth=8, widths=(4, 8, 8), proj_dims=()), 5).eval()
    images, labels = torch.randn(3, 3, 32, 32), torch.tensor([0, 4, 2])
    maps, cam = stage_maps(model, images, labels)
    assert list(maps) == ["layer1", "layer2", "layer3"]
    assert [tuple(m.shape[2:]) for m in maps.values()] == [(32, 32), (16, 16), (8, 8)]
    with torch.no_grad():
        dense = model(images).dense
    torch.testing.assert_close(maps["layer3"], dense)
    torch.testing.assert_close(cam[1], torch.einsum("dhw,d->hw", dense[1], model.classifier.weight[4].detach()))
    resnet = LongTailNet(ModelConfig(arch="resnet50", proj_dims=()), 5).backbone
    assert stage_names(resnet) == ["layer1", "layer2", "layer3", "layer4"]


def test_class_attributes_average_each_class_weighted_histograms():
    nearest = np.array([[0, 0, 1, 2], [2, 2, 2, 2], [1, 1, 0, 0]])
    labels = np.array([0, 0, 1])
    weights = np.array([[0.5, 0.5, 0, 0], [0.25] * 4, [0, 0, 0, 1.0]])
    a = class_attributes(nearest, weights, labels, k=3, classes=3)
    np.testing.assert_allclose(a, [[0.5, 0, 0.5], [1.0, 0, 0], [0, 0, 0]])
    np.testing.assert_allclose(class_attributes(nearest, None, labels, 3, 3)[0], [0.25, 0.125, 0.625])


def test_every_stage_and_k_is_read_on_a_looks_split(tmp_path):
    """A 1-epoch model on a tiny looks split: a row per stage and K, each reading with both AUCs."""
    from lpa.train import train
    from lpa.training.config import TrainConfig

    split, counts = tmp_path / "split.parquet", tmp_path / "counts.csv"
    data.main(["--source", "looks", "--num-classes", "25", "--n-max", "4", "--imbalance-factor", "3",
               "--val-per-class", "0", "--test-per-class", "1", "--out-split", str(split),
               "--out-counts", str(counts)])  # fmt: skip
    cfg = TrainConfig(objective="ce", depth=8, widths=(4, 8, 8), strides=(1, 2, 2), augment="digits",
                      normalize="cifar100", epochs=1)  # fmt: skip
    train(cfg, split, counts, tmp_path / "m")
    rows = stage_readings(str(tmp_path / "m" / "model.pt"), str(split), [2, 4], centre=True)
    assert [(r["stage"], r["K"], r["map"]) for r in rows] == [
        ("layer1", 2, [32, 32, 4]), ("layer1", 4, [32, 32, 4]), ("layer2", 2, [16, 16, 8]),
        ("layer2", 4, [16, 16, 8]), ("layer3", 2, [8, 8, 8]), ("layer3", 4, [8, 8, 8])]  # fmt: skip
    for row in rows:
        for reading in ("histogram", "cam", "own parts only"):
            assert set(row[reading]) == {"part_sharing", "look_sharing"}
            assert all(0 <= auc <= 1 for auc in row[reading].values())


def test_a_split_that_is_not_planted_is_refused_by_name(digits_split):
    split, _ = digits_split
    with pytest.raises(ValueError, match="not a planted source's split"):
        stage_readings("unused.pt", str(split), [2])
