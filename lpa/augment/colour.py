"""PIL's ImageEnhance, ImageOps, HSV conversions and Gaussian blur on a batch, equal to PIL's to the level.

Each is the PIL operation that PaCo's worker recipe, torchvision's ColorJitter on a PIL image,
or timm's RandAugment calls, on the same integer levels with the same rounding (PIL's blend,
its histogram LUTs, its HSV conversion in C floats, its box-blur approximation of the Gaussian
in fixed point). Images are (N, C, H, W) float32 levels 0..255 (:mod:`lpa.augment.batch`);
factors are per image. ``tests/test_augment_functional.py`` checks each against PIL (the HSV
conversions on all 2^24 colours) and ``tests/test_augment_randaugment.py`` against timm.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lpa.augment.batch import Tensor, constant


def grey(images: Tensor) -> Tensor:
    """PIL's ``convert("L")``: (R 19595 + G 38470 + B 7471 + 2^15) >> 16, (N, 1, H, W); grey images pass."""
    if images.shape[1] == 1:
        return images
    r, g, b = images.unbind(1)
    return torch.floor((r * 19595 + g * 38470 + b * 7471 + 32768) / 65536)[:, None]


def blend(degenerate: Tensor, images: Tensor, factor: Tensor) -> Tensor:
    """PIL's ``Image.blend(degenerate, image, factor)`` with per-image float32 factors (N,), truncated."""
    factor = factor.float().view(-1, 1, 1, 1)
    return torch.trunc(degenerate + factor * (images - degenerate)).clamp(0, 255)


def brightness(images: Tensor, factor: Tensor) -> Tensor:
    return blend(torch.zeros_like(images), images, factor)


def saturation(images: Tensor, factor: Tensor) -> Tensor:
    """PIL's ``ImageEnhance.Color`` (torchvision's ``adjust_saturation``)."""
    return blend(grey(images).expand_as(images), images, factor)


def contrast(images: Tensor, factor: Tensor) -> Tensor:
    """PIL's ``ImageEnhance.Contrast``: blend with the grey level int(mean of the L image + 0.5)."""
    mean = torch.floor(grey(images).double().mean((1, 2, 3)) + 0.5).to(images.dtype)
    return blend(mean.view(-1, 1, 1, 1).expand_as(images), images, factor)


def smooth(images: Tensor) -> Tensor:
    """PIL's ``filter(ImageFilter.SMOOTH)``: 3x3 kernel [1 1 1; 1 5 1; 1 1 1] / 13, border pixels kept."""
    n, c, h, w = images.shape
    kernel = constant(((1, 1, 1), (1, 5, 1), (1, 1, 1)), images.device) / 13
    inner = F.conv2d(images.reshape(n * c, 1, h, w).float(), kernel.view(1, 1, 3, 3)).view(n, c, h - 2, w - 2)
    out = images.clone()
    out[..., 1:-1, 1:-1] = torch.floor(inner.clamp(0, 255) + 0.5)
    return out


def sharpness(images: Tensor, factor: Tensor) -> Tensor:
    return blend(smooth(images), images, factor)


def apply_lut(images: Tensor, lut: Tensor) -> Tensor:
    """Per-image, per-channel lookup: ``lut`` (N, C, 256) or (N, 1, 256) of levels."""
    n, c, h, w = images.shape
    lut = lut.expand(n, c, 256).to(images.dtype)
    return lut.gather(2, images.long().reshape(n, c, h * w)).view(n, c, h, w)


def _levels(images: Tensor) -> Tensor:
    return torch.arange(256, device=images.device, dtype=images.dtype).expand(images.shape[0], 1, 256)


def posterize(images: Tensor, bits: Tensor) -> Tensor:
    """PIL's ``ImageOps.posterize``: keep the top ``bits`` (N,) bits."""
    step = (2 ** (8 - bits.long())).view(-1, 1, 1).to(images.dtype)
    levels = _levels(images)
    return apply_lut(images, levels - torch.remainder(levels, step))


def solarize(images: Tensor, threshold: Tensor) -> Tensor:
    """PIL's ``ImageOps.solarize``: invert the levels at or above ``threshold`` (N,)."""
    levels = _levels(images)
    return apply_lut(images, torch.where(levels < threshold.view(-1, 1, 1).to(levels), levels, 255 - levels))


def invert(images: Tensor) -> Tensor:
    return 255 - images


def _histogram(images: Tensor) -> Tensor:
    n, c, h, w = images.shape
    counts = torch.zeros(n * c, 256, device=images.device, dtype=torch.float64)
    counts.scatter_add_(1, images.long().reshape(n * c, h * w), torch.ones(n * c, h * w, device=images.device,
                                                                         dtype=torch.float64))  # fmt: skip
    return counts.view(n, c, 256)


def autocontrast(images: Tensor) -> Tensor:
    """PIL's ``ImageOps.autocontrast`` (cutoff 0): per channel, stretch [lowest, highest] to [0, 255]."""
    present = _histogram(images) > 0
    levels = torch.arange(256, device=images.device, dtype=torch.float64)
    lo = torch.where(present, levels, 256.0).amin(-1, keepdim=True)
    hi = torch.where(present, levels, -1.0).amax(-1, keepdim=True)
    scale = torch.full_like(hi, 255.0) / (hi - lo).clamp_min(1)  # (a Python number / tensor is a reciprocal)
    lut = torch.trunc(levels * scale - lo * scale).clamp(0, 255)
    return apply_lut(images, torch.where(hi > lo, lut, levels))


def equalize(images: Tensor) -> Tensor:
    """PIL's ``ImageOps.equalize``: per channel, lut[i] = (step // 2 + pixels below i) // step."""
    counts = _histogram(images)
    levels = torch.arange(256, device=images.device, dtype=torch.float64)
    last = torch.where(counts > 0, levels, -1.0).amax(-1, keepdim=True).long()
    step = torch.floor((counts.sum(-1, keepdim=True) - counts.gather(-1, last)) / 255)
    below = counts.cumsum(-1) - counts
    lut = torch.floor((torch.floor(step / 2) + below) / step.clamp_min(1)).clamp_max(255)
    keep = (step == 0) | ((counts > 0).sum(-1, keepdim=True) <= 1)
    return apply_lut(images, torch.where(keep, levels, lut))


def _rgb_to_hsv(images: Tensor) -> Tensor:
    """PIL's ``convert("HSV")`` (Convert.c ``rgb2hsv_row``), levels in float64."""
    r, g, b = images.double().unbind(1)
    maxc = torch.maximum(r, torch.maximum(g, b))
    minc = torch.minimum(r, torch.minimum(g, b))
    span = (maxc - minc).clamp_min(1)
    s = (span.float() / maxc.clamp_min(1).float()).double()
    rc, gc, bc = (((maxc - v).float() / span.float()).double() for v in (r, g, b))
    h = torch.where(r == maxc, bc - gc, torch.where(g == maxc, 2.0 + rc - bc, 4.0 + gc - rc)).float().double()
    h = torch.fmod(h / 6.0 + 1.0, 1.0).float().double()
    flat = maxc == minc
    hue = torch.where(flat, 0.0, torch.trunc(h * 255.0).clamp(0, 255))
    sat = torch.where(flat, 0.0, torch.trunc(s * 255.0).clamp(0, 255))
    return torch.stack([hue, sat, maxc], 1)


def _hsv_to_rgb(hsv: Tensor) -> Tensor:
    """PIL's HSV -> RGB (Convert.c ``hsv2rgb``), levels in float64."""
    h, s, v = hsv.unbind(1)
    sector = torch.floor(h * 6.0 / 255.0)
    f = (h * 6.0 / 255.0 - sector).float().double()
    fs = (s / 255.0).float().double()

    def rounded(x: Tensor) -> Tensor:  # C's round(): half away from zero
        return (torch.sign(x) * torch.floor(x.abs() + 0.5)).clamp(0, 255)

    p = rounded(v * (1.0 - fs))
    q = rounded(v * (1.0 - fs * f))
    t = rounded(v * (1.0 - fs * (1.0 - f)))
    sector = torch.remainder(sector, 6).long()
    choices = torch.stack([torch.stack(c, 1) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v),
                                                        (v, p, q))], 0)  # (6, N, 3, H, W)  # fmt: skip
    rgb = choices.gather(0, sector[None, :, None].expand(1, *choices.shape[1:])).squeeze(0)
    return torch.where((s == 0)[:, None], v[:, None].expand_as(rgb), rgb)


def hue(images: Tensor, factor: Tensor) -> Tensor:
    """torchvision's PIL ``adjust_hue``: H of PIL's HSV plus int(factor * 255), modulo 256."""
    if images.shape[1] == 1:
        return images
    hsv = _rgb_to_hsv(images)
    shift = torch.trunc(factor.double() * 255).view(-1, 1, 1)
    hsv[:, 0] = torch.remainder(hsv[:, 0] + shift, 256)
    return _hsv_to_rgb(hsv).to(images.dtype)


def blur_radius(sigma: Tensor) -> Tensor:
    """PIL's ``_gaussian_blur_radius`` (3 passes): the fractional box radius for Gaussian ``sigma``, float32."""
    f32 = lambda x: x.float().double()  # noqa: E731 (PIL stores every step in a C float)
    sigma2 = f32(f32(sigma) * f32(sigma) / 3)
    length = f32(torch.sqrt(12.0 * sigma2 + 1.0))
    whole = f32(torch.floor((length - 1.0) / 2.0))
    frac = f32((2 * whole + 1) * (whole * (whole + 1) - 3 * sigma2))
    frac = f32(frac / (6 * (sigma2 - (whole + 1) * (whole + 1))))
    return f32(whole + frac)


def gaussian_blur(images: Tensor, sigma: Tensor, max_sigma: float = 2.0) -> Tensor:
    """PIL's ``filter(ImageFilter.GaussianBlur(sigma))``: 3 box blurs across, then 3 down, each rounded.

    ``sigma`` (N,) must not exceed ``max_sigma``, which sets the number of taps. Each pass is a
    batched product with the pass's (exact, float64) fixed-point matrix.
    """
    n, c, h, w = images.shape
    radius = blur_radius(sigma)  # (N,)
    reach = math.floor((math.sqrt(4 * max_sigma**2 + 1) - 1) / 2) + 2  # taps each side: whole + 1, or one more
    whole = torch.floor(radius)
    inner = torch.floor((torch.full_like(radius, 1 << 24).float() / (radius * 2 + 1).float()).double())  # UINT32 ww
    edge = torch.floor(((1 << 24) - (whole * 2 + 1) * inner) / 2)  # UINT32 fw
    out = images.double().reshape(n, c * h, w)
    across = _box_matrix(w, whole, inner, edge, reach)
    for _ in range(3):
        out = torch.floor((out @ across + (1 << 23)) / (1 << 24))
    out = out.view(n, c, h, w).transpose(2, 3).reshape(n, c * w, h)
    down = across if h == w else _box_matrix(h, whole, inner, edge, reach)
    for _ in range(3):
        out = torch.floor((out @ down + (1 << 23)) / (1 << 24))
    return out.view(n, c, w, h).transpose(2, 3).to(images.dtype)


def _box_matrix(width: int, whole: Tensor, inner: Tensor, edge: Tensor, reach: int) -> Tensor:
    """One pass of PIL's ``BoxBlur8`` along a line of ``width`` as a (N, width, width) matrix.

    Output x is (sum over |k| <= whole of in[x + k] * inner + (in[x - whole - 1] + in[x + whole + 1])
    * edge + 2^23) >> 24, edges replicated; ``whole`` (N,) is the integer radius, weights in 2^-24.
    """
    offsets = torch.arange(-reach, reach + 1, device=whole.device)
    x = torch.arange(width, device=whole.device)
    source = (x[:, None] + offsets).clamp(0, width - 1)  # (width, taps)
    distance = offsets.abs().double()
    weight = torch.where(distance <= whole[:, None], inner[:, None],
                         torch.where(distance == whole[:, None] + 1, edge[:, None], 0.0))  # (N, taps)  # fmt: skip
    flat = (source * width + x[:, None]).reshape(1, -1).expand(len(whole), -1)  # matrix[src, dst]
    values = weight[:, None, :].expand(-1, width, -1).reshape(len(whole), -1)
    matrix = torch.zeros(len(whole), width * width, device=whole.device, dtype=torch.float64)
    return matrix.scatter_add_(1, flat, values).view(-1, width, width)


# PIL's operations by the names AutoAugment and RandAugment give them
ENHANCE = {"Color": saturation, "Contrast": contrast, "Sharpness": sharpness, "Brightness": brightness}
UNARY_LUTS = {"AutoContrast": autocontrast, "Equalize": equalize, "Invert": invert}  # ImageOps without an argument


def grayscale(images: Tensor) -> Tensor:
    """torchvision's ``rgb_to_grayscale`` of a PIL image, three channels kept."""
    return grey(images).expand_as(images).clone()


def solarize_add(images: Tensor, add: Tensor, threshold: int = 128) -> Tensor:
    """timm's ``solarize_add``: levels below ``threshold`` raised by ``add`` (N,), capped at 255."""
    levels = _levels(images)
    raised = (levels + add.view(-1, 1, 1).to(levels)).clamp_max(255)
    return apply_lut(images, torch.where(levels < threshold, raised, levels))
