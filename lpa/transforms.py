"""Augmentation recipes by name: the query view, PaCo's key view and the evaluation transform."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchvision import transforms as T

Transform = Callable[..., torch.Tensor]

_NORMALIZE = {
    "digits": T.Normalize((0.30,), (0.38,)),
    "cifar": T.Normalize((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "imagenet": T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


class TwoViews:
    """Return the query view and the key view of one image."""

    def __init__(self, query: Transform, key: Transform) -> None:
        self.query, self.key = query, key

    def __call__(self, image) -> tuple[torch.Tensor, torch.Tensor]:
        return self.query(image), self.key(image)


_SIZE = {"digits": 8, "cifar": 32, "imagenet": 224}


def _query(recipe: str, size: int) -> list:
    if recipe == "digits":
        return [T.RandomAffine(degrees=10, translate=(0.125, 0.125), scale=(0.9, 1.1))]
    if recipe == "cifar":
        return [T.RandomCrop(size, padding=size // 8), T.RandomHorizontalFlip(),
                T.AutoAugment(T.AutoAugmentPolicy.CIFAR10)]  # fmt: skip
    return [T.RandomResizedCrop(size), T.RandomHorizontalFlip(), T.RandAugment(num_ops=2, magnitude=10)]


def _key(recipe: str, size: int) -> list:
    if recipe == "digits":
        return [T.RandomResizedCrop(size, scale=(0.6, 1.0), ratio=(0.8, 1.25)), T.RandomAffine(degrees=15)]
    return [
        T.RandomResizedCrop(size, scale=(0.2, 1.0)),
        T.RandomHorizontalFlip(),
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        T.RandomGrayscale(p=0.2),
        T.RandomApply([T.GaussianBlur(max(3, size // 10) | 1, sigma=(0.1, 2.0))], p=0.5),
    ]


def _check(recipe: str) -> None:
    if recipe not in _NORMALIZE:
        raise ValueError(f"unknown augment recipe {recipe!r}; choose one of {sorted(_NORMALIZE)}")


def train_transform(recipe: str, two_views: bool, size: int | None = None) -> Transform:
    """The training transform: one tensor, or (query, key) tensors when ``two_views``.

    ``size`` is the crop size (default 8 for digits, 32 for cifar, 224 for imagenet).
    """
    _check(recipe)
    size = size or _SIZE[recipe]
    tail = [T.ToTensor(), _NORMALIZE[recipe]]
    # A fixed square of a quarter of the area stands in for Cutout(16) on 32x32 (DeVries & Taylor, 2017).
    cutout = [T.RandomErasing(p=1.0, scale=(0.25, 0.25), ratio=(1.0, 1.0))] if recipe == "cifar" else []
    query = T.Compose(_query(recipe, size) + tail + cutout)
    return TwoViews(query, T.Compose(_key(recipe, size) + tail)) if two_views else query


def eval_transform(recipe: str, size: int | None = None) -> Transform:
    """Deterministic transform for features and evaluation (imagenet: resize to size * 8/7, centre crop)."""
    _check(recipe)
    size = size or _SIZE[recipe]
    resize = [T.Resize(size * 8 // 7), T.CenterCrop(size)] if recipe == "imagenet" else []
    return T.Compose(resize + [T.ToTensor(), _NORMALIZE[recipe]])
