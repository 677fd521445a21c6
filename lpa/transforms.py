"""Augmentation recipes by name: the query view, the key view and the evaluation transform.

The recipes are PaCo's, named after its ``--aug`` option (``PaCo/LT/paco_cifar.py``,
``paco_lt.py``) so that the two can be read side by side:

- ``cifar100`` (CIFAR100-LT). Query: RandomCrop(32, padding 4), flip, CIFAR10Policy (grey
  fill), ToTensor, Cutout(16). Key (``sim_cifar``): RandomResizedCrop(32, scale 0.2-1), flip,
  ColorJitter(0.4, 0.4, 0.4, 0.1) with p 0.8, grayscale p 0.2, PIL blur p 0.5.
- ``randclsstack_sim`` (ImageNet-LT). Query (``randclsstack``): RandomResizedCrop(224, scale
  0.08-1), flip, ColorJitter(0.4, 0.4, 0.4, 0) always, grayscale p 0.2, PIL blur p 0.5,
  RandAugment ``rand-n2-m10-mstd0.5``. Key (``sim``): RandomResizedCrop(224, scale 0.08-1),
  ColorJitter(0.4, 0.4, 0.4, 0) always, grayscale p 0.2, PIL blur p 0.5, flip.
- ``randcls_sim`` (iNaturalist 2018). Query (``randcls``): ``randclsstack`` without the
  grayscale and the blur. Key: ``sim``.
- ``digits`` (ours, for the 8x8 default dataset): small affine jitter; resized crop + rotation.

Every view ends with ToTensor and the dataset's normalisation (:data:`NORMALIZE`; PaCo's
per dataset). RandAugment is timm's ``rand_augment_transform``, from which PaCo's
``randaugment.py`` was copied (same ops, each applied with probability 0.5, magnitude 10 of
10 with Gaussian noise of std 0.5, fill = the ImageNet mean colour). The CIFAR AutoAugment
policy table is torchvision's (identical to PaCo's ``CIFAR10Policy``); its operations follow
PaCo's ``autoaug.py``, which differs from torchvision's AutoAugment in fill (grey 128, not
black), shear resampling (bicubic), sub-pixel translation and the solarize thresholds.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageFilter, ImageOps
from torchvision import transforms as T

Transform = Callable[..., torch.Tensor]

# mean, std per dataset, as PaCo's scripts normalise
NORMALIZE = {
    "digits": ((0.30,), (0.38,)),
    "cifar100": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),  # paco_cifar.py
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),  # paco_lt.py
    "inat": ((0.466, 0.471, 0.380), (0.195, 0.194, 0.192)),  # paco_lt.py --dataset inat
}
# recipe -> (default crop size, default normalisation)
RECIPES = {
    "digits": (8, "digits"),
    "cifar100": (32, "cifar100"),
    "randclsstack_sim": (224, "imagenet"),
    "randcls_sim": (224, "imagenet"),
}
IMAGENET_MEAN_RGB = tuple(min(255, round(255 * x)) for x in NORMALIZE["imagenet"][0])  # (124, 116, 104)


class TwoViews:
    """Return the query view and the key view of one image."""

    def __init__(self, query: Transform, key: Transform) -> None:
        self.query, self.key = query, key

    def __call__(self, image) -> tuple[torch.Tensor, torch.Tensor]:
        return self.query(image), self.key(image)


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


def _sign() -> int:
    return random.choice([-1, 1])


def _affine(image, matrix, fill, resample=Image.NEAREST):
    return image.transform(image.size, Image.AFFINE, matrix, resample, fillcolor=fill)


class CIFAR10Policy:
    """AutoAugment's CIFAR-10 policy with the operations of PaCo's ``autoaug.CIFAR10Policy``.

    One of the 25 sub-policies is drawn (Python's ``random``), and each of its two operations
    is applied with its probability, at magnitude bin ``m`` of the 10 in :attr:`BINS`: shear
    up to 0.3 (bicubic), translate up to 150/331 of the size, rotate up to 30 degrees (always
    counter-clockwise), colour / contrast / sharpness / brightness 1 +- up to 0.9, posterize
    to 8..4 bits, solarize above 256..0; the sign of a signed operation is drawn per call.
    """

    BINS = {
        "ShearX": np.linspace(0, 0.3, 10),
        "ShearY": np.linspace(0, 0.3, 10),
        "TranslateX": np.linspace(0, 150 / 331, 10),
        "TranslateY": np.linspace(0, 150 / 331, 10),
        "Rotate": np.linspace(0, 30, 10),
        "Color": np.linspace(0.0, 0.9, 10),
        "Contrast": np.linspace(0.0, 0.9, 10),
        "Sharpness": np.linspace(0.0, 0.9, 10),
        "Brightness": np.linspace(0.0, 0.9, 10),
        "Posterize": np.round(np.linspace(8, 4, 10)).astype(int),
        "Solarize": np.linspace(256, 0, 10),
    }
    OPS = {
        "ShearX": lambda im, v, fill: _affine(im, (1, v * _sign(), 0, 0, 1, 0), fill, Image.BICUBIC),
        "ShearY": lambda im, v, fill: _affine(im, (1, 0, 0, v * _sign(), 1, 0), fill, Image.BICUBIC),
        "TranslateX": lambda im, v, fill: _affine(im, (1, 0, v * im.size[0] * _sign(), 0, 1, 0), fill),
        "TranslateY": lambda im, v, fill: _affine(im, (1, 0, 0, 0, 1, v * im.size[1] * _sign()), fill),
        "Rotate": lambda im, v, fill: im.rotate(v, fillcolor=fill),
        "Color": lambda im, v, fill: ImageEnhance.Color(im).enhance(1 + v * _sign()),
        "Contrast": lambda im, v, fill: ImageEnhance.Contrast(im).enhance(1 + v * _sign()),
        "Sharpness": lambda im, v, fill: ImageEnhance.Sharpness(im).enhance(1 + v * _sign()),
        "Brightness": lambda im, v, fill: ImageEnhance.Brightness(im).enhance(1 + v * _sign()),
        "Posterize": lambda im, v, fill: ImageOps.posterize(im, int(v)),
        "Solarize": lambda im, v, fill: ImageOps.solarize(im, v),
        "AutoContrast": lambda im, v, fill: ImageOps.autocontrast(im),
        "Equalize": lambda im, v, fill: ImageOps.equalize(im),
        "Invert": lambda im, v, fill: ImageOps.invert(im),
    }

    def __init__(self, fill: tuple[int, int, int] = (128, 128, 128)) -> None:
        self.fill = fill
        # ((name, probability, magnitude bin or None), (...)) x 25, the table of the AutoAugment paper
        self.policies = T.AutoAugment(T.AutoAugmentPolicy.CIFAR10).policies

    def __call__(self, image: Image.Image) -> Image.Image:
        for name, p, m in self.policies[random.randint(0, len(self.policies) - 1)]:
            if random.random() < p:
                image = self.OPS[name](image, None if m is None else self.BINS[name][m], self.fill)
        return image

    def __repr__(self) -> str:
        return f"{type(self).__name__}(fill={self.fill})"


def rand_augment(size: int) -> Callable:
    """timm's RandAugment as PaCo configures it: ``rand-n2-m10-mstd0.5``, ImageNet-mean fill."""
    from timm.data.auto_augment import rand_augment_transform

    hparams = {"translate_const": int(size * 0.45), "img_mean": IMAGENET_MEAN_RGB}
    return rand_augment_transform("rand-n2-m10-mstd0.5", hparams)


def _jitter(p: float, hue: float) -> T.RandomApply:
    return T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, hue)], p=p)


def _views(recipe: str, size: int) -> tuple[list, list]:
    """The PIL part of the query and key views (before ToTensor)."""
    blur = T.RandomApply([PILGaussianBlur((0.1, 2.0))], p=0.5)
    if recipe == "digits":
        query = [T.RandomAffine(degrees=10, translate=(0.125, 0.125), scale=(0.9, 1.1))]
        key = [T.RandomResizedCrop(size, scale=(0.6, 1.0), ratio=(0.8, 1.25)), T.RandomAffine(degrees=15)]
        return query, key
    if recipe == "cifar100":
        query = [T.RandomCrop(size, padding=size // 8), T.RandomHorizontalFlip(), CIFAR10Policy()]
        key = [T.RandomResizedCrop(size, scale=(0.2, 1.0)), T.RandomHorizontalFlip(), _jitter(0.8, 0.1),
               T.RandomGrayscale(p=0.2), blur]  # fmt: skip
        return query, key
    sim = [T.RandomResizedCrop(size), _jitter(1.0, 0.0), T.RandomGrayscale(p=0.2), blur, T.RandomHorizontalFlip()]
    query = [T.RandomResizedCrop(size, scale=(0.08, 1.0)), T.RandomHorizontalFlip(), _jitter(1.0, 0.0)]
    if recipe == "randclsstack_sim":
        query += [T.RandomGrayscale(p=0.2), blur]
    return query + [rand_augment(size)], sim


def check_recipe(recipe: str, normalize: str | None) -> tuple[int, T.Normalize]:
    """The recipe's default crop size and its normalisation (``normalize`` or the recipe's dataset's)."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown augment recipe {recipe!r}; choose one of {sorted(RECIPES)}")
    size, default = RECIPES[recipe]
    name = normalize or default
    if name not in NORMALIZE:
        raise ValueError(f"unknown normalisation {name!r}; choose one of {sorted(NORMALIZE)}")
    return size, T.Normalize(*NORMALIZE[name])


def train_transform(recipe: str, two_views: bool, size: int | None = None, normalize: str | None = None) -> Transform:
    """The training transform: the query view, or (query, key) tensors when ``two_views``.

    ``size`` is the crop size (default 8 for digits, 32 for cifar100, 224 for the ImageNet
    recipes); ``normalize`` names the mean/std (default: the recipe's dataset).
    """
    default_size, norm = check_recipe(recipe, normalize)
    query, key = _views(recipe, size or default_size)
    cutout = [Cutout(16 * (size or default_size) // 32)] if recipe == "cifar100" else []  # zeroed before Normalize
    query = T.Compose(query + [T.ToTensor()] + cutout + [norm])
    return TwoViews(query, T.Compose(key + [T.ToTensor(), norm])) if two_views else query


def eval_transform(recipe: str, size: int | None = None, normalize: str | None = None) -> Transform:
    """Deterministic transform for features and evaluation (224 recipes: resize to size * 8/7, centre crop)."""
    default_size, norm = check_recipe(recipe, normalize)
    size = size or default_size
    resize = [T.Resize(size * 8 // 7), T.CenterCrop(size)] if default_size == 224 else []
    return T.Compose(resize + [T.ToTensor(), norm])


class DecodedCrops:
    """The workers' share of a 224 recipe when the rest of each view runs on the device.

    Each view's RandomResizedCrop and flip, taken from the recipe's own steps (the flip of
    PaCo's ``sim`` view comes last there, but it commutes with the colour operations and the
    blur), as (C, H, W) uint8 tensors: ``(query, key)``, or the query alone without ``two_views``.
    """

    GEOMETRY = (T.RandomResizedCrop, T.RandomHorizontalFlip)

    def __init__(self, query: list, key: list, two_views: bool = True) -> None:
        self.query, self.key = (T.Compose([t for t in view if isinstance(t, self.GEOMETRY)] + [T.PILToTensor()])
                                for view in (query, key))  # fmt: skip
        self.two_views = two_views

    def __call__(self, image: Image.Image):
        return (self.query(image), self.key(image)) if self.two_views else self.query(image)


def decode_crop_transform(recipe: str, two_views: bool = True, size: int | None = None) -> DecodedCrops:
    """:class:`DecodedCrops` for a 224 recipe (``randclsstack_sim``, ``randcls_sim``)."""
    default_size, _ = check_recipe(recipe, None)
    if default_size != 224:
        raise ValueError(f"recipe {recipe!r} reads small images in memory; decode + crop is for the 224 recipes")
    return DecodedCrops(*_views(recipe, size or default_size), two_views)
