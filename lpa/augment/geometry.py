"""Crops, flips and PIL's affine transforms on a batch, equal to PIL's and torchvision's to the level.

Each is the PIL operation PaCo's worker recipe calls, with PIL's rounding: the bilinear resize
in two passes with 22-bit fixed-point weights, the nearest affine in 16.16 fixed point, the
filtered affine (bilinear, bicubic with a = -1) in double precision, truncated. Images are
(N, C, H, W) float32 levels 0..255 (:mod:`lpa.augment.batch`); parameters are per image.
``tests/test_augment_functional.py`` checks each against PIL.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lpa.augment.batch import Tensor


def _gather(images: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """Pixels ``images[n, :, rows[n, ...], cols[n, ...]]``: (N, C, H, W) and (N, *S) indices -> (N, C, *S)."""
    n, c, h, w = images.shape
    shape = rows.shape[1:]
    index = (rows * w + cols).reshape(n, 1, -1).expand(n, c, -1)
    return images.reshape(n, c, h * w).gather(2, index).view(n, c, *shape)


def _centres(size: int, device: torch.device) -> Tensor:
    return torch.arange(size, device=device, dtype=torch.float64) + 0.5


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
