"""The torch-free feature sizes agree with the networks they describe."""

import pytest

from lpa.models.dims import ARCHS, feature_dim
from lpa.models.networks import ModelConfig, build_backbone


@pytest.mark.parametrize("arch", ARCHS)
def test_feature_dim_is_the_backbones_output(arch):
    cfg = ModelConfig(arch=arch, depth=8, widths=(8, 16, 24))
    assert feature_dim(arch, cfg.widths) == build_backbone(cfg).out_dim
