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


def _query(recipe: str) -> list:
    if recipe == "digits":
        return [T.RandomAffine(degrees=10, translate=(0.125, 0.125), scale=(0.9, 1.1))]
    if recipe == "cifar":
        # RandomErasing of a fixed 16x16 square stands in for Cutout(16) (DeVries & Taylor, 2017).
        return [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.AutoAugment(T.AutoAugmentPolicy.CIFAR10)]
    return [T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.RandAugment(num_ops=2, magnitude=10)]


def _key(recipe: str) -> list:
    if recipe == "digits":
        return [T.RandomResizedCrop(8, scale=(0.6, 1.0), ratio=(0.8, 1.25)), T.RandomAffine(degrees=15)]
    size = 32 if recipe == "cifar" else 224
    return [
        T.RandomResizedCrop(size, scale=(0.2, 1.0)),
        T.RandomHorizontalFlip(),
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        T.RandomGrayscale(p=0.2),
        T.RandomApply([T.GaussianBlur(3 if recipe == "cifar" else 23, sigma=(0.1, 2.0))], p=0.5),
    ]


def _check(recipe: str) -> None:
    if recipe not in _NORMALIZE:
        raise ValueError(f"unknown augment recipe {recipe!r}; choose one of {sorted(_NORMALIZE)}")


def train_transform(recipe: str, two_views: bool) -> Transform:
    """The training transform: one tensor, or (query, key) tensors when ``two_views``."""
    _check(recipe)
    tail = [T.ToTensor(), _NORMALIZE[recipe]]
    query_tail = tail + ([T.RandomErasing(p=1.0, scale=(0.25, 0.25), ratio=(1.0, 1.0))] if recipe == "cifar" else [])
    query = T.Compose(_query(recipe) + query_tail)
    return TwoViews(query, T.Compose(_key(recipe) + tail)) if two_views else query


def eval_transform(recipe: str) -> Transform:
    _check(recipe)
    resize = [T.Resize(256), T.CenterCrop(224)] if recipe == "imagenet" else []
    return T.Compose(resize + [T.ToTensor(), _NORMALIZE[recipe]])
