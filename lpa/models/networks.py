"""Backbones that return their dense feature map, and the long-tailed classifier around them.

Every backbone's ``forward`` returns :class:`BackboneOutput` with the dense map
Z (B, D, H, W) *before* global pooling and the pooled vector (B, D), so feature
extraction never needs a forward hook.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from lpa.models.dims import ARCHS, TORCHVISION_DIMS


class BackboneOutput(NamedTuple):
    dense: torch.Tensor  # (B, D, H, W)
    pooled: torch.Tensor  # (B, D)


class ModelOutput(NamedTuple):
    dense: torch.Tensor  # (B, D, H, W)
    pooled: torch.Tensor  # (B, D)
    logits: torch.Tensor  # (B, C)
    embedding: torch.Tensor | None  # (B, d) L2-normalised projection; None without the contrastive branch


class KeyOutput(NamedTuple):
    pooled: torch.Tensor  # (B, D) the key encoder's pooled feature
    embedding: torch.Tensor  # (B, d) L2-normalised key projection


@dataclass(frozen=True)
class ModelConfig:
    """Architecture settings, stored in every checkpoint so a model can be rebuilt from it.

    The defaults build PaCo's CIFAR model (``PaCo/LT/paco_cifar.py`` with ``--arch resnet32
    --feat_dim 64 --moco-dim 32 --moco-k 1024``, ``mlp=True``): ResNet-32 with option-A
    shortcuts and the contrastive branch. ``proj_dims=()`` builds the plain classifier (CE).
    """

    arch: str = "resnet_cifar"  # resnet_cifar | resnet50 | resnext50_32x4d
    depth: int = 32  # resnet_cifar only: 6n + 2
    widths: tuple[int, ...] = (16, 32, 64)  # resnet_cifar only: channels per stage
    strides: tuple[int, ...] = (1, 2, 2)  # resnet_cifar only: stride of each stage
    in_channels: int = 3
    norm: str = "batch"  # resnet_cifar only: batch | group (GroupNorm, independent of the batch split; not PaCo's)
    shortcut: str = "A"  # resnet_cifar only: A (PaCo's: subsample + zero channels) | B (1x1 conv + norm; not PaCo's)
    proj_dims: tuple[int, ...] = (64, 32)  # projection head (hidden..., out); empty: no contrastive branch
    queue_size: int = 1024
    key_momentum: float = 0.999


def norm_layer(kind: str, channels: int, spatial: bool = True) -> nn.Module:
    """BatchNorm (2-d for feature maps, 1-d for vectors) or GroupNorm of ``channels``."""
    if kind == "batch":
        return nn.BatchNorm2d(channels) if spatial else nn.BatchNorm1d(channels)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    raise ValueError(f"norm must be batch or group, got {kind!r}")


class ShortcutA(nn.Module):
    """He et al.'s option A: subsample by ``stride`` and zero-pad the new channels, no parameters.

    PaCo pads ``planes // 4`` channels on each side, which is the doubling of every CIFAR
    ResNet stage; other widths pad the difference (the extra channel, if odd, goes last).
    """

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        if planes < in_planes:
            raise ValueError(f"option-A shortcuts cannot shrink {in_planes} channels to {planes}")
        self.stride = stride
        self.pad = ((planes - in_planes) // 2, planes - in_planes - (planes - in_planes) // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, :: self.stride, :: self.stride], (0, 0, 0, 0, *self.pad))


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int, norm: str = "batch", shortcut: str = "A") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = norm_layer(norm, planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = norm_layer(norm, planes)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            if shortcut == "A":
                self.shortcut = ShortcutA(in_planes, planes, stride)
            elif shortcut == "B":
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_planes, planes, 1, stride, bias=False), norm_layer(norm, planes)
                )
            else:
                raise ValueError(f"shortcut must be A or B, got {shortcut!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNetCifar(nn.Module):
    """ResNet for small images (He et al., 2016, Sec. 4.2): a 3x3 stem and stages of 2-layer blocks.

    ``depth = 2 * blocks_per_stage * len(widths) + 2``; depth 32 with widths (16, 32, 64) and
    strides (1, 2, 2) is the ResNet-32 of the long-tailed CIFAR literature (8x8x64 map on 32x32
    input), laid out as PaCo's ``models/resnet_cifar.py`` (``conv1``, ``bn1``, ``layer1..N``,
    option-A shortcuts, Kaiming-normal fan-in initialisation of every convolution).
    """

    def __init__(
        self,
        depth: int,
        widths: tuple[int, ...],
        strides: tuple[int, ...],
        in_channels: int,
        norm: str = "batch",
        shortcut: str = "A",
    ) -> None:
        super().__init__()
        if len(widths) != len(strides) or not widths:
            raise ValueError(f"widths {widths} and strides {strides} must be non-empty and of equal length")
        blocks, rest = divmod(depth - 2, 2 * len(widths))
        if rest or blocks < 1:
            raise ValueError(f"depth {depth} must be 2 * k * {len(widths)} + 2 for a positive integer k")
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.bn1 = norm_layer(norm, widths[0])
        in_planes = widths[0]
        self.num_stages = len(widths)
        for i, (width, stride) in enumerate(zip(widths, strides), 1):
            layers = []
            for b in range(blocks):
                layers.append(BasicBlock(in_planes, width, stride if b == 0 else 1, norm, shortcut))
                in_planes = width
            self.add_module(f"layer{i}", nn.Sequential(*layers))
        self.out_dim = widths[-1]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)  # PaCo's _weights_init: fan_in, gain sqrt(2)

    def forward(self, x: torch.Tensor) -> BackboneOutput:
        dense = F.relu(self.bn1(self.conv1(x)))
        for i in range(1, self.num_stages + 1):
            dense = getattr(self, f"layer{i}")(dense)
        return BackboneOutput(dense, dense.mean(dim=(2, 3)))


class TorchvisionResNet(nn.Module):
    """A torchvision ResNet/ResNeXt without its pooling and classifier (7x7x2048 map on 224x224 input).

    Keeps torchvision's module names (``conv1``, ``bn1``, ``layer1..4``), which are also the
    names in PaCo's ImageNet-LT and iNaturalist checkpoints, and torchvision's initialisation.
    """

    def __init__(self, arch: str, in_channels: int) -> None:
        super().__init__()
        net = getattr(torchvision.models, arch)(weights=None)
        if in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.out_dim = net.fc.in_features
        if self.out_dim != TORCHVISION_DIMS[arch]:
            raise ValueError(f"{arch}: torchvision gives {self.out_dim} channels, lpa.models.dims says "
                             f"{TORCHVISION_DIMS[arch]}")  # fmt: skip

    def forward(self, x: torch.Tensor) -> BackboneOutput:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        dense = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return BackboneOutput(dense, dense.mean(dim=(2, 3)))


def build_backbone(cfg: ModelConfig) -> nn.Module:
    if cfg.arch == "resnet_cifar":
        return ResNetCifar(cfg.depth, tuple(cfg.widths), tuple(cfg.strides), cfg.in_channels, cfg.norm, cfg.shortcut)
    if cfg.arch in TORCHVISION_DIMS:
        return TorchvisionResNet(cfg.arch, cfg.in_channels)
    raise ValueError(f"unknown model arch {cfg.arch!r}; choose one of {', '.join(ARCHS)}")


def projection_head(in_dim: int, dims: tuple[int, ...], norm: str = "batch") -> nn.Sequential:
    """MoCo v2's MLP head as PaCo builds it (``moco/builder.py``, ``mlp=True``).

    Each hidden layer is Linear -> BatchNorm1d -> ReLU, then a Linear to ``dims[-1]``:
    ``(64, 32)`` on a 64-d feature is PaCo's CIFAR head, Linear(64, 64) -> BN(64) -> ReLU ->
    Linear(64, 32), whose modules are numbered 0, 1, 2, 3 as in PaCo's ``encoder_q.fc``.
    ``norm="group"`` swaps the BatchNorm for GroupNorm, as it does in the backbone.
    """
    layers: list[nn.Module] = []
    for d in dims[:-1]:
        layers += [nn.Linear(in_dim, d), norm_layer(norm, d, spatial=False), nn.ReLU(inplace=True)]
        in_dim = d
    layers.append(nn.Linear(in_dim, dims[-1]))
    return nn.Sequential(*layers)


class LongTailNet(nn.Module):
    """Backbone + linear classifier, and optionally PaCo's contrastive branch.

    The contrastive branch (``cfg.proj_dims`` non-empty) is a projection head on the pooled
    feature, a momentum key encoder (backbone + head, updated as an exponential moving average
    of the query encoder, He et al. MoCo 2020) and a ring-buffer queue of past keys and labels.

    As in PaCo's ``MoCo`` the queue starts full of random unit-variance columns
    (``randn(K, d)`` normalised over the K axis, so each row is short) with random labels, and
    ``queue_ptr`` is the next slot to overwrite; the contrast set has a fixed size from step 1.
    """

    def __init__(self, cfg: ModelConfig, num_classes: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = build_backbone(cfg)
        self.classifier = nn.Linear(self.backbone.out_dim, num_classes)
        self.contrastive = bool(cfg.proj_dims)
        if not self.contrastive:
            return
        if not 0 <= cfg.key_momentum < 1:
            raise ValueError(f"key_momentum must be in [0, 1), got {cfg.key_momentum}")
        self.projector = projection_head(self.backbone.out_dim, tuple(cfg.proj_dims), cfg.norm)
        if cfg.arch == "resnet_cifar":
            # PaCo's ResNet_s initialises its own fc (the head's last layer) with Kaiming-normal;
            # torchvision's fc keeps nn.Linear's default, as does PaCo's.
            nn.init.kaiming_normal_(self.projector[-1].weight)
        self.key_backbone = copy.deepcopy(self.backbone).requires_grad_(False)
        self.key_projector = copy.deepcopy(self.projector).requires_grad_(False)
        dim = cfg.proj_dims[-1]
        self.register_buffer("queue", F.normalize(torch.randn(cfg.queue_size, dim), dim=0))
        self.register_buffer("queue_labels", torch.randint(0, num_classes, (cfg.queue_size,)))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> ModelOutput:
        dense, pooled = self.backbone(x)
        # The projection runs inside forward so that DistributedDataParallel sees every trained weight.
        embedding = F.normalize(self.projector(pooled), dim=1) if self.contrastive else None
        return ModelOutput(dense, pooled, self.classifier(pooled), embedding)

    @torch.no_grad()
    def key_encode(self, x: torch.Tensor) -> KeyOutput:
        """Momentum-update the key encoder, then encode ``x``: its pooled feature and its
        L2-normalised projection, without gradient."""
        m = self.cfg.key_momentum
        for q_params, k_params in ((self.backbone, self.key_backbone), (self.projector, self.key_projector)):
            for q, k in zip(q_params.parameters(), k_params.parameters()):
                k.mul_(m).add_(q.detach(), alpha=1 - m)
        pooled = self.key_backbone(x).pooled
        return KeyOutput(pooled, F.normalize(self.key_projector(pooled), dim=1))

    def key_embed(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`key_encode`'s projection: (B, d), L2-normalised, no gradient."""
        return self.key_encode(x).embedding

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor, labels: torch.Tensor) -> None:
        """Overwrite the oldest slots with ``keys`` (n, d) and ``labels`` (n,), on the device."""
        size = self.queue.shape[0]
        if size == 0:
            return
        keys, labels = keys[-size:], labels[-size:]
        slots = (self.queue_ptr + torch.arange(keys.shape[0], device=keys.device)) % size
        self.queue[slots] = keys.detach().to(self.queue.dtype)
        self.queue_labels[slots] = labels
        self.queue_ptr.copy_((self.queue_ptr + keys.shape[0]) % size)
