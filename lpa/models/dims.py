"""The feature size D of every backbone, without importing torch (the workflow sizes its jobs from it)."""

from __future__ import annotations

from collections.abc import Sequence

# torchvision's ResNet-50 and ResNeXt-50 end in 2048 channels (their fc.in_features).
TORCHVISION_DIMS = {"resnet50": 2048, "resnext50_32x4d": 2048}
ARCHS = ("resnet_cifar", *TORCHVISION_DIMS)


def feature_dim(arch: str, widths: Sequence[int] = ()) -> int:
    """Channels D of the dense map Z (and of the pooled feature): the last stage's width for resnet_cifar."""
    if arch == "resnet_cifar":
        return int(widths[-1])
    if arch in TORCHVISION_DIMS:
        return TORCHVISION_DIMS[arch]
    raise ValueError(f"unknown model arch {arch!r}; choose one of {', '.join(ARCHS)}")
