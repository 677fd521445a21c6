"""The feature size D and the dense map's positions of every backbone, without importing torch (the
workflow sizes its jobs from them)."""

from __future__ import annotations

import math
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


def feature_positions(arch: str, strides: Sequence[int], side: int) -> int:
    """Positions W x H of the dense map Z for a ``side``-pixel input: resnet_cifar divides the side by
    its stages' ``strides``, torchvision's ResNets by 32."""
    if arch == "resnet_cifar":
        return (side // math.prod(strides)) ** 2
    if arch in TORCHVISION_DIMS:
        return (side // 32) ** 2
    raise ValueError(f"unknown model arch {arch!r}; choose one of {', '.join(ARCHS)}")
