import pytest
import torch
import torch.nn.functional as F

from lpa.models.networks import LongTailNet, ModelConfig

PACO_RESNET32 = ModelConfig(arch="resnet_cifar", depth=32, proj_dims=(64, 32), queue_size=1024, key_momentum=0.999)


def trainable(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_resnet32_has_pacos_parameter_count_and_layout():
    # MoCo(resnet32, dim 32, mlp, feat_dim 64, 100 classes) of PaCo's paco_cifar.py: query encoder
    # with its BatchNorm head, plus the classifier. Option-A shortcuts have no parameters.
    model = LongTailNet(PACO_RESNET32, num_classes=100)
    assert trainable(model) == 476_372
    assert trainable(model.backbone) == 463_504  # He et al.'s ResNet-32 (0.46M)
    assert trainable(model.projector) == 64 * 64 + 64 + 2 * 64 + 64 * 32 + 32  # Linear, BN, Linear
    assert trainable(model.classifier) == 64 * 100 + 100
    assert not any("shortcut" in name for name, _ in model.named_parameters())
    assert [type(m).__name__ for m in model.projector] == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    out = model(torch.randn(2, 3, 32, 32))
    assert out.dense.shape == (2, 64, 8, 8)
    assert out.pooled.shape == (2, 64) and out.logits.shape == (2, 100) and out.embedding.shape == (2, 32)
    torch.testing.assert_close(out.pooled, out.dense.mean(dim=(2, 3)))


def test_option_a_shortcut_subsamples_and_pads_zero_channels():
    block = LongTailNet(ModelConfig(depth=8, widths=(4, 8, 8)), 3).backbone.layer2[0]
    x = torch.randn(2, 4, 6, 6)
    y = block.shortcut(x)
    assert y.shape == (2, 8, 3, 3)
    torch.testing.assert_close(y[:, 2:6], x[:, :, ::2, ::2])
    assert y[:, :2].abs().sum() == 0 and y[:, 6:].abs().sum() == 0
    b = LongTailNet(ModelConfig(depth=8, widths=(4, 8, 8), shortcut="B"), 3)
    assert trainable(b) > trainable(LongTailNet(ModelConfig(depth=8, widths=(4, 8, 8)), 3))
    with pytest.raises(ValueError, match="shortcut"):
        LongTailNet(ModelConfig(depth=8, widths=(4, 8, 8), shortcut="C"), 3)


def test_convolutions_use_pacos_fan_in_kaiming_init():
    torch.manual_seed(0)
    conv = LongTailNet(ModelConfig(depth=32), 10).backbone.layer3[1].conv1  # 64 -> 64, 3x3: fan_in 576
    assert conv.weight.std().item() == pytest.approx((2 / 576) ** 0.5, rel=0.05)


def test_torchvision_backbone_returns_its_dense_map():
    model = LongTailNet(ModelConfig(arch="resnet50"), num_classes=10)
    assert {"conv1.weight", "layer4.2.conv3.weight"} <= set(model.backbone.state_dict())
    out = model(torch.randn(2, 3, 64, 64))
    assert out.dense.shape == (2, 2048, 2, 2) and out.logits.shape == (2, 10)


def test_queue_starts_full_of_short_random_keys_and_wraps_at_queue_ptr():
    torch.manual_seed(0)
    cfg = ModelConfig(depth=8, widths=(4, 4, 4), in_channels=1, proj_dims=(8, 4), queue_size=6)
    model = LongTailNet(cfg, num_classes=3)
    # PaCo's randn(K, d) normalised over K: unit columns, so rows much shorter than keys
    torch.testing.assert_close(model.queue.norm(dim=0), torch.ones(4))
    assert int(model.queue_ptr) == 0 and set(model.queue_labels.tolist()) <= {0, 1, 2}
    for step in range(4):
        keys = F.normalize(torch.full((2, 4), float(step + 1)), dim=1)
        model.enqueue(keys, torch.tensor([step, step]))
    assert model.queue_labels.tolist() == [3, 3, 1, 1, 2, 2]  # the fourth batch overwrote slots 0, 1
    assert int(model.queue_ptr) == 2


def test_key_encoder_moves_towards_query_encoder():
    cfg = ModelConfig(depth=8, widths=(4, 4, 4), in_channels=1, proj_dims=(8, 4), queue_size=4, key_momentum=0.5)
    model = LongTailNet(cfg, num_classes=3)
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(1.0)
    q = next(model.backbone.parameters()).clone()
    k_before = next(model.key_backbone.parameters()).clone()
    model.key_embed(torch.randn(2, 1, 8, 8))
    torch.testing.assert_close(next(model.key_backbone.parameters()), 0.5 * k_before + 0.5 * q)
    assert not any(p.requires_grad for p in model.key_backbone.parameters())
