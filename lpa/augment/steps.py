"""The random steps of the recipes: each draws its parameters, and runs on either path.

A :class:`Step` is one transform of a view, written once for both paths. ``pil()`` gives the
worker path's transform (torchvision's, or PaCo's from :mod:`lpa.augment.pil`), which draws
from the global generators image by image; on the device the step draws its parameters for the
whole batch from a device generator (``draw``, through :class:`Draw`, before any image is
touched), then applies them (calling it, with the kernels of :mod:`lpa.augment.geometry` and
:mod:`lpa.augment.colour`). A recipe's image work is so a function of the images and the draws
alone, which ``torch.compile`` can fuse (:class:`lpa.augment.recipes.BatchRecipe`). The device
draws follow the same distributions as torchvision's and PaCo's
(``tests/test_augment_replay.py``).
"""

from __future__ import annotations

import math

import torch
from torchvision import transforms as T

from lpa.augment.batch import Tensor, apply_where
from lpa.augment.colour import brightness, contrast, gaussian_blur, grayscale, hue, saturation
from lpa.augment.geometry import affine_matrix, affine_nearest, hflip, pad_crop, resized_crop
from lpa.augment.pil import Cutout as PILCutout
from lpa.augment.pil import PILGaussianBlur

# ---------------------------------------------------------------------------------------------
# Random draws, as torchvision's and PaCo's transforms draw them
# ---------------------------------------------------------------------------------------------


def _uniform(generator: torch.Generator, n: int, low, high, device) -> Tensor:
    return torch.rand(n, generator=generator, device=device, dtype=torch.float64) * (high - low) + low


def _randint(generator: torch.Generator, high: Tensor) -> Tensor:
    """One uniform integer in [0, high) per entry of ``high`` (a long tensor)."""
    u = torch.rand(high.shape, generator=generator, device=high.device, dtype=torch.float64)
    return (u * high).long().clamp_max(high - 1)


def _coin(generator: torch.Generator, n: int, p: float, device) -> Tensor:
    return torch.rand(n, generator=generator, device=device) < p


def resized_crop_boxes(
    generator: torch.Generator, n: int, h: int, w: int, scale: tuple[float, float], ratio: tuple[float, float],
    device: torch.device,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:  # fmt: skip
    """torchvision's ``RandomResizedCrop.get_params`` for ``n`` images: (top, left, height, width), each (N,).

    Ten tries of (area fraction, log-uniform aspect ratio), the first that fits, else the
    central crop of the closest aspect ratio.
    """
    tries = 10
    area = h * w * _uniform(generator, n * tries, *scale, device).view(n, tries)
    log_ratio = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(_uniform(generator, n * tries, *log_ratio, device).view(n, tries))
    cw = torch.round(torch.sqrt(area * aspect)).long()  # Python's round(): half to even, as torch's
    ch = torch.round(torch.sqrt(area / aspect)).long()
    fits = (cw > 0) & (cw <= w) & (ch > 0) & (ch <= h)
    found = fits.any(1)
    first = torch.where(found, fits.long().argmax(1), 0)[:, None]
    cw, ch = cw.gather(1, first).squeeze(1), ch.gather(1, first).squeeze(1)
    top = _randint(generator, h - ch + 1)
    left = _randint(generator, w - cw + 1)
    # the fallback: a central crop
    in_ratio = w / h
    if in_ratio < min(ratio):
        fw, fh = w, int(round(w / min(ratio)))
    elif in_ratio > max(ratio):
        fw, fh = int(round(h * max(ratio))), h
    else:
        fw, fh = w, h
    return (
        torch.where(found, top, (h - fh) // 2),
        torch.where(found, left, (w - fw) // 2),
        torch.where(found, ch, fh),
        torch.where(found, cw, fw),
    )


class Draw:
    """Random numbers for one batch from a device generator, each recorded by name when ``record`` is a dict."""

    def __init__(self, generator: torch.Generator, n: int, device: torch.device, record: dict | None = None) -> None:
        self.generator, self.n, self.device, self.record = generator, n, device, record

    def keep(self, name: str, value: Tensor) -> Tensor:
        if self.record is not None:
            self.record[name] = value
        return value

    def rand(self, *shape: int, dtype: torch.dtype = torch.float32) -> Tensor:
        """(N, *shape) uniform numbers in [0, 1), unnamed (a step derives its named draw from them)."""
        return torch.rand(self.n, *shape, generator=self.generator, device=self.device, dtype=dtype)

    def uniform(self, name: str, low: float, high: float) -> Tensor:
        return self.keep(name, _uniform(self.generator, self.n, low, high, self.device))

    def coin(self, name: str, p: float) -> Tensor:
        return self.keep(name, _coin(self.generator, self.n, p, self.device))

    def integers(self, name: str, high: int) -> Tensor:
        return self.keep(name, _randint(self.generator, torch.full((self.n,), high, device=self.device)))


# ---------------------------------------------------------------------------------------------
# The steps. Each draws its parameters for the whole batch before any image is touched
# (``draw``), and applies them (calling it); ``pil()`` is the same step on the worker path.
# ---------------------------------------------------------------------------------------------


class Step:
    """One step of a view, for both paths.

    ``size`` is the side of its output where it crops (else None); ``geometry`` marks the crop
    and flip steps, which the workers run on the decoded image when a 224 recipe is split
    between workers and device (:func:`lpa.augment.recipes.decode_crop_transform`);
    ``on_tensor`` a step the worker path runs after ToTensor (PaCo's Cutout).
    """

    size: int | None = None
    geometry: bool = False
    on_tensor: bool = False

    def pil(self):
        """The worker path's transform of one image (PIL, or a tensor where ``on_tensor``)."""
        raise NotImplementedError

    def draw(self, draw: Draw, h: int, w: int) -> tuple[Tensor, ...]:
        """The step's random parameters for a batch of h x w images, each (N, ...)."""
        return ()

    def __call__(self, images: Tensor, *params: Tensor) -> Tensor:
        raise NotImplementedError

    def run(self, images: Tensor, draw: Draw) -> Tensor:
        """Draw, then apply: the step on its own."""
        return self(images, *self.draw(draw, *images.shape[-2:]))


class RandomCrop(Step):
    """torchvision's RandomCrop(size, padding) (zero padding)."""

    def __init__(self, size: int, padding: int) -> None:
        self.size, self.padding = size, padding

    def pil(self) -> T.RandomCrop:
        return T.RandomCrop(self.size, padding=self.padding)

    def draw(self, draw: Draw, h: int, w: int) -> tuple[Tensor, ...]:
        pad = 2 * self.padding - self.size + 1
        return draw.integers("crop_top", h + pad), draw.integers("crop_left", w + pad)

    def __call__(self, images: Tensor, top: Tensor, left: Tensor) -> Tensor:
        return pad_crop(images, top, left, self.size, self.padding)


class RandomResizedCrop(Step):
    """torchvision's RandomResizedCrop(size, scale, ratio), PIL's bilinear resize."""

    geometry = True

    def __init__(self, size: int, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)) -> None:
        self.size, self.scale, self.ratio = size, scale, ratio

    def pil(self) -> T.RandomResizedCrop:
        return T.RandomResizedCrop(self.size, scale=self.scale, ratio=self.ratio)

    def draw(self, draw: Draw, h: int, w: int) -> tuple[Tensor, ...]:
        boxes = resized_crop_boxes(draw.generator, draw.n, h, w, self.scale, self.ratio, draw.device)
        return tuple(draw.keep(f"box_{name}", v) for name, v in zip(("top", "left", "height", "width"), boxes))

    def __call__(self, images: Tensor, top: Tensor, left: Tensor, height: Tensor, width: Tensor) -> Tensor:
        return resized_crop(images, top, left, height, width, self.size)


class RandomFlip(Step):
    """torchvision's RandomHorizontalFlip (p 0.5); ``name`` is its draw's."""

    geometry = True

    def __init__(self, name: str = "flip") -> None:
        self.name = name

    def pil(self) -> T.RandomHorizontalFlip:
        return T.RandomHorizontalFlip()

    def draw(self, draw: Draw, h: int, w: int) -> tuple[Tensor, ...]:
        return (draw.coin(self.name, 0.5),)

    def __call__(self, images: Tensor, flipped: Tensor) -> Tensor:
        return apply_where(flipped, hflip, images)


class RandomAffine(Step):
    """torchvision's RandomAffine on a PIL image (nearest, black fill): integer shifts of up to translate x size."""

    def __init__(self, degrees: float, translate: float = 0.0, scale: tuple[float, float] = (1.0, 1.0)) -> None:
        self.degrees, self.translate, self.scale = degrees, translate, scale

    def pil(self) -> T.RandomAffine:
        # None, not 0 or (1, 1): torchvision then draws no shift or scale, as the worker recipe always did
        translate = (self.translate, self.translate) if self.translate else None
        return T.RandomAffine(self.degrees, translate=translate, scale=None if self.scale == (1.0, 1.0) else self.scale)

    def draw(self, draw: Draw, h: int, w: int) -> tuple[Tensor, ...]:
        angle = draw.uniform("affine_angle", -self.degrees, self.degrees)
        tx = torch.round(draw.uniform("affine_tx", -self.translate * w, self.translate * w))
        ty = torch.round(draw.uniform("affine_ty", -self.translate * h, self.translate * h))
        return (affine_matrix(angle, tx, ty, draw.uniform("affine_scale", *self.scale), h, w),)

    def __call__(self, images: Tensor, matrix: Tensor) -> Tensor:
        return affine_nearest(images, matrix, torch.zeros(images.shape[1], device=images.device))


JITTER_OPS = (brightness, contrast, saturation, hue)  # torchvision ColorJitter's fn_idx order


class ColorJitter(Step):
    """RandomApply([ColorJitter(s, s, s, hue)], p): the four adjustments in a random order per image."""

    def __init__(self, p: float, strength: float, hue_range: float) -> None:
        self.p, self.strength, self.hue_range = p, strength, hue_range

    def pil(self) -> T.RandomApply:
        s = self.strength
        return T.RandomApply([T.ColorJitter(s, s, s, self.hue_range)], p=self.p)

    def draw(self, draw: Draw, h: int, w: int) -> tuple[Tensor, ...]:
        applied = draw.coin("jitter", self.p)
        order = draw.keep("jitter_order", draw.rand(4).argsort(1))
        s = self.strength
        factors = [draw.uniform(f"jitter_{name}", 1 - s, 1 + s) for name in ("b", "c", "s")]
        return applied, order, *factors, draw.uniform("jitter_h", -self.hue_range, self.hue_range)

    def __call__(self, images: Tensor, applied: Tensor, order: Tensor, *factors: Tensor) -> Tensor:
        for position in range(4):
            for index, op in enumerate(JITTER_OPS):
                if op is hue and self.hue_range == 0:
                    continue  # torchvision skips a hue of 0
                images = apply_where(applied & (order[:, position] == index), op, images, factors[index])
        return images


class RandomGrayscale(Step):
    """torchvision's RandomGrayscale(p) of a PIL RGB image: three equal channels."""

    def __init__(self, p: float) -> None:
        self.p = p

    def pil(self) -> T.RandomGrayscale:
        return T.RandomGrayscale(p=self.p)

    def draw(self, draw: Draw, h: int, w: int) -> tuple[Tensor, ...]:
        return (draw.coin("grayscale", self.p),)

    def __call__(self, images: Tensor, applied: Tensor) -> Tensor:
        return apply_where(applied, grayscale, images)


class RandomBlur(Step):
    """RandomApply([PILGaussianBlur(sigma)], p)."""

    def __init__(self, p: float, sigma: tuple[float, float] = (0.1, 2.0)) -> None:
        self.p, self.sigma = p, sigma

    def pil(self) -> T.RandomApply:
        return T.RandomApply([PILGaussianBlur(self.sigma)], p=self.p)

    def draw(self, draw: Draw, h: int, w: int) -> tuple[Tensor, ...]:
        return draw.coin("blur", self.p), draw.uniform("blur_sigma", *self.sigma)

    def __call__(self, images: Tensor, applied: Tensor, sigma: Tensor) -> Tensor:
        return apply_where(applied, lambda x, s: gaussian_blur(x, s, self.sigma[1]), images, sigma)


class Cutout(Step):
    """PaCo's Cutout: zero a length x length square centred anywhere, clipped at the border."""

    on_tensor = True  # zeroed after ToTensor, before Normalize, as PaCo's

    def __init__(self, length: int) -> None:
        self.length = length

    def pil(self) -> PILCutout:
        return PILCutout(self.length)

    def draw(self, draw: Draw, h: int, w: int) -> tuple[Tensor, ...]:
        return draw.integers("cutout_y", h), draw.integers("cutout_x", w)

    def __call__(self, images: Tensor, y: Tensor, x: Tensor) -> Tensor:
        h, w = images.shape[-2:]
        y, x = y[:, None, None], x[:, None, None]
        rows = torch.arange(h, device=images.device)[None, :, None]
        cols = torch.arange(w, device=images.device)[None, None, :]
        half = self.length // 2
        erased = (rows >= y - half) & (rows < y + half) & (cols >= x - half) & (cols < x + half)
        return images * ~erased[:, None]
