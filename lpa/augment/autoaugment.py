"""AutoAugment's CIFAR-10 policy with the operations of PaCo's ``autoaug.py``, on both paths.

The query view of ``cifar100`` (PaCo's ``regular``). :class:`CIFAR10Policy` is PaCo's PIL
transform (the worker path): one of the 25 sub-policies of torchvision's table drawn per image,
each of its two operations applied with its probability. :class:`CIFAR10PolicyBatch` is the
recipe's step: on the worker path it is that transform, on the device the same policy for a
batch with the kernels of :mod:`lpa.augment.geometry` and :mod:`lpa.augment.colour`. PaCo's
operations differ from torchvision's AutoAugment in fill (grey 128, not black), shear
resampling (bicubic), sub-pixel translation and the solarize thresholds.
"""

from __future__ import annotations

import random

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageOps
from torchvision import transforms as T

from lpa.augment.batch import Tensor, apply_where, constant
from lpa.augment.colour import ENHANCE, UNARY_LUTS, posterize, solarize
from lpa.augment.geometry import affine_bicubic, affine_nearest, rotation_matrix
from lpa.augment.steps import Draw, Step


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


class CIFAR10PolicyBatch(Step):
    """:class:`CIFAR10Policy` as a step; on the device one sub-policy per image, its two operations in turn."""

    NAMES = tuple(CIFAR10Policy.OPS)  # op index -> name

    def __init__(self, fill: tuple[int, ...] = (128, 128, 128)) -> None:
        policies = CIFAR10Policy().policies
        self.fill = fill
        self.ops = tuple(tuple(self.NAMES.index(name) for name, _, _ in sub) for sub in policies)
        self.probs = tuple(tuple(p for _, p, _ in sub) for sub in policies)
        self.values = tuple(
            tuple(0.0 if m is None else float(CIFAR10Policy.BINS[name][m]) for name, _, m in sub) for sub in policies
        )

    def pil(self) -> CIFAR10Policy:
        return CIFAR10Policy(self.fill)

    def draw(self, draw: Draw, h: int, w: int) -> tuple[Tensor, ...]:
        """Per stage: the operation (-1 where the sub-policy's coin says no), its value and its sign."""
        device = draw.device
        chosen = draw.integers("policy", len(self.ops))
        params = []
        for stage in range(2):
            op = constant(self.ops, device, torch.long)[chosen, stage]
            probability = constant(self.probs, device, torch.float64)[chosen, stage]
            applied = draw.keep(f"policy_applied{stage}", draw.rand(dtype=torch.float64) < probability)
            sign = torch.where(draw.coin(f"policy_sign{stage}", 0.5), -1.0, 1.0).double()
            value = constant(self.values, device, torch.float64)[chosen, stage]
            params += [torch.where(applied, op, -1), value, sign]
        return tuple(params)

    def __call__(self, images: Tensor, *params: Tensor) -> Tensor:
        for stage in range(2):
            images = self.step(images, *params[3 * stage : 3 * stage + 3])
        return images

    def step(self, images: Tensor, op: Tensor, value: Tensor, sign: Tensor) -> Tensor:
        """Apply operation ``op[n]`` (index into :attr:`NAMES`, -1: none) at ``value[n]``, ``sign[n]``."""
        h, w = images.shape[-2:]
        fill = constant(tuple(self.fill[: images.shape[1]]), images.device, images.dtype)
        is_op = lambda *names: torch.stack([op == self.NAMES.index(n) for n in names]).any(0)  # noqa: E731
        one, zero, signed = torch.ones_like(value), torch.zeros_like(value), value * sign
        shear = torch.stack([one, torch.where(op == self.NAMES.index("ShearX"), signed, zero), zero,
                             torch.where(op == self.NAMES.index("ShearY"), signed, zero), one, zero], 1)  # fmt: skip
        shift = torch.stack([one, zero, torch.where(op == self.NAMES.index("TranslateX"), signed * w, zero),
                             zero, one, torch.where(op == self.NAMES.index("TranslateY"), signed * h, zero)],
                            1)  # fmt: skip
        nearest = torch.where(is_op("Rotate")[:, None], rotation_matrix(value, h, w), shift)
        images = apply_where(is_op("ShearX", "ShearY"), lambda x, m: affine_bicubic(x, m, fill), images, shear)
        images = apply_where(is_op("TranslateX", "TranslateY", "Rotate"),
                             lambda x, m: affine_nearest(x, m, fill), images, nearest)  # fmt: skip
        for name, enhance in ENHANCE.items():
            images = apply_where(is_op(name), enhance, images, 1 + signed)
        images = apply_where(is_op("Posterize"), posterize, images, value)
        images = apply_where(is_op("Solarize"), solarize, images, value)
        for name, lut_op in UNARY_LUTS.items():
            images = apply_where(is_op(name), lut_op, images)
        return images
