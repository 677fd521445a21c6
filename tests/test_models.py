import torch
import torch.nn.functional as F

from lpa.models import LongTailNet, ModelConfig


def test_resnet32_matches_the_cifar_literature():
    model = LongTailNet(ModelConfig(arch="resnet_cifar", depth=32), num_classes=100)
    params = sum(p.numel() for p in model.parameters())
    assert 0.46e6 < params < 0.48e6
    out = model(torch.randn(2, 3, 32, 32))
    assert out.dense.shape == (2, 64, 8, 8)
    assert out.pooled.shape == (2, 64) and out.logits.shape == (2, 100)
    torch.testing.assert_close(out.pooled, out.dense.mean(dim=(2, 3)))


def test_torchvision_backbone_returns_its_dense_map():
    model = LongTailNet(ModelConfig(arch="resnet50"), num_classes=10)
    out = model(torch.randn(1, 3, 64, 64))
    assert out.dense.shape == (1, 2048, 2, 2) and out.logits.shape == (1, 10)


def test_queue_fills_then_wraps_around():
    cfg = ModelConfig(depth=8, widths=(4, 4, 4), in_channels=1, proj_dims=(8, 4), queue_size=5)
    model = LongTailNet(cfg, num_classes=3)
    assert model.queue_contents()[0].shape == (0, 4)
    for step in range(3):
        keys = F.normalize(torch.full((2, 4), float(step + 1)), dim=1)
        model.enqueue(keys, torch.tensor([step, step]))
    _, labels = model.queue_contents()
    assert labels.tolist() == [2, 0, 1, 1, 2]  # the third batch fills slot 4, then overwrites slot 0


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
