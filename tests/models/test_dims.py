"""The torch-free feature sizes agree with the networks they describe."""

import pytest
import torch

from lpa.models.dims import ARCHS, feature_dim, feature_positions
from lpa.models.networks import ModelConfig, build_backbone


@pytest.mark.parametrize("arch", ARCHS)
def test_feature_dim_is_the_backbones_output(arch):
    cfg = ModelConfig(arch=arch, depth=8, widths=(8, 16, 24))
    assert feature_dim(arch, cfg.widths) == build_backbone(cfg).out_dim


@pytest.mark.parametrize(("arch", "strides", "side"), [("resnet_cifar", (1, 2, 2), 32), ("resnet_cifar", (1, 1, 2), 8),
                                                      ("resnet50", (), 224)])  # fmt: skip
def test_feature_positions_are_the_dense_maps(arch, strides, side):
    cfg = ModelConfig(arch=arch, depth=8, widths=(8, 16, 24), strides=strides or (1, 2, 2))
    backbone = build_backbone(cfg).eval()
    with torch.no_grad():
        dense = backbone(torch.zeros(1, 3, side, side)).dense
    assert dense.shape[-2] * dense.shape[-1] == feature_positions(arch, strides, side)
