"""The augmentation recipes' public names (the recipes themselves are :mod:`lpa.augment.recipes`).

A face kept for code written against ``lpa.transforms``: the worker path's
:func:`train_transform`, :func:`eval_transform` and :func:`decode_crop_transform`, the tables of
recipes and normalisations, and PaCo's PIL transforms.
"""

from lpa.augment.autoaugment import CIFAR10Policy
from lpa.augment.batch import IMAGENET_MEAN_RGB, NORMALIZE
from lpa.augment.pil import Cutout, PILGaussianBlur
from lpa.augment.randaugment import rand_augment
from lpa.augment.recipes import (
    RECIPES,
    DecodedCrops,
    Transform,
    TwoViews,
    check_recipe,
    decode_crop_transform,
    eval_transform,
    train_transform,
)

__all__ = [
    "CIFAR10Policy",
    "Cutout",
    "DecodedCrops",
    "IMAGENET_MEAN_RGB",
    "NORMALIZE",
    "PILGaussianBlur",
    "RECIPES",
    "Transform",
    "TwoViews",
    "check_recipe",
    "decode_crop_transform",
    "eval_transform",
    "rand_augment",
    "train_transform",
]
