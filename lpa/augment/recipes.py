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
per dataset). Each view is written once, as :mod:`lpa.augment.steps` (:func:`views`), and runs
on either path: :func:`train_transform` composes the steps' PIL transforms for the workers,
:class:`BatchRecipe` runs the same steps on a batch on the device. For the 224 recipes the two
paths can split a view: the workers decode, crop and flip (:func:`decode_crop_transform`), the
device runs the rest.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from PIL import Image
from torchvision import transforms as T

from lpa.augment.autoaugment import CIFAR10PolicyBatch
from lpa.augment.batch import NORMALIZE, Tensor
from lpa.augment.batch import normalize as normalize_levels
from lpa.augment.randaugment import RandAugmentBatch
from lpa.augment.sizes import DEFAULT_SIDES, RESIZING_RECIPES
from lpa.augment.steps import (
    ColorJitter,
    Cutout,
    Draw,
    RandomAffine,
    RandomBlur,
    RandomCrop,
    RandomFlip,
    RandomGrayscale,
    RandomResizedCrop,
    Step,
)

Transform = Callable[..., torch.Tensor]

# recipe -> (default crop size, default normalisation)
_NORMALIZATIONS = {"digits": "digits", "cifar100": "cifar100", "randclsstack_sim": "imagenet",
                   "randcls_sim": "imagenet"}  # fmt: skip
RECIPES = {name: (DEFAULT_SIDES[name], norm) for name, norm in _NORMALIZATIONS.items()}
DEVICE_RECIPES = ("digits", "cifar100")  # in-memory images: the whole recipe runs on the device
CROP_RECIPES = RESIZING_RECIPES  # JPEGs: workers decode and crop, the rest runs on the device


def views(recipe: str, size: int) -> tuple[list[Step], list[Step]]:
    """The query view's steps and the key view's, PaCo's in PaCo's order (before ToTensor but Cutout)."""
    if recipe == "digits":
        query = [RandomAffine(10, translate=0.125, scale=(0.9, 1.1))]
        return query, [RandomResizedCrop(size, scale=(0.6, 1.0), ratio=(0.8, 1.25)), RandomAffine(15)]
    if recipe == "cifar100":  # regular, sim_cifar
        query = [RandomCrop(size, padding=size // 8), RandomFlip(), CIFAR10PolicyBatch(), Cutout(16 * size // 32)]
        key = [RandomResizedCrop(size, scale=(0.2, 1.0)), RandomFlip("key_flip"), ColorJitter(0.8, 0.4, 0.1),
               RandomGrayscale(0.2), RandomBlur(0.5)]  # fmt: skip
        return query, key
    # randclsstack / randcls, and sim (whose flip comes last)
    sim = [RandomResizedCrop(size, scale=(0.08, 1.0)), ColorJitter(1.0, 0.4, 0.0), RandomGrayscale(0.2),
           RandomBlur(0.5), RandomFlip("key_flip")]  # fmt: skip
    stack = [RandomGrayscale(0.2), RandomBlur(0.5)] if recipe == "randclsstack_sim" else []
    query = [RandomResizedCrop(size, scale=(0.08, 1.0)), RandomFlip(), ColorJitter(1.0, 0.4, 0.0), *stack,
             RandAugmentBatch(size)]  # fmt: skip
    return query, sim


def check_recipe(recipe: str, normalize: str | None) -> tuple[int, T.Normalize]:
    """The recipe's default crop size and its normalisation (``normalize`` or the recipe's dataset's)."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown augment recipe {recipe!r}; choose one of {sorted(RECIPES)}")
    size, default = RECIPES[recipe]
    name = normalize or default
    if name not in NORMALIZE:
        raise ValueError(f"unknown normalisation {name!r}; choose one of {sorted(NORMALIZE)}")
    return size, T.Normalize(*NORMALIZE[name])


# ---------------------------------------------------------------------------------------------
# The worker path: image by image, PIL
# ---------------------------------------------------------------------------------------------


class TwoViews:
    """Return the query view and the key view of one image."""

    def __init__(self, query: Transform, key: Transform) -> None:
        self.query, self.key = query, key

    def __call__(self, image) -> tuple[torch.Tensor, torch.Tensor]:
        return self.query(image), self.key(image)


def _worker_view(steps: list[Step], norm: T.Normalize) -> T.Compose:
    """The steps' PIL transforms, ToTensor, the steps that run on the tensor (Cutout), Normalize."""
    on_tensor = [step.pil() for step in steps if step.on_tensor]
    return T.Compose([step.pil() for step in steps if not step.on_tensor] + [T.ToTensor()] + on_tensor + [norm])


def train_transform(recipe: str, two_views: bool, size: int | None = None, normalize: str | None = None) -> Transform:
    """The training transform: the query view, or (query, key) tensors when ``two_views``.

    ``size`` is the crop size (default 8 for digits, 32 for cifar100, 224 for the ImageNet
    recipes); ``normalize`` names the mean/std (default: the recipe's dataset).
    """
    default_size, norm = check_recipe(recipe, normalize)
    query, key = views(recipe, size or default_size)
    query_view = _worker_view(query, norm)
    return TwoViews(query_view, _worker_view(key, norm)) if two_views else query_view


def eval_transform(recipe: str, size: int | None = None, normalize: str | None = None) -> Transform:
    """Deterministic transform for features and evaluation (224 recipes: resize to size * 8/7, centre crop)."""
    default_size, norm = check_recipe(recipe, normalize)
    size = size or default_size
    resize = [T.Resize(size * 8 // 7), T.CenterCrop(size)] if default_size == 224 else []
    return T.Compose(resize + [T.ToTensor(), norm])


class DecodedCrops:
    """The workers' share of a 224 recipe when the rest of each view runs on the device.

    Each view's RandomResizedCrop and flip (the recipe's :attr:`~lpa.augment.steps.Step.geometry`
    steps; the flip of PaCo's ``sim`` view comes last there, but it commutes with the colour
    operations and the blur), as (C, H, W) uint8 tensors: ``(query, key)``, or the query alone
    without ``two_views``. ``query`` and ``key`` are those steps' PIL transforms.
    """

    def __init__(self, query: list, key: list, two_views: bool = True) -> None:
        self.query, self.key = (T.Compose(view + [T.PILToTensor()]) for view in (query, key))
        self.two_views = two_views

    def __call__(self, image: Image.Image):
        return (self.query(image), self.key(image)) if self.two_views else self.query(image)


def decode_crop_transform(recipe: str, two_views: bool = True, size: int | None = None) -> DecodedCrops:
    """:class:`DecodedCrops` for a 224 recipe (``randclsstack_sim``, ``randcls_sim``)."""
    default_size, _ = check_recipe(recipe, None)
    if default_size != 224:
        raise ValueError(f"recipe {recipe!r} reads small images in memory; decode + crop is for the 224 recipes")
    query, key = ([step.pil() for step in view if step.geometry] for view in views(recipe, size or default_size))
    return DecodedCrops(query, key, two_views)


# ---------------------------------------------------------------------------------------------
# The device path: a batch at once
# ---------------------------------------------------------------------------------------------


class BatchRecipe:
    """:func:`train_transform` for a batch on its device: uint8 levels -> normalised views.

    For :data:`DEVICE_RECIPES` the input is the (N, C, H, W) images, and the whole recipe runs
    here. For :data:`CROP_RECIPES` it is what :class:`DecodedCrops` made in the workers, each
    view's crop and flip, ``(query crops, key crops)`` (or the query crops alone without
    ``two_views``), and the rest of the view runs here: colour jitter, greyscale, blur and
    RandAugment. Returns the query view, or (query, key) when ``two_views``; a dict passed as
    ``record`` receives every random draw by view and name (for the tests).

    Every draw of a batch is made first (:meth:`draw`), then the images are made from them
    (:meth:`apply`, a function of tensors alone). With ``compile`` that function runs through
    ``torch.compile``: it fuses the hundreds of small operations of a batch into a few kernels,
    whose launches, not their arithmetic, would otherwise set a GPU's rate.
    """

    def __init__(self, recipe: str, two_views: bool, size: int | None = None, normalize: str | None = None,
                 compile: bool = False) -> None:  # fmt: skip
        if recipe not in DEVICE_RECIPES + CROP_RECIPES:
            with_one = list(DEVICE_RECIPES + CROP_RECIPES)
            raise ValueError(f"recipe {recipe!r} has no device path; those with one: {with_one}")
        default_size, norm = check_recipe(recipe, normalize)
        self.recipe, self.two_views, self.size = recipe, two_views, size or default_size
        self.mean, self.std = tuple(norm.mean), tuple(norm.std)
        here = [[step for step in view if recipe in DEVICE_RECIPES or not step.geometry]
                for view in views(recipe, self.size)]  # fmt: skip
        self.views = dict(zip(("query", "key"), here[: 1 + two_views]))
        self.compiled = torch.compile(self.apply, dynamic=False) if compile else self.apply

    def draw(self, inputs: tuple[Tensor, ...], generator: torch.Generator, record: dict | None = None) -> dict:
        """Every step's parameters for this batch, by view: the query's first, then the key's."""
        params = {}
        for (view, steps), images in zip(self.views.items(), inputs):
            draw = Draw(generator, len(images), images.device, None if record is None else record.setdefault(view, {}))
            h, w = images.shape[-2:]
            params[view] = []
            for step in steps:
                params[view].append(step.draw(draw, h, w))
                h, w = (step.size, step.size) if step.size else (h, w)
        return params

    def apply(self, inputs: tuple[Tensor, ...], params: dict) -> tuple[Tensor, ...]:
        """The views from the input levels and the draws."""
        out = []
        for (view, steps), images in zip(self.views.items(), inputs):
            images = images.float()
            for step, drawn in zip(steps, params[view]):
                images = step(images, *drawn)
            out.append(self.normalize(images))
        return tuple(out)

    def normalize(self, levels: Tensor) -> Tensor:
        """ToTensor + Normalize: levels / 255, minus the mean, over the std (float32, as torchvision)."""
        return normalize_levels(levels, self.mean, self.std)

    def __call__(self, images: Tensor | tuple[Tensor, Tensor], generator: torch.Generator, record: dict | None = None):
        inputs = images if isinstance(images, tuple) else (images, images)
        inputs = inputs[: 1 + self.two_views]
        out = self.compiled(inputs, self.draw(inputs, generator, record))
        return out if self.two_views else out[0]
