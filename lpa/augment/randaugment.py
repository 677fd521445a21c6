"""timm's RandAugment as PaCo configures it (``rand-n2-m10-mstd0.5``), on both paths.

The ImageNet-LT and iNaturalist query views end with :func:`rand_augment`, timm's
``rand_augment_transform`` (``timm/data/auto_augment.py``), on the worker path.
:class:`RandAugmentBatch` is the recipe's step: on the worker path that transform, on the device
the same transform for an (N, C, H, W) batch of integer levels, each image with its own draws,
so that a device path for those recipes needs no PIL workers. What it reproduces, from timm:

- the 15 operations of ``_RAND_TRANSFORMS`` (:data:`NAMES`); two are drawn per image, uniformly
  and with replacement (``np.random.choice(ops, 2)``), and run in the order drawn;
- each is applied with probability 0.5, at a magnitude drawn per application from
  N(10, 0.5) clipped to [0, 10] (so half the time exactly 10);
- timm's level-to-argument functions of the non-"increasing" set: rotate +-30 degrees, shear
  +-0.3, translate +-0.45 of the image's own size (``TranslateXRel``: PaCo's ``translate_const``
  is not read by these), enhancement factor 0.1 + 1.8 m/10 (no sign), posterize to int(0.4 m)
  bits, solarize above int(25.6 m), SolarizeAdd of int(11 m) below 128; the signed ones get a
  random sign;
- geometric operations fill with the ImageNet mean colour and resample with BILINEAR or BICUBIC
  drawn per call (PaCo's hparams name no ``interpolation``, so timm picks from both).

Every operation gives PIL's integer result: the colour and lookup operations and the affine
transforms are :mod:`lpa.augment.colour`'s and :mod:`lpa.augment.geometry`'s.
``tests/test_augment_randaugment.py`` checks each against timm's function, whole calls against
timm's ``RandAugment`` replayed with the recorded draws, and the draws' distributions against
timm's own. As everywhere in :mod:`lpa.augment`, nothing is read back to the host on a GPU: every
operation runs on the whole batch and is kept where its mask is set.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from lpa.augment.batch import IMAGENET_MEAN_RGB, Tensor, apply_where, constant
from lpa.augment.colour import ENHANCE, UNARY_LUTS, posterize, solarize, solarize_add
from lpa.augment.geometry import affine_bicubic, affine_bilinear, rotation_matrix
from lpa.augment.steps import Draw, Step

# timm's _RAND_TRANSFORMS, in its order (the recorded op index points into this)
NAMES = ("AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd", "Color", "Contrast",
         "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")  # fmt: skip
SIGNED = ("Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")  # those whose level gets a random sign
GEOMETRIC = SIGNED  # those that resample (and so draw BILINEAR or BICUBIC)
BILINEAR, BICUBIC = 2, 3  # PIL's resampling codes, as recorded
NUM_LAYERS, PROB, MAGNITUDE, MAGNITUDE_STD = 2, 0.5, 10.0, 0.5  # rand-n2-m10-mstd0.5 (p 0.5 by default)
LEVEL_DENOM = 10.0  # timm's _LEVEL_DENOM: also the magnitude's upper clip (no mmax)
TRANSLATE_PCT = 0.45  # timm's default translate_pct for the *Rel translations


def rand_augment(size: int) -> Callable:
    """timm's RandAugment as PaCo configures it: ``rand-n2-m10-mstd0.5``, ImageNet-mean fill."""
    from timm.data.auto_augment import rand_augment_transform

    hparams = {"translate_const": int(size * 0.45), "img_mean": IMAGENET_MEAN_RGB}
    return rand_augment_transform("rand-n2-m10-mstd0.5", hparams)


class RandAugmentBatch(Step):
    """:func:`rand_augment` (timm's RandAugment) for a batch: (N, C, H, W) levels -> levels.

    ``size`` is the crop size PaCo configures the transform for; timm's "rand" operations
    translate by a fraction of each image's own size, so it does not change the result.
    Only RGB images are supported (the fill is the ImageNet mean colour).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.fill = tuple(IMAGENET_MEAN_RGB)

    def pil(self) -> Callable:
        return rand_augment(self.size)

    def draw(self, draw: Draw, h: int, w: int) -> tuple[Tensor, ...]:
        """Two layers; each records ``randaug_{op,applied,magnitude,negate,resample}{layer}``, all (N,).

        ``op`` indexes :data:`NAMES`; ``magnitude`` is clipped as timm clips it; ``negate`` and
        ``resample`` (PIL's code) are drawn for every image and matter only for the operations
        that use them (timm draws them only there, and only when the operation is applied).
        Returns per layer the operation (-1 where not applied), magnitude, negate and resample.
        """
        params = []
        for layer in range(NUM_LAYERS):
            op = draw.integers(f"randaug_op{layer}", len(NAMES))
            applied = draw.coin(f"randaug_applied{layer}", PROB)
            noise = torch.randn(draw.n, generator=draw.generator, device=draw.device, dtype=torch.float64)
            magnitude = (MAGNITUDE + noise * MAGNITUDE_STD).clamp(0, LEVEL_DENOM)  # random.gauss, clipped
            draw.keep(f"randaug_magnitude{layer}", magnitude)
            negate = draw.coin(f"randaug_negate{layer}", 0.5)
            bicubic = draw.rand() < 0.5
            resample = draw.keep(f"randaug_resample{layer}", torch.where(bicubic, BICUBIC, BILINEAR))
            params += [torch.where(applied, op, -1), magnitude, negate, resample]
        return tuple(params)

    def __call__(self, images: Tensor, *params: Tensor) -> Tensor:
        for layer in range(NUM_LAYERS):
            images = self.step(images, *params[4 * layer : 4 * layer + 4])
        return images

    def step(self, images: Tensor, op: Tensor, magnitude: Tensor, negate: Tensor, resample: Tensor) -> Tensor:
        """Apply operation ``op[n]`` (index into :data:`NAMES`; -1: none) at ``magnitude[n]``, all (N,).

        The arguments are timm's level functions computed in float64 in timm's order of
        operations, so that they equal Python's to the bit.
        """
        h, w = images.shape[-2:]
        fill = constant(self.fill[: images.shape[1]], images.device)
        is_op = lambda *names: torch.stack([op == NAMES.index(n) for n in names]).any(0)  # noqa: E731
        level = magnitude.double() / LEVEL_DENOM
        signed = torch.where(negate, -level, level)
        # the inverse affine matrices of the geometric operations, one per image
        one, zero = torch.ones_like(level), torch.zeros_like(level)
        pick = lambda name, value: torch.where(op == NAMES.index(name), value, zero)  # noqa: E731
        shear, shift = signed * 0.3, signed * TRANSLATE_PCT
        matrix = torch.stack([one, pick("ShearX", shear), pick("TranslateXRel", shift * w),
                              pick("ShearY", shear), one, pick("TranslateYRel", shift * h)], 1)  # fmt: skip
        # PIL's rotate takes the angle modulo 360 before it builds the matrix
        turned = rotation_matrix(torch.remainder(signed * 30.0, 360.0), h, w)
        matrix = torch.where(is_op("Rotate")[:, None], turned, matrix)
        geometric = is_op(*GEOMETRIC)
        for code, affine in ((BILINEAR, affine_bilinear), (BICUBIC, affine_bicubic)):
            images = apply_where(geometric & (resample == code), lambda x, m, f=affine: f(x, m, fill), images, matrix)
        factor = level * 1.8 + 0.1  # _enhance_level_to_arg: unsigned, 0.1 .. 1.9
        for name, enhance in ENHANCE.items():
            images = apply_where(is_op(name), enhance, images, factor)
        # 0 bits (m < 2.5, never drawn from N(10, 0.5)) gives black here; the installed Pillow 13 refuses it
        images = apply_where(is_op("Posterize"), posterize, images, torch.trunc(level * 4))
        images = apply_where(is_op("Solarize"), solarize, images, torch.trunc(level * 256).clamp_max(256))
        images = apply_where(is_op("SolarizeAdd"), solarize_add, images, torch.trunc(level * 110).clamp_max(128))
        for name, lut_op in UNARY_LUTS.items():
            images = apply_where(is_op(name), lut_op, images)
        return images
