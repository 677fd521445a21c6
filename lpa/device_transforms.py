"""The augmentation recipes of :mod:`lpa.transforms`, run on whole batches on the training device.

For small-image datasets (digits, CIFAR) the uint8 training set sits on the device and both
views of a batch are made there, each image with its own random draw, so a GPU never waits
for PIL workers. Every operation reproduces the PIL operation that the worker recipe (PaCo's)
calls, on the same integer pixel levels and with the same rounding (bilinear resize in two
passes with 22-bit fixed-point weights, PIL's bicubic affine with a = -1, its box-blur
approximation of the Gaussian, its HSV conversion, its histogram LUTs), so that for equal
parameters the two paths give the same image up to rounding; the parameters are drawn from the
same distributions as torchvision's and PaCo's transforms draw them (``tests/test_device_transforms.py``
checks both).

Images travel as float32 (N, C, H, W) tensors holding integer levels 0..255. Each operation
takes per-image parameters and a per-image mask of the images it applies to. On CUDA it is
computed for the whole batch and kept where the mask is set, which reads nothing back to the
host; on the CPU only the masked images are computed, where a read-back costs nothing.
The random draws come from a ``torch.Generator`` on the device, all of a batch's before any
image is touched (each :class:`Step` draws, then applies), so that the image work is a
function of tensors alone: :class:`BatchRecipe` with ``compile`` hands it to ``torch.compile``,
which fuses a CIFAR batch's ~2,400 operations into some 150 kernels and 22 library calls.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from lpa.transforms import CIFAR10Policy, check_recipe

DEVICE_RECIPES = ("digits", "cifar100")  # in-memory images: the whole recipe runs here
CROP_RECIPES = ("randclsstack_sim", "randcls_sim")  # JPEGs: workers decode and crop, the rest runs here

Tensor = torch.Tensor
SUBSET_ON_CPU = True  # on the CPU compute only the masked images (False: as on a GPU; for the tests)


# ---------------------------------------------------------------------------------------------
# Plumbing
# ---------------------------------------------------------------------------------------------


def apply_where(mask: Tensor, op: Callable[..., Tensor], images: Tensor, *params: Tensor) -> Tensor:
    """``op(images, *params)`` for the images where ``mask`` (N,) is set, the others unchanged.

    ``params`` are per-image tensors whose first dimension is N.
    """
    subset = SUBSET_ON_CPU and images.device.type == "cpu" and not torch.compiler.is_compiling()
    if not subset:  # no read-back, static shapes: compute all, keep what is asked
        return torch.where(mask.view(-1, *([1] * (images.dim() - 1))), op(images, *params), images)
    index = mask.nonzero().squeeze(1)
    if len(index) == 0:
        return images
    out = images.clone()
    out[index] = op(images[index], *(p[index] for p in params))
    return out


_CONSTANTS: dict = {}


def constant(values, device: torch.device, dtype: torch.dtype = torch.float32) -> Tensor:
    """A small constant (nested tuples of numbers) on ``device``, copied there once per process:
    a copy from the host at every step would make the host wait for the device. Under
    ``torch.compile`` it is a constant of the graph (a lookup in the cache would make the next
    batch, which finds it filled, compile again)."""
    if torch.compiler.is_compiling():
        return torch.tensor(values, dtype=dtype, device=device)
    key = (values, str(device), dtype)
    if key not in _CONSTANTS:
        _CONSTANTS[key] = torch.tensor(values, dtype=dtype).to(device)
    return _CONSTANTS[key]


def _gather(images: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """Pixels ``images[n, :, rows[n, ...], cols[n, ...]]``: (N, C, H, W) and (N, *S) indices -> (N, C, *S)."""
    n, c, h, w = images.shape
    shape = rows.shape[1:]
    index = (rows * w + cols).reshape(n, 1, -1).expand(n, c, -1)
    return images.reshape(n, c, h * w).gather(2, index).view(n, c, *shape)


def _centres(size: int, device: torch.device) -> Tensor:
    return torch.arange(size, device=device, dtype=torch.float64) + 0.5


def _uniform(generator: torch.Generator, n: int, low, high, device) -> Tensor:
    return torch.rand(n, generator=generator, device=device, dtype=torch.float64) * (high - low) + low


def _randint(generator: torch.Generator, high: Tensor) -> Tensor:
    """One uniform integer in [0, high) per entry of ``high`` (a long tensor)."""
    u = torch.rand(high.shape, generator=generator, device=high.device, dtype=torch.float64)
    return (u * high).long().clamp_max(high - 1)


def _coin(generator: torch.Generator, n: int, p: float, device) -> Tensor:
    return torch.rand(n, generator=generator, device=device) < p


# ---------------------------------------------------------------------------------------------
# Geometry: crops, flips and PIL's affine transform
# ---------------------------------------------------------------------------------------------


def pad_crop(images: Tensor, top: Tensor, left: Tensor, size: int, padding: int) -> Tensor:
    """torchvision's RandomCrop(size, padding) at offsets (top, left) of the zero-padded image."""
    n, c = images.shape[:2]
    padded = F.pad(images, (padding,) * 4)
    ph, pw = padded.shape[-2:]
    s = padded.stride()
    # every size x size window of every image, as a view; each image then takes its own
    windows = padded.as_strided((n, ph - size + 1, pw - size + 1, c, size, size), (s[0], s[2], s[3], s[1], s[2], s[3]))
    return windows[torch.arange(n, device=images.device), top, left]


def hflip(images: Tensor) -> Tensor:
    return images.flip(-1)


def _bilinear_weights(start: Tensor, length: Tensor, in_size: int, out_size: int) -> Tensor:
    """PIL's bilinear coefficients of a 1-d resize of [start, start + length) to ``out_size``, as a matrix.

    ``precompute_coeffs`` + ``normalize_coeffs_8bpc`` of PIL's Resample.c: integer weights in
    units of 2^-22 (N, out_size, in_size), float64 (exact).
    """
    taps = 2 * math.ceil(max(1.0, in_size / out_size)) + 1  # the widest kernel any interval can need
    scale = length.double() / out_size  # (N,)
    support = scale.clamp_min(1.0)  # bilinear support 1, widened when shrinking
    centre = _centres(out_size, start.device) * scale[:, None]
    lo = torch.trunc(centre - support[:, None] + 0.5).clamp_min(0)
    hi = torch.minimum(torch.trunc(centre + support[:, None] + 0.5), length.double()[:, None])
    x = lo[..., None] + torch.arange(taps, device=start.device, dtype=torch.float64)  # (N, out, taps)
    weight = (1 - ((x - centre[..., None] + 0.5) / support[:, None, None]).abs()).clamp_min(0)
    weight = weight * (x < hi[..., None])
    weight = torch.trunc(weight / weight.sum(-1, keepdim=True) * (1 << 22) + 0.5)
    column = (start[:, None, None] + x.long()).clamp_max(in_size - 1)
    matrix = torch.zeros(len(start), out_size, in_size, device=start.device, dtype=torch.float64)
    return matrix.scatter_add_(2, column, weight)


def resized_crop(images: Tensor, top: Tensor, left: Tensor, height: Tensor, width: Tensor, size: int) -> Tensor:
    """PIL's ``crop((left, top, left + width, top + height)).resize((size, size), BILINEAR)``.

    Two passes (horizontal first), each rounded to uint8 as PIL's ``ImagingResample`` does;
    each pass is a batched product with the (exact, float64) fixed-point weight matrix. Exact
    when the crop is enlarged (as in every device recipe); when it shrinks, Pillow >= 12 runs
    the vertical pass first for some shapes and a pixel may differ by one level.
    """
    n, c, h, w = images.shape
    across = _bilinear_weights(left, width, w, size)  # (N, size, w)
    down = _bilinear_weights(top, height, h, size)  # (N, size, h)
    half = float(1 << 21)
    wide = torch.floor((images.double().reshape(n, c * h, w) @ across.transpose(1, 2) + half) / (1 << 22))
    wide = wide.clamp(0, 255).view(n, c, h, size).transpose(1, 2).reshape(n, h, c * size)
    out = torch.floor((down @ wide + half) / (1 << 22)).clamp(0, 255)  # (N, size, C * size)
    return out.view(n, size, c, size).transpose(1, 2).to(images.dtype)


def _source_coordinates(matrix: Tensor, h: int, w: int) -> tuple[Tensor, Tensor]:
    """Where PIL's AFFINE transform samples each output pixel: (N, h, w) x and y, float64."""
    a = matrix.double()[:, :, None, None]
    ys = _centres(h, matrix.device)[:, None]
    xs = _centres(w, matrix.device)[None, :]
    return a[:, 0] * xs + a[:, 1] * ys + a[:, 2], a[:, 3] * xs + a[:, 4] * ys + a[:, 5]


def affine_nearest(images: Tensor, matrix: Tensor, fill: Tensor) -> Tensor:
    """PIL's ``transform(size, AFFINE, matrix, NEAREST, fillcolor=fill)``; ``matrix`` (N, 6), ``fill`` (C,).

    As PIL: a matrix without rotation or shear samples at floor of the float coordinate
    (``ImagingScaleAffine``), any other in 16.16 fixed point (``affine_fixed``).
    """
    _, _, h, w = images.shape
    x, y = _source_coordinates(matrix, h, w)
    a = matrix.double()
    fix = lambda v: torch.floor(v * 65536.0 + 0.5)[:, None, None]  # noqa: E731
    xs = torch.arange(w, device=images.device, dtype=torch.float64)[None, None, :]
    ys = torch.arange(h, device=images.device, dtype=torch.float64)[None, :, None]
    x_fixed = fix(a[:, 2] + a[:, 0] * 0.5 + a[:, 1] * 0.5) + xs * fix(a[:, 0]) + ys * fix(a[:, 1])
    y_fixed = fix(a[:, 5] + a[:, 3] * 0.5 + a[:, 4] * 0.5) + xs * fix(a[:, 3]) + ys * fix(a[:, 4])
    rotated = ((a[:, 1] != 0) | (a[:, 3] != 0))[:, None, None]
    col = torch.where(rotated, torch.floor(x_fixed / 65536), x.floor()).long()
    row = torch.where(rotated, torch.floor(y_fixed / 65536), y.floor()).long()
    inside = ((col >= 0) & (col < w) & (row >= 0) & (row < h))[:, None]
    out = _gather(images, row.clamp(0, h - 1), col.clamp(0, w - 1))
    return torch.where(inside, out, fill.view(1, -1, 1, 1).to(out))


def _cubic(v0: Tensor, v1: Tensor, v2: Tensor, v3: Tensor, d: Tensor) -> Tensor:
    """PIL's BICUBIC macro (Geometry.c): the cubic convolution with a = -1."""
    return v1 + d * ((v2 - v0) + d * ((2 * (v0 - v1) + v2 - v3) + d * (v1 - v0 - v2 + v3)))


def _linear(v0: Tensor, v1: Tensor, d: Tensor) -> Tensor:
    """PIL's BILINEAR step (Geometry.c): v0 + (v1 - v0) d."""
    return v0 + (v1 - v0) * d


def _affine_filtered(images: Tensor, matrix: Tensor, fill: Tensor, offsets: tuple[int, ...], interpolate) -> Tensor:
    """PIL's filtered AFFINE transform: a sample point outside [0, w) x [0, h) takes the fill, any
    other interpolates the pixels at ``offsets`` around it (edges clamped), across then down, in
    double precision, truncated to uint8. The taps are gathered one at a time, so memory stays
    that of a few images per image."""
    _, _, h, w = images.shape
    x, y = _source_coordinates(matrix, h, w)
    inside = ((x >= 0) & (y >= 0) & (x < w) & (y < h))[:, None]
    x, y = x - 0.5, y - 0.5
    x0, y0 = x.floor(), y.floor()
    dx, dy = (x - x0)[:, None], (y - y0)[:, None]
    cols = [(x0.long() + k).clamp(0, w - 1) for k in offsets]
    rows = [(y0.long() + k).clamp(0, h - 1) for k in offsets]
    across = [interpolate(*(_gather(images, row, col).double() for col in cols), dx) for row in rows]
    value = interpolate(*across, dy).clamp(0, 255).floor()
    return torch.where(inside, value.to(images.dtype), fill.view(1, -1, 1, 1).to(images.dtype))


def affine_bilinear(images: Tensor, matrix: Tensor, fill: Tensor) -> Tensor:
    """PIL's ``transform(size, AFFINE, matrix, BILINEAR, fillcolor=fill)``: 2x2 taps; ``matrix`` (N, 6)."""
    return _affine_filtered(images, matrix, fill, (0, 1), _linear)


def affine_bicubic(images: Tensor, matrix: Tensor, fill: Tensor) -> Tensor:
    """PIL's ``transform(size, AFFINE, matrix, BICUBIC, fillcolor=fill)``: 4x4 taps; ``matrix`` (N, 6)."""
    return _affine_filtered(images, matrix, fill, (-1, 0, 1, 2), _cubic)


def rotation_matrix(degrees: Tensor, h: int, w: int) -> Tensor:
    """The inverse matrix of PIL's ``rotate(degrees)`` about the centre (N, 6)."""
    angle = -torch.deg2rad(degrees.double())
    cos, sin = torch.round(torch.cos(angle), decimals=15), torch.round(torch.sin(angle), decimals=15)
    cx, cy = w / 2.0, h / 2.0
    return torch.stack([cos, sin, cos * -cx + sin * -cy + cx, -sin, cos, -sin * -cx + cos * -cy + cy], 1)


def affine_matrix(degrees: Tensor, tx: Tensor, ty: Tensor, scale: Tensor, h: int, w: int) -> Tensor:
    """torchvision's inverse affine matrix for PIL (no shear, centre (w/2, h/2)) (N, 6)."""
    rot = torch.deg2rad(degrees.double())
    cos, sin = torch.cos(rot), torch.sin(rot)
    s = scale.double()
    m0, m1, m3, m4 = cos / s, sin / s, -sin / s, cos / s
    cx, cy = w * 0.5, h * 0.5
    m2 = m0 * (-cx - tx) + m1 * (-cy - ty) + cx
    m5 = m3 * (-cx - tx) + m4 * (-cy - ty) + cy
    return torch.stack([m0, m1, m2, m3, m4, m5], 1)


# ---------------------------------------------------------------------------------------------
# Colour: PIL's ImageEnhance, ImageOps and HSV conversions on integer levels
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Random draws, as torchvision's and PaCo's transforms draw them
# ---------------------------------------------------------------------------------------------


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


class _Draw:
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
# The recipes' steps. Each draws its parameters for the whole batch before any image is touched
# (``draw``), and applies them (calling it), so that a recipe's image work is a function of the
# images and the draws alone, which ``torch.compile`` can fuse (:class:`BatchRecipe`).
# ---------------------------------------------------------------------------------------------


class Step:
    """One step of a batched recipe; ``size`` is the side of its output where it crops (else None)."""

    size: int | None = None

    def draw(self, draw: _Draw, h: int, w: int) -> tuple[Tensor, ...]:
        """The step's random parameters for a batch of h x w images, each (N, ...)."""
        return ()

    def __call__(self, images: Tensor, *params: Tensor) -> Tensor:
        raise NotImplementedError

    def run(self, images: Tensor, draw: _Draw) -> Tensor:
        """Draw, then apply: the step on its own."""
        return self(images, *self.draw(draw, *images.shape[-2:]))


class RandomCrop(Step):
    """torchvision's RandomCrop(size, padding) (zero padding)."""

    def __init__(self, size: int, padding: int) -> None:
        self.size, self.padding = size, padding

    def draw(self, draw: _Draw, h: int, w: int) -> tuple[Tensor, ...]:
        pad = 2 * self.padding - self.size + 1
        return draw.integers("crop_top", h + pad), draw.integers("crop_left", w + pad)

    def __call__(self, images: Tensor, top: Tensor, left: Tensor) -> Tensor:
        return pad_crop(images, top, left, self.size, self.padding)


class RandomResizedCrop(Step):
    """torchvision's RandomResizedCrop(size, scale, ratio), PIL's bilinear resize."""

    def __init__(self, size: int, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)) -> None:
        self.size, self.scale, self.ratio = size, scale, ratio

    def draw(self, draw: _Draw, h: int, w: int) -> tuple[Tensor, ...]:
        boxes = resized_crop_boxes(draw.generator, draw.n, h, w, self.scale, self.ratio, draw.device)
        return tuple(draw.keep(f"box_{name}", v) for name, v in zip(("top", "left", "height", "width"), boxes))

    def __call__(self, images: Tensor, top: Tensor, left: Tensor, height: Tensor, width: Tensor) -> Tensor:
        return resized_crop(images, top, left, height, width, self.size)


class RandomFlip(Step):
    """torchvision's RandomHorizontalFlip (p 0.5); ``name`` is its draw's."""

    def __init__(self, name: str = "flip") -> None:
        self.name = name

    def draw(self, draw: _Draw, h: int, w: int) -> tuple[Tensor, ...]:
        return (draw.coin(self.name, 0.5),)

    def __call__(self, images: Tensor, flipped: Tensor) -> Tensor:
        return apply_where(flipped, hflip, images)


class RandomAffine(Step):
    """torchvision's RandomAffine on a PIL image (nearest, black fill): integer shifts of up to translate x size."""

    def __init__(self, degrees: float, translate: float = 0.0, scale: tuple[float, float] = (1.0, 1.0)) -> None:
        self.degrees, self.translate, self.scale = degrees, translate, scale

    def draw(self, draw: _Draw, h: int, w: int) -> tuple[Tensor, ...]:
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

    def draw(self, draw: _Draw, h: int, w: int) -> tuple[Tensor, ...]:
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

    def draw(self, draw: _Draw, h: int, w: int) -> tuple[Tensor, ...]:
        return (draw.coin("grayscale", self.p),)

    def __call__(self, images: Tensor, applied: Tensor) -> Tensor:
        return apply_where(applied, grayscale, images)


class RandomBlur(Step):
    """RandomApply([PILGaussianBlur(sigma)], p)."""

    def __init__(self, p: float, sigma: tuple[float, float] = (0.1, 2.0)) -> None:
        self.p, self.sigma = p, sigma

    def draw(self, draw: _Draw, h: int, w: int) -> tuple[Tensor, ...]:
        return draw.coin("blur", self.p), draw.uniform("blur_sigma", *self.sigma)

    def __call__(self, images: Tensor, applied: Tensor, sigma: Tensor) -> Tensor:
        return apply_where(applied, lambda x, s: gaussian_blur(x, s, self.sigma[1]), images, sigma)


class Cutout(Step):
    """PaCo's Cutout: zero a length x length square centred anywhere, clipped at the border."""

    def __init__(self, length: int) -> None:
        self.length = length

    def draw(self, draw: _Draw, h: int, w: int) -> tuple[Tensor, ...]:
        return draw.integers("cutout_y", h), draw.integers("cutout_x", w)

    def __call__(self, images: Tensor, y: Tensor, x: Tensor) -> Tensor:
        h, w = images.shape[-2:]
        y, x = y[:, None, None], x[:, None, None]
        rows = torch.arange(h, device=images.device)[None, :, None]
        cols = torch.arange(w, device=images.device)[None, None, :]
        half = self.length // 2
        erased = (rows >= y - half) & (rows < y + half) & (cols >= x - half) & (cols < x + half)
        return images * ~erased[:, None]


class CIFAR10PolicyBatch(Step):
    """:class:`lpa.transforms.CIFAR10Policy` for a batch: one sub-policy per image, its two steps in turn."""

    NAMES = tuple(CIFAR10Policy.OPS)  # op index -> name

    def __init__(self, fill: tuple[int, ...] = (128, 128, 128)) -> None:
        policies = CIFAR10Policy().policies
        self.fill = fill
        self.ops = tuple(tuple(self.NAMES.index(name) for name, _, _ in sub) for sub in policies)
        self.probs = tuple(tuple(p for _, p, _ in sub) for sub in policies)
        self.values = tuple(
            tuple(0.0 if m is None else float(CIFAR10Policy.BINS[name][m]) for name, _, m in sub) for sub in policies
        )

    def draw(self, draw: _Draw, h: int, w: int) -> tuple[Tensor, ...]:
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


class BatchRecipe:
    """:func:`lpa.transforms.train_transform` for a batch on its device: uint8 levels -> normalised views.

    For :data:`DEVICE_RECIPES` the input is the (N, C, H, W) images, and the whole recipe runs
    here. For :data:`CROP_RECIPES` it is what :class:`lpa.transforms.DecodedCrops` made in the
    workers, each view's crop and flip, ``(query crops, key crops)`` (or the query crops alone
    without ``two_views``), and the rest runs here: colour jitter, greyscale, blur and
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
        self.views = dict(zip(("query", "key"), self._steps()[: 1 + two_views]))
        self.compiled = torch.compile(self.apply, dynamic=False) if compile else self.apply

    def _steps(self) -> tuple[list[Step], list[Step]]:
        """The query view's steps and the key view's (see :mod:`lpa.transforms` for PaCo's)."""
        size = self.size
        if self.recipe == "digits":
            query = [RandomAffine(10, translate=0.125, scale=(0.9, 1.1))]
            return query, [RandomResizedCrop(size, scale=(0.6, 1.0), ratio=(0.8, 1.25)), RandomAffine(15)]
        if self.recipe == "cifar100":
            query = [RandomCrop(size, padding=size // 8), RandomFlip(), CIFAR10PolicyBatch(),
                     Cutout(16 * size // 32)]  # zeroed before Normalize, as PaCo's  # fmt: skip
            key = [RandomResizedCrop(size, scale=(0.2, 1.0)), RandomFlip("key_flip"), ColorJitter(0.8, 0.4, 0.1),
                   RandomGrayscale(0.2), RandomBlur(0.5)]  # fmt: skip
            return query, key
        from lpa.device_randaugment import RandAugmentBatch  # it builds on this module's operations

        # randclsstack / randcls and sim, after the workers' crop and flip (the key's blur commutes with its flip)
        stack = [RandomGrayscale(0.2), RandomBlur(0.5)] if self.recipe == "randclsstack_sim" else []
        query = [ColorJitter(1.0, 0.4, 0.0), *stack, RandAugmentBatch(size)]
        return query, [ColorJitter(1.0, 0.4, 0.0), RandomGrayscale(0.2), RandomBlur(0.5)]

    def draw(self, inputs: tuple[Tensor, ...], generator: torch.Generator, record: dict | None = None) -> dict:
        """Every step's parameters for this batch, by view: the query's first, then the key's."""
        params = {}
        for (view, steps), images in zip(self.views.items(), inputs):
            draw = _Draw(generator, len(images), images.device, None if record is None else record.setdefault(view, {}))
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
        mean, std = constant(self.mean, levels.device), constant(self.std, levels.device)
        return (levels.float() / 255 - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)

    def __call__(self, images: Tensor | tuple[Tensor, Tensor], generator: torch.Generator, record: dict | None = None):
        inputs = images if isinstance(images, tuple) else (images, images)
        inputs = inputs[: 1 + self.two_views]
        views = self.compiled(inputs, self.draw(inputs, generator, record))
        return views if self.two_views else views[0]
