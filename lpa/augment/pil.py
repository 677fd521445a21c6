"""The worker path's transforms that torchvision lacks, as PaCo's code defines them.

PIL's Gaussian blur with a radius drawn per call (PaCo's ``moco.loader.GaussianBlur``) and
Cutout (PaCo's, on the tensor after ToTensor). Their draws come from Python's and numpy's global
generators, as PaCo's, which the data loader seeds per image. Each is the worker side of a
step of :mod:`lpa.augment.steps`, whose device side reproduces it on a batch.
"""

from __future__ import annotations

import random

import numpy as np
import torch
from PIL import Image, ImageFilter


class PILGaussianBlur:
    """PIL's Gaussian blur with a radius drawn uniformly from ``sigma`` (PaCo's ``moco.loader.GaussianBlur``)."""

    def __init__(self, sigma: tuple[float, float] = (0.1, 2.0)) -> None:
        self.sigma = sigma

    def __call__(self, image: Image.Image) -> Image.Image:
        return image.filter(ImageFilter.GaussianBlur(radius=random.uniform(*self.sigma)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sigma={self.sigma})"


class Cutout:
    """Zero one ``length`` x ``length`` square of a (C, H, W) tensor (DeVries & Taylor, 2017, as PaCo).

    The centre is drawn anywhere in the image (numpy's global generator) and the square is
    clipped at the border, so its mean area on 32x32 is about 196 pixels, not 256.
    """

    def __init__(self, length: int = 16) -> None:
        self.length = length

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2:]
        y, x = np.random.randint(h), np.random.randint(w)
        half = self.length // 2
        image = image.clone()
        image[..., max(0, y - half) : min(h, y + half), max(0, x - half) : min(w, x + half)] = 0
        return image

    def __repr__(self) -> str:
        return f"{type(self).__name__}(length={self.length})"
